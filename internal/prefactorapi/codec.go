package prefactorapi

import (
	"encoding/json"
	"reflect"
)

// Codec is the JSON decoder and encoder of the server's hottest path: bulk
// requests and their items, the payloads read for run rollups and summary
// templates, the idempotency hash and the answers. The zero Codec is
// encoding/json, which stays the reference: a faster codec (a server
// passes one in Config.Codec) only has to agree with it on the inputs it
// accepts. Whenever a decoding function returns an error, the API decodes
// the same input again with encoding/json and keeps that result, so error
// codes, messages and the fields they name are always the reference's.
type Codec struct {
	// DecodeStrict decodes the JSON object b into v as encoding/json does
	// (json.Decoder with DisallowUnknownFields: case-insensitive field
	// names, the last of duplicate keys wins, invalid UTF-8 replaced by
	// U+FFFD, json.RawMessage copied), refusing unknown fields and
	// trailing data. Nil means encoding/json.
	DecodeStrict func(b []byte, v any) error
	// Unmarshal decodes b into v as json.Unmarshal does (unknown fields
	// ignored). Nil means encoding/json.
	Unmarshal func(b []byte, v any) error
	// Marshal encodes v byte for byte as json.Marshal does (HTML
	// characters escaped, map keys sorted, json.RawMessage compacted):
	// the idempotency hash is computed from it, and stored hashes must
	// match whichever server computed them. Nil means encoding/json.
	Marshal func(v any) ([]byte, error)
}

// decodeStrict decodes b into v with the codec, falling back on the
// reference decoder to name any error (see Codec). v is a pointer to a
// zero value; after the codec's error it is zeroed and decoded again.
func (c Codec) decodeStrict(b []byte, v any) error {
	if c.DecodeStrict == nil {
		return decodeStrict(b, v)
	}
	if !isObject(b) {
		return errNotObject
	}
	if c.DecodeStrict(b, v) == nil {
		return nil
	}
	reflect.ValueOf(v).Elem().SetZero()
	return decodeStrict(b, v)
}

// unmarshal decodes b into v like json.Unmarshal, with the codec; after
// the codec's error v is zeroed and decoded again by encoding/json.
func (c Codec) unmarshal(b []byte, v any) error {
	if c.Unmarshal == nil {
		return json.Unmarshal(b, v)
	}
	if c.Unmarshal(b, v) == nil {
		return nil
	}
	reflect.ValueOf(v).Elem().SetZero()
	return json.Unmarshal(b, v)
}

// marshal encodes v like json.Marshal, with the codec; after the codec's
// error encoding/json encodes it.
func (c Codec) marshal(v any) ([]byte, error) {
	if c.Marshal == nil {
		return json.Marshal(v)
	}
	if b, err := c.Marshal(v); err == nil {
		return b, nil
	}
	return json.Marshal(v)
}

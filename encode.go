package agenttrace

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"

	"unicode/utf8"

	"github.com/agenttrace/agenttrace/internal/bufpool"
	"github.com/agenttrace/agenttrace/internal/jsonesc"
)

// PayloadField tells a Redactor which payload of a span it is looking at.
type PayloadField uint8

const (
	// PayloadParams is the span's payload: its inputs.
	PayloadParams PayloadField = iota + 1
	// PayloadResult is the span's result payload: its outputs.
	PayloadResult
)

// String returns "payload" or "result_payload".
func (f PayloadField) String() string {
	if f == PayloadResult {
		return "result_payload"
	}
	return "payload"
}

// A Redactor sees every payload, as a JSON object, before it is stored on
// the span and so before it can leave the process. It returns the payload to
// keep, which must be a JSON object; it must not retain or modify its input.
// A Redactor that panics or returns something other than a JSON object
// causes the payload to be replaced by an error marker, never passed on
// unredacted. It runs on the caller's goroutine when the payload is set.
type Redactor func(spanType string, field PayloadField, payload []byte) []byte

// MarkerKey is the reserved top-level key under which agenttrace notes what
// it did to a payload: {"_agenttrace":{"truncated":true,"original_bytes":N}}
// for a payload over the size cap, {"_agenttrace":{"error":"encoding",...}}
// for a value that could not be encoded.
const MarkerKey = "_agenttrace"

// encoded is the outcome of snapshotting one payload.
type encoded struct {
	data      []byte
	truncated bool
	err       error // encoding or redaction error, already turned into a marker
}

// bufPool recycles the buffers payloads are encoded in before they are
// copied to their own slice; one that grew past 1 MiB is not kept.
var bufPool = bufpool.Pool{Size: 512, Max: 1 << 20}

// valuePrefix wraps a payload that is not a JSON object: {"value": v}.
const valuePrefix = `{"value":`

// encodePayload snapshots v as a JSON object of at most limit bytes. The
// snapshot goes to s's inline buffer when it fits and the buffer is free (s
// may be nil), and to a new slice otherwise. A value far over the limit is
// cut before it is encoded (cutOversized), so that its cost is bounded by
// the limit rather than by its size.
func encodePayload(v any, spanType string, field PayloadField, limit int, redact Redactor, s *Span) encoded {
	if v == nil {
		return encoded{}
	}
	v, orig := cutOversized(v, limit)
	bp := bufPool.Get()
	defer bufPool.Put(bp)
	// Encode after room for the wrapper, so that a value that is not an
	// object is wrapped in place.
	buf := append((*bp)[:0], valuePrefix...)
	buf, err := appendValue(buf, v)
	*bp = buf
	if err != nil {
		return encoded{data: errorMarker("encoding", err, v), err: err}
	}
	out := buf[len(valuePrefix):]
	if !isObject(out) {
		buf = append(buf, '}')
		*bp = buf
		out = buf
	}
	if redact != nil {
		r, rerr := runRedactor(redact, spanType, field, out)
		if rerr != nil {
			return encoded{data: errorMarker("redaction", rerr, nil), err: rerr}
		}
		out = r
	}
	res := encoded{}
	if len(out) > limit || orig > 0 {
		out = truncateJSON(out, limit, max(orig, len(out)))
		res.truncated = true
	}
	res.data = s.keep(out)
	return res
}

// clip drops b's spare capacity, so that an append to a record's payload
// can never write into memory the span still owns.
func clip(b []byte) []byte { return b[:len(b):len(b)] }

// isNilPtr reports whether v is a nil pointer in a non-nil interface.
func isNilPtr(v any) bool {
	rv := reflect.ValueOf(v)
	return rv.Kind() == reflect.Pointer && rv.IsNil()
}

// appendValue encodes v, protecting the caller from panics in the value's
// own encoding methods.
func appendValue(b []byte, v any) (out []byte, err error) {
	defer func() {
		if r := recover(); r != nil {
			out, err = b[:0], fmt.Errorf("encoding %T panicked: %v", v, r)
		}
	}()
	switch x := v.(type) {
	case appender:
		if isNilPtr(v) {
			return append(b, "null"...), nil
		}
		return x.appendJSON(b, nil)
	case json.RawMessage:
		return appendRaw(b, x)
	case []byte:
		return appendRaw(b, x)
	case string:
		return jsonesc.AppendString(b, x), nil
	}
	enc, err := marshalValue(v)
	if err != nil {
		return b, err
	}
	return append(b, enc...), nil
}

// ErrInvalidJSON is the error recorded for a json.RawMessage or []byte
// payload that is not valid JSON.
var ErrInvalidJSON = errors.New("agenttrace: payload is not valid JSON")

func appendRaw(b, raw []byte) ([]byte, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return append(b, "null"...), nil
	}
	if !validJSON(raw) {
		return b, ErrInvalidJSON
	}
	if !utf8.Valid(raw) {
		return append(b, bytes.ToValidUTF8(raw, []byte("\ufffd"))...), nil
	}
	return append(b, raw...), nil
}

func isObject(b []byte) bool {
	for _, c := range b {
		switch c {
		case ' ', '\t', '\n', '\r':
			continue
		case '{':
			return true
		default:
			return false
		}
	}
	return false
}

func runRedactor(redact Redactor, spanType string, field PayloadField, in []byte) (out []byte, err error) {
	defer func() {
		if r := recover(); r != nil {
			out, err = nil, fmt.Errorf("redactor panicked: %v", r)
		}
	}()
	out = redact(spanType, field, in)
	if !isObject(out) || !validJSON(out) {
		return nil, errors.New("redactor returned something other than a JSON object")
	}
	if !utf8.Valid(out) {
		out = bytes.ToValidUTF8(out, []byte("\ufffd"))
	}
	return out, nil
}

// errorMarker is the payload recorded in place of one that failed.
func errorMarker(kind string, err error, v any) []byte {
	w := newObj(nil)
	w.Key(MarkerKey)
	m := newObj(w.B)
	m.String("error", kind)
	m.String("message", clipString(safeErrorString(err), 1024))
	if v != nil {
		m.String("go_type", fmt.Sprintf("%T", v))
	}
	w.B = m.End()
	return w.End()
}

// minPayloadLimit is the smallest payload cap accepted: room for the
// truncation marker and a useful preview.
const minPayloadLimit = 1024

// searchMax finds the largest n in [lo, hi] for which f returns non-nil,
// assuming f is monotone, and returns f(n).
func searchMax(lo, hi int, f func(int) []byte) []byte {
	best := f(lo)
	if best == nil {
		return nil
	}
	for lo < hi {
		mid := lo + (hi-lo+1)/2
		if b := f(mid); b != nil {
			best, lo = b, mid
		} else {
			hi = mid - 1
		}
	}
	return best
}

// previewMarker is the last resort: the marker plus the start of the
// original text as a string, sized to fit.
func previewMarker(in []byte, limit, orig int) []byte {
	build := func(n int) []byte {
		for n > 0 && n < len(in) && !utf8.RuneStart(in[n]) {
			n--
		}
		w := newObj(make([]byte, 0, limit))
		w.Key(MarkerKey)
		m := newObj(w.B)
		m.True("truncated", true)
		m.Int("original_bytes", int64(orig))
		w.B = m.End()
		w.String("preview", string(in[:n]))
		b := w.End()
		if len(b) > limit {
			return nil
		}
		return b
	}
	if b := searchMax(0, min(len(in), limit), build); b != nil {
		return b
	}
	return []byte(`{"` + MarkerKey + `":{"truncated":true}}`)
}

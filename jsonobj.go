package agenttrace

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"unicode/utf8"

	"github.com/agenttrace/agenttrace/internal/jsonesc"
)

// This file holds the small JSON writer used by the typed payloads, so the
// common payloads encode without reflection. Every string goes through
// appendJSONString, which also repairs invalid UTF-8.

// appendJSONString appends s as a JSON string. Invalid UTF-8 becomes U+FFFD;
// HTML characters are not escaped.
func appendJSONString(b []byte, s string) []byte { return jsonesc.AppendString(b, s) }

// objWriter appends the members of one JSON object.
type objWriter struct {
	b   []byte
	n   int
	err error
}

func newObj(b []byte) objWriter { return objWriter{b: append(b, '{')} }

// key starts a member named by one of this package's constant keys, which
// are plain ASCII and need no escaping.
func (w *objWriter) key(k string) {
	if w.n > 0 {
		w.b = append(w.b, ',', '"')
	} else {
		w.b = append(w.b, '"')
	}
	w.n++
	w.b = append(w.b, k...)
	w.b = append(w.b, '"', ':')
}

// anyKey starts a member named by a caller's key, escaped.
func (w *objWriter) anyKey(k string) {
	if w.n > 0 {
		w.b = append(w.b, ',')
	}
	w.n++
	w.b = appendJSONString(w.b, k)
	w.b = append(w.b, ':')
}

func (w *objWriter) str(k, v string) {
	if v == "" {
		return
	}
	w.key(k)
	w.b = appendJSONString(w.b, v)
}

func (w *objWriter) strAlways(k, v string) {
	w.key(k)
	w.b = appendJSONString(w.b, v)
}

func (w *objWriter) int(k string, v int64) {
	w.key(k)
	w.b = strconv.AppendInt(w.b, v, 10)
}

func (w *objWriter) intNZ(k string, v int64) {
	if v != 0 {
		w.int(k, v)
	}
}

func (w *objWriter) float(k string, v float64) {
	w.key(k)
	w.b = appendFloat(w.b, v)
}

func (w *objWriter) boolean(k string, v bool) {
	if !v {
		return
	}
	w.key(k)
	w.b = append(w.b, "true"...)
}

// raw appends already-encoded JSON; invalid JSON is embedded as a string so
// the output stays valid.
func (w *objWriter) raw(k string, v json.RawMessage) {
	if len(v) == 0 {
		return
	}
	w.key(k)
	w.b = appendRawJSON(w.b, v)
}

// any appends v with the reflection-based encoder, or nothing if v is nil.
func (w *objWriter) any(k string, v any) {
	if v == nil {
		return
	}
	w.key(k)
	w.anyValue(v)
}

func (w *objWriter) anyValue(v any) {
	switch x := v.(type) {
	case nil:
		w.b = append(w.b, "null"...)
	case string:
		w.b = appendJSONString(w.b, x)
	case json.RawMessage:
		w.b = appendRawJSON(w.b, x)
	case appender:
		if isNilPtr(v) {
			w.b = append(w.b, "null"...)
			return
		}
		w.b, w.err = x.appendJSON(w.b, w.err)
	default:
		enc, err := marshalValue(v)
		if err != nil {
			if w.err == nil {
				w.err = err
			}
			w.b = append(w.b, "null"...)
			return
		}
		w.b = append(w.b, enc...)
	}
}

func (w *objWriter) close() []byte { return append(w.b, '}') }

func appendFloat(b []byte, v float64) []byte {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return append(b, "null"...)
	}
	return strconv.AppendFloat(b, v, 'g', -1, 64)
}

// appendRawJSON appends v if it is valid JSON, and as a JSON string otherwise.
func appendRawJSON(b []byte, v json.RawMessage) []byte {
	if json.Valid(v) {
		if utf8.Valid(v) {
			return append(b, v...)
		}
		return append(b, bytes.ToValidUTF8(v, []byte("\ufffd"))...)
	}
	return appendJSONString(b, string(v))
}

// appender is implemented by the typed payloads, which encode themselves
// without reflection. The error in and out is the first encoding error met.
type appender interface {
	appendJSON(b []byte, err error) ([]byte, error)
}

// ErrTooDeep is the error recorded for a payload value whose JSON would
// nest deeper than decoders accept (about 10,000 levels, the limit raw
// JSON payloads get).
var ErrTooDeep = errors.New("agenttrace: payload nested too deep")

// marshalValue encodes v with encoding/json, turning a panic in a
// MarshalJSON method into an error, and rejects an encoding nested deeper
// than maxValueDepth.
func marshalValue(v any) (b []byte, err error) {
	defer func() {
		if r := recover(); r != nil {
			b, err = nil, fmt.Errorf("agenttrace: encoding %T panicked: %v", v, r)
		}
	}()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	out := bytes.TrimRight(buf.Bytes(), "\n")
	if tooDeep(out, maxValueDepth) {
		return nil, ErrTooDeep
	}
	if !utf8.Valid(out) { // MarshalJSON methods and nested RawMessages are copied unchecked
		out = bytes.ToValidUTF8(out, []byte("\ufffd"))
	}
	return out, nil
}

package agenttrace

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"unicode/utf8"

	"github.com/agenttrace/agenttrace/internal/jsonesc"
	"github.com/agenttrace/agenttrace/internal/jsonscan"
	"github.com/agenttrace/agenttrace/internal/jsonw"
)

// This file holds what the typed payloads add to the object writer of
// internal/jsonw (raw JSON, values of any type, the first encoding error),
// so the common payloads encode without reflection. Every string goes
// through jsonesc, which also repairs invalid UTF-8.

// objWriter appends the members of one JSON object, keeping the first
// encoding error of the values it writes.
type objWriter struct {
	jsonw.Object
	err error
}

func newObj(b []byte) objWriter { return objWriter{Object: jsonw.Begin(b)} }

// raw appends already-encoded JSON; invalid JSON is embedded as a string so
// the output stays valid.
func (w *objWriter) raw(k string, v json.RawMessage) {
	if len(v) == 0 {
		return
	}
	w.Key(k)
	w.B = appendRawJSON(w.B, v)
}

// any appends v with the reflection-based encoder, or nothing if v is nil.
func (w *objWriter) any(k string, v any) {
	if v == nil {
		return
	}
	w.Key(k)
	w.anyValue(v)
}

func (w *objWriter) anyValue(v any) {
	switch x := v.(type) {
	case nil:
		w.B = append(w.B, "null"...)
	case string:
		w.B = jsonesc.AppendString(w.B, x)
	case json.RawMessage:
		w.B = appendRawJSON(w.B, x)
	case appender:
		if isNilPtr(v) {
			w.B = append(w.B, "null"...)
			return
		}
		w.B, w.err = x.appendJSON(w.B, w.err)
	default:
		enc, err := marshalValue(v)
		if err != nil {
			if w.err == nil {
				w.err = err
			}
			w.B = append(w.B, "null"...)
			return
		}
		w.B = append(w.B, enc...)
	}
}

// appendRawJSON appends v if it is valid JSON, and as a JSON string otherwise.
func appendRawJSON(b []byte, v json.RawMessage) []byte {
	if validJSON(v) {
		if utf8.Valid(v) {
			return append(b, v...)
		}
		return append(b, bytes.ToValidUTF8(v, []byte("\ufffd"))...)
	}
	return jsonesc.AppendString(b, string(v))
}

// validJSON is json.Valid, with jsonscan's scanner first: it accepts only
// what json.Valid accepts (fuzzed), nested up to 64 deep, 3-4x faster;
// what it rejects is asked of json.Valid.
func validJSON(v []byte) bool {
	s := jsonscan.Scanner{B: v}
	return s.Skip() && s.End() || json.Valid(v)
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

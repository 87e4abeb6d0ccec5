package agenttrace

import (
	"encoding"
	"encoding/json"
	"reflect"
	"slices"
	"strconv"
	"unicode/utf8"

	"github.com/agenttrace/agenttrace/internal/jsonesc"
)

// Values far over the payload cap are cut before they are encoded, so that
// recording one costs time and memory bounded by the cap, not by the
// value's size (the time is spent on the caller's goroutine, inside the
// span). cutOversized does it where the value allows: strings, raw JSON and
// byte slices, long messages lists of the typed LLM payloads; long slices
// and large maps with string keys of other types are cut while they are
// encoded (appendLongSlice, appendLongMap). What is
// cut is marked as truncated; original_bytes is then the value's size
// before escaping, estimated for the typed payloads and long slices.

// rawCutFactor: raw JSON up to this many times the cap keeps its structure
// when truncated (it is decoded whole); larger raw JSON keeps a preview of
// its text.
const rawCutFactor = 4

// cutOversized returns v, or a stand-in for it of about limit bytes and
// the size of the value it stands for when v is far over limit.
func cutOversized(v any, limit int) (any, int) {
	switch x := v.(type) {
	case string:
		if len(x) > limit {
			return cutString(x, limit), len(x) + len(`{"value":""}`)
		}
	case json.RawMessage:
		return cutRaw(x, limit)
	case []byte:
		return cutRaw(x, limit)
	case LLMRequest:
		if n := messagesSize(x.Messages) + len(x.System); n > limit {
			x.System = cutString(x.System, limit)
			x.Messages = cutMessages(x.Messages, limit)
			return x, n
		}
	case LLMResponse:
		if n := messagesSize(x.Messages) + len(x.Text); n > limit {
			x.Text = cutString(x.Text, limit)
			x.Messages = cutMessages(x.Messages, limit)
			return x, n
		}
	default:
		// A slice or map that fails to encode is left whole: the general
		// path records its error.
		if b, n, err := appendLongSlice(nil, v, limit); err == nil && n > limit {
			return json.RawMessage(b), n
		}
		if b, n, err := appendLongMap(nil, v, limit); err == nil && n > limit {
			return json.RawMessage(b), n
		}
	}
	return v, 0
}

// cutString returns the start of s, at most limit bytes cut on a rune
// boundary, marked with truncSuffix when something was cut.
func cutString(s string, limit int) string {
	if len(s) <= limit {
		return s
	}
	n := limit
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + truncSuffix
}

// rawPreview stands for raw JSON too large to decode: its encoding is
// {"preview": the start of the text}.
type rawPreview struct{ text []byte }

func (p rawPreview) appendJSON(b []byte, err error) ([]byte, error) {
	w := newObj(b)
	w.Key("preview")
	w.B = jsonesc.AppendString(w.B, string(p.text))
	return w.End(), err
}

func cutRaw(raw []byte, limit int) (any, int) {
	if len(raw) <= rawCutFactor*limit {
		return json.RawMessage(raw), 0
	}
	n := limit
	for n > 0 && !utf8.RuneStart(raw[n]) {
		n--
	}
	return rawPreview{text: raw[:n]}, len(raw)
}

// messagesSize estimates the encoded size of ms from its strings, without
// encoding.
func messagesSize(ms []Message) int {
	n := 0
	for i := range ms {
		n += messageSize(&ms[i])
	}
	return n
}

func messageSize(m *Message) int {
	n := len(m.Role) + len(m.Content) + len(m.Name) + len(m.ToolCallID) + 32
	for j := range m.ToolCalls {
		c := &m.ToolCalls[j]
		n += len(c.ID) + len(c.Name) + len(c.Arguments) + 32
	}
	for j := range m.Parts {
		p := &m.Parts[j]
		n += len(p.Type) + len(p.Text) + len(p.MIMEType) + len(p.URL) + 48
	}
	return n
}

// cutMessages keeps the leading messages of ms that fit in about limit
// bytes (at least one, its content cut to limit), in a new slice.
func cutMessages(ms []Message, limit int) []Message {
	keep, size := 0, 0
	for keep < len(ms) && (keep == 0 || size+messageSize(&ms[keep]) <= limit) {
		size += messageSize(&ms[keep])
		keep++
	}
	out := make([]Message, keep)
	copy(out, ms[:keep])
	for i := range out {
		out[i].Content = cutString(out[i].Content, limit)
		if messageSize(&out[i]) > 2*limit {
			out[i].ToolCalls = nil // arguments too large to keep
		}
	}
	return out
}

var (
	jsonMarshaler = reflect.TypeFor[json.Marshaler]()
	textMarshaler = reflect.TypeFor[encoding.TextMarshaler]()
)

// longSlice is the length above which a slice is encoded in chunks, so
// that the encoding can stop once it is far over the payload cap.
const longSlice = 256

// appendLongSlice appends v, a slice of more than longSlice elements of a
// type with no JSON method of its own, encoding it in chunks and stopping
// once more than stop bytes are written: the rest is counted in a last
// element "…[truncated] N more". It returns the estimated size of the
// whole encoding, or 0 (and b unchanged) if v is not such a slice or was
// encoded whole.
func appendLongSlice(b []byte, v any, stop int) ([]byte, int, error) {
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Slice || rv.Len() <= longSlice || rv.Type().Elem().Kind() == reflect.Uint8 ||
		implementsJSON(rv.Type()) || implementsJSON(rv.Type().Elem()) {
		return b, 0, nil
	}
	start := len(b)
	b = append(b, '[')
	n := rv.Len()
	b, i, err := appendChunked(b, start, n, stop, func(i, j int) ([]byte, error) {
		return marshalValue(rv.Slice(i, j).Interface())
	})
	if err != nil {
		return b[:start], 0, err
	}
	if i == n {
		return b[:start], 0, nil
	}
	written := len(b) - start
	b = append(b, ',')
	b = jsonesc.AppendString(b, truncSuffix+" "+strconv.Itoa(n-i)+" more")
	return append(b, ']'), written * n / i, nil
}

// appendChunked appends elements [0, n) of a JSON array or object opened
// at b[start], a chunk at a time, each chunk encoded by enc(i, j) as a
// whole array or object whose brackets are dropped, until more than stop
// bytes are written since start. It returns how many elements it wrote.
func appendChunked(b []byte, start, n, stop int, enc func(i, j int) ([]byte, error)) ([]byte, int, error) {
	i, chunk := 0, 64
	for i < n && len(b)-start <= stop {
		if i > 0 { // no more elements than the average so far says fit
			chunk = min(chunk*2, (stop-(len(b)-start))*i/(len(b)-start)+1)
		}
		j := min(i+chunk, n)
		e, err := enc(i, j)
		if err != nil {
			return b, 0, err
		}
		if len(e) > 2 { // without its brackets
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, e[1:len(e)-1]...)
		}
		i = j
	}
	return b, i, nil
}

// appendLongMap appends v, a map with string keys of more than longSlice
// entries of a type with no JSON method of its own, encoding its entries in
// key order (the order encoding/json writes) in chunks and stopping once
// more than stop bytes are written: the rest is counted under a last key
// "…[truncated]" whose value is "N more". It returns the estimated size of
// the whole encoding, or 0 (and b unchanged) if v is not such a map or was
// encoded whole. Only the keys are collected and sorted (16 bytes and a
// comparison sort per key); the entries past the cut are never encoded.
func appendLongMap(b []byte, v any, stop int) ([]byte, int, error) {
	rv := reflect.ValueOf(v)
	if !isLongMap(rv) {
		return b, 0, nil
	}
	keys := sortedKeys(rv)
	start := len(b)
	b = append(b, '{')
	n := len(keys)
	b, i, err := appendChunked(b, start, n, stop, func(i, j int) ([]byte, error) {
		return marshalValue(subMap(rv, keys[i:j]).Interface())
	})
	if err != nil {
		return b[:start], 0, err
	}
	if i == n {
		return b[:start], 0, nil
	}
	written := len(b) - start
	b = append(b, ',')
	b = jsonesc.AppendString(b, truncSuffix)
	b = append(b, ':')
	b = jsonesc.AppendString(b, strconv.Itoa(n-i)+" more")
	return append(b, '}'), written * n / i, nil
}

// isLongMap reports whether rv is a map that appendLongMap cuts: string
// keys, more than longSlice entries, no JSON methods on it, its keys or
// its values.
func isLongMap(rv reflect.Value) bool {
	if rv.Kind() != reflect.Map || rv.Len() <= longSlice {
		return false
	}
	t := rv.Type()
	return t.Key().Kind() == reflect.String &&
		!implementsJSON(t) && !implementsJSON(t.Key()) && !implementsJSON(t.Elem())
}

// sortedKeys returns the keys of rv, a map with string keys, sorted.
func sortedKeys(rv reflect.Value) []string {
	keys := make([]string, 0, rv.Len())
	k := reflect.New(rv.Type().Key()).Elem()
	for it := rv.MapRange(); it.Next(); {
		k.SetIterKey(it) // no allocation per key, unlike it.Key()
		keys = append(keys, k.String())
	}
	slices.Sort(keys)
	return keys
}

// subMap returns a new map of rv's type holding rv's entries of keys.
func subMap(rv reflect.Value, keys []string) reflect.Value {
	keyType := rv.Type().Key()
	part := reflect.MakeMapWithSize(rv.Type(), len(keys))
	for _, key := range keys {
		kv := reflect.ValueOf(key).Convert(keyType)
		part.SetMapIndex(kv, rv.MapIndex(kv))
	}
	return part
}

// implementsJSON reports whether values of t (or pointers to them) encode
// themselves.
func implementsJSON(t reflect.Type) bool {
	pt := reflect.PointerTo(t)
	return t.Implements(jsonMarshaler) || t.Implements(textMarshaler) ||
		pt.Implements(jsonMarshaler) || pt.Implements(textMarshaler)
}

// maxValueDepth is the deepest nesting a Go value's encoding may have:
// encoding/json, like most decoders, rejects JSON nested deeper than
// 10,000 levels (raw JSON payloads deeper than that fail validation), and
// a payload adds a few levels of its own around a value.
const maxValueDepth = 10000 - 32

// tooDeep reports whether the JSON text b nests deeper than max levels.
func tooDeep(b []byte, max int) bool {
	depth := 0
	for i := 0; i < len(b); i++ {
		switch b[i] {
		case '{', '[':
			if depth++; depth > max {
				return true
			}
		case '}', ']':
			depth--
		case '"':
			for i++; i < len(b) && b[i] != '"'; i++ {
				if b[i] == '\\' {
					i++
				}
			}
		}
	}
	return false
}

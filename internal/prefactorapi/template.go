package prefactorapi

import (
	"encoding/json"
	"strconv"
	"strings"
	"unicode/utf8"
)

// RenderSummary renders a span type's summary template over the span's
// payload merged with its result payload (the result wins on a key
// collision), as the API does (reference 5.6). It supports the part of
// Liquid summary templates use: output tags {{ path }} where path is
// name(.name | ["key"] | [index])*, with the filters default: "x",
// upcase, downcase, size and truncate: n. Rendering is not strict: a
// missing value renders empty. A template it cannot parse (or one using
// {% %} tags) renders no summary: ok is false.
func RenderSummary(tmpl string, payload, result json.RawMessage) (string, bool) {
	return Codec{}.renderSummary(tmpl, payload, result)
}

// renderSummary is RenderSummary with the codec.
func (c Codec) renderSummary(tmpl string, payload, result json.RawMessage) (string, bool) {
	if strings.Contains(tmpl, "{%") {
		return "", false
	}
	// The payloads are decoded when the template names a value, and then
	// only the top-level values it names: a template names a few of a
	// large payload's.
	ctx := &scope{codec: c, payloads: [2]json.RawMessage{payload, result}}
	var b strings.Builder
	for {
		i := strings.Index(tmpl, "{{")
		if i < 0 {
			if strings.Contains(tmpl, "}}") {
				return "", false
			}
			b.WriteString(tmpl)
			return b.String(), true
		}
		b.WriteString(tmpl[:i])
		tmpl = tmpl[i+2:]
		j := strings.Index(tmpl, "}}")
		if j < 0 {
			return "", false
		}
		v, ok := evalOutput(strings.TrimSpace(tmpl[:j]), ctx)
		if !ok {
			return "", false
		}
		b.WriteString(v)
		tmpl = tmpl[j+2:]
	}
}

// evalOutput evaluates "path | filter: arg | ...".
func evalOutput(expr string, ctx *scope) (string, bool) {
	parts := splitPipes(expr)
	v, ok := lookup(strings.TrimSpace(parts[0]), ctx)
	if !ok {
		return "", false
	}
	for _, f := range parts[1:] {
		name, arg, _ := strings.Cut(strings.TrimSpace(f), ":")
		name, arg = strings.TrimSpace(name), strings.TrimSpace(arg)
		switch name {
		case "default":
			if v == nil || v == "" || v == false {
				s, ok := literal(arg)
				if !ok {
					return "", false
				}
				v = s
			}
		case "upcase":
			v = strings.ToUpper(toString(v))
		case "downcase":
			v = strings.ToLower(toString(v))
		case "size":
			switch x := v.(type) {
			case []any:
				v = float64(len(x))
			case map[string]any:
				v = float64(len(x))
			default:
				v = float64(utf8.RuneCountInString(toString(v)))
			}
		case "truncate":
			n, err := strconv.Atoi(arg)
			if err != nil || n < 0 {
				return "", false
			}
			s := toString(v)
			if utf8.RuneCountInString(s) > n {
				r := []rune(s)
				keep := max(n-3, 0)
				s = string(r[:keep]) + "..."
			}
			v = s
		default:
			return "", false
		}
	}
	return toString(v), true
}

func splitPipes(s string) []string {
	var out []string
	inQ, start := byte(0), 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case inQ != 0:
			if c == inQ {
				inQ = 0
			}
		case c == '"' || c == '\'':
			inQ = c
		case c == '|':
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
}

func literal(s string) (string, bool) {
	if len(s) >= 2 && (s[0] == '"' || s[0] == '\'') && s[len(s)-1] == s[0] {
		return s[1 : len(s)-1], true
	}
	if _, err := strconv.ParseFloat(s, 64); err == nil {
		return s, true
	}
	return "", false
}

// lookup resolves a path; a missing value is nil (not an error), a
// malformed path is.
func lookup(path string, ctx *scope) (any, bool) {
	if path == "" {
		return nil, false
	}
	if s, ok := literal(path); ok {
		return s, true
	}
	var cur any
	i := 0
	readName := func() (string, bool) {
		j := i
		for j < len(path) && (path[j] == '_' || path[j] == '-' || path[j] >= '0' && path[j] <= '9' ||
			path[j] >= 'a' && path[j] <= 'z' || path[j] >= 'A' && path[j] <= 'Z') {
			j++
		}
		if j == i {
			return "", false
		}
		n := path[i:j]
		i = j
		return n, true
	}
	name, ok := readName()
	if !ok {
		return nil, false
	}
	cur = ctx.get(name)
	for i < len(path) {
		switch path[i] {
		case '.':
			i++
			n, ok := readName()
			if !ok {
				return nil, false
			}
			if n == "size" {
				if a, isArr := cur.([]any); isArr {
					cur = float64(len(a))
					continue
				}
			}
			cur = index(cur, n)
		case '[':
			j := strings.IndexByte(path[i:], ']')
			if j < 0 {
				return nil, false
			}
			k := strings.TrimSpace(path[i+1 : i+j])
			i += j + 1
			if s, ok := literal(k); ok && (k[0] == '"' || k[0] == '\'') {
				cur = index(cur, s)
			} else if n, err := strconv.Atoi(k); err == nil {
				a, _ := cur.([]any)
				if n < 0 {
					n += len(a)
				}
				if n >= 0 && n < len(a) {
					cur = a[n]
				} else {
					cur = nil
				}
			} else {
				return nil, false
			}
		default:
			return nil, false
		}
	}
	return cur, true
}

// scope is what a template sees: the top-level values of the payload and
// the result payload (which wins on a collision), decoded on first use.
type scope struct {
	codec    Codec
	payloads [2]json.RawMessage
	raw      map[string]json.RawMessage // nil until first used
	decoded  map[string]any
}

func (s *scope) get(name string) any {
	if v, ok := s.decoded[name]; ok {
		return v
	}
	if s.raw == nil {
		s.raw = map[string]json.RawMessage{}
		for _, p := range s.payloads {
			m := make(map[string]json.RawMessage, 8) // a decoder may size a nil map for many more
			if len(p) > 0 && s.codec.unmarshal(p, &m) == nil {
				for k, v := range m {
					s.raw[k] = v
				}
			}
		}
	}
	raw, ok := s.raw[name]
	if !ok {
		return nil
	}
	var v any
	_ = s.codec.unmarshal(raw, &v) // valid: a part of a decoded object
	if s.decoded == nil {
		s.decoded = map[string]any{}
	}
	s.decoded[name] = v
	return v
}

func index(v any, k string) any {
	if m, ok := v.(map[string]any); ok {
		return m[k]
	}
	return nil
}

func toString(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case bool:
		return strconv.FormatBool(x)
	default:
		b, _ := json.Marshal(x)
		return string(b)
	}
}

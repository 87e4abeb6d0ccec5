package otelbridge

import (
	"encoding/json"
	"strconv"
)

// A small reader for the top level of the JSON objects the root package
// encodes, so that the exporter picks the few fields it maps without
// reflection. Nested values are handed out raw.

// members iterates over the members of a JSON object without allocating.
type members struct {
	b   []byte
	i   int
	bad bool
}

// newMembers starts iterating over the object b; next reports false at
// once if b is not an object.
func newMembers(b []byte) members {
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return members{bad: true}
	}
	return members{b: b, i: skipSpace(b, i+1)}
}

// next returns the next member: its key as raw bytes (the text between the
// quotes, escapes left as they are) and its raw value. It reports false at
// the end of the object or at a fault.
func (m *members) next() (key, val []byte, ok bool) {
	b, i := m.b, m.i
	if m.bad || i >= len(b) || b[i] == '}' {
		return nil, nil, false
	}
	if b[i] == ',' {
		i = skipSpace(b, i+1)
	}
	if i >= len(b) || b[i] != '"' {
		m.bad = true
		return nil, nil, false
	}
	end := skipString(b, i)
	if end < 0 {
		m.bad = true
		return nil, nil, false
	}
	key = b[i+1 : end-1]
	i = skipSpace(b, end)
	if i >= len(b) || b[i] != ':' {
		m.bad = true
		return nil, nil, false
	}
	start := skipSpace(b, i+1)
	end = skipValue(b, start)
	if end < 0 {
		m.bad = true
		return nil, nil, false
	}
	m.i = skipSpace(b, end)
	if m.i >= len(b) || (b[m.i] != ',' && b[m.i] != '}') {
		m.bad = true
		return nil, nil, false
	}
	return key, b[start:end], true
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\n' || b[i] == '\t' || b[i] == '\r') {
		i++
	}
	return i
}

// skipString returns the index after the string starting at b[i] == '"',
// or -1.
func skipString(b []byte, i int) int {
	for j := i + 1; j < len(b); j++ {
		switch b[j] {
		case '\\':
			j++
		case '"':
			return j + 1
		}
	}
	return -1
}

// skipValue returns the index after the value starting at b[i], or -1.
func skipValue(b []byte, i int) int {
	if i >= len(b) {
		return -1
	}
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		depth := 0
		for j := i; j < len(b); j++ {
			switch b[j] {
			case '"':
				j = skipString(b, j)
				if j < 0 {
					return -1
				}
				j--
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return j + 1
				}
			}
		}
		return -1
	}
	j := i
	for j < len(b) && b[j] != ',' && b[j] != '}' && b[j] != ']' && b[j] != ' ' && b[j] != '\n' && b[j] != '\t' && b[j] != '\r' {
		j++
	}
	if j == i {
		return -1
	}
	return j
}

// jsonString returns the string a raw JSON value holds, or "" if it is not
// a string.
func jsonString(raw []byte) string {
	if len(raw) < 2 || raw[0] != '"' {
		return ""
	}
	inner := raw[1 : len(raw)-1]
	plain := true
	for _, c := range inner {
		if c == '\\' || c < 0x20 {
			plain = false
			break
		}
	}
	if plain {
		return string(inner)
	}
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return ""
	}
	return s
}

// jsonInt returns the integer a raw JSON number holds.
func jsonInt(raw []byte) (int64, bool) {
	n, err := strconv.ParseInt(string(raw), 10, 64)
	return n, err == nil
}

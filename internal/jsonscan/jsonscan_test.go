package jsonscan_test

import (
	"encoding/json"
	"strings"
	"testing"
	"unsafe"

	"github.com/stretchr/testify/require"

	"github.com/agenttrace/agenttrace/internal/jsonscan"
)

// Skip accepts exactly the valid JSON documents (nested at most 64 deep).
func FuzzSkip(f *testing.F) {
	for _, s := range []string{`{"a":[1,-2.5e+3,true,false,null,{"b":"\ud83d\ude00 \"q\""}]}`, `[]`, `{}`, `"x"`, `01`, `1.`, `-`, `{"a" 1}`,
		`[1,]`, `{"a":1,}`, "\"\x01\"", `"\x"`, `"\u12g4"`, `tru`, ` 3 `, `{"a":{"b":[{"c":null}]}}`, strings.Repeat("[", 70) + strings.Repeat("]", 70)} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		s := jsonscan.Scanner{B: b}
		ok := s.Skip() && s.End()
		if ok {
			require.True(t, json.Valid(b), "accepted invalid %q", b)
			return
		}
		if json.Valid(b) {
			require.Greater(t, depth(b), 64, "rejected valid %q", b)
		}
	})
}

// depth is the deepest nesting of containers in valid JSON b.
func depth(b []byte) int {
	d, deepest, inStr := 0, 0, false
	for i := 0; i < len(b); i++ {
		switch c := b[i]; {
		case inStr && c == '\\':
			i++
		case c == '"':
			inStr = !inStr
		case !inStr && (c == '[' || c == '{'):
			d++
			deepest = max(deepest, d)
		case !inStr && (c == ']' || c == '}'):
			d--
		}
	}
	return deepest
}

// With S set, strings and keys come out as substrings of S; without it,
// as copies; either way with the same contents.
func TestStringsShareS(t *testing.T) {
	body := []byte(`{"id":"abc","status":"ok"}`)
	for _, s := range []jsonscan.Scanner{{B: body}, jsonscan.NewScanner(body)} {
		var keys, vals []string
		require.True(t, s.Object(func(k []byte) bool {
			v, ok := s.PlainString()
			keys, vals = append(keys, s.String(k)), append(vals, v)
			return ok
		}))
		require.Equal(t, []string{"id", "status"}, keys)
		require.Equal(t, []string{"abc", "ok"}, vals)
		if s.S != "" {
			require.Same(t, unsafe.StringData(s.S[7:]), unsafe.StringData(vals[0]), "a substring of S")
			require.Same(t, unsafe.StringData(s.S[2:]), unsafe.StringData(keys[0]), "a substring of S")
		}
	}
}

// Arena pointers stay valid, and their values distinct, across chunks.
func TestArena(t *testing.T) {
	a := jsonscan.Arena[int]{N: 3}
	var ps []*int
	for i := range 10 {
		p := a.New()
		require.Zero(t, *p)
		*p = i
		ps = append(ps, p)
	}
	for i, p := range ps {
		require.Equal(t, i, *p)
	}
	var zero jsonscan.Arena[string] // N unset: one at a time
	require.Empty(t, *zero.New())
}

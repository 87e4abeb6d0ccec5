package jsonscan_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/agenttrace/agenttrace/internal/jsonscan"
)

type member struct{ key, value string }

// walk returns the members Members finds in b.
func walk(b []byte) []member {
	var ms []member
	for m := jsonscan.NewMembers(b); m.Next(); {
		ms = append(ms, member{string(m.Key), string(m.Value)})
	}
	return ms
}

// decoded returns the members of the valid JSON object b as encoding/json
// reads them: each key decoded and each value's bytes.
func decoded(t *testing.T, b []byte) []member {
	dec := json.NewDecoder(bytes.NewReader(b))
	tok, err := dec.Token()
	require.NoError(t, err)
	require.Equal(t, json.Delim('{'), tok)
	var ms []member
	for dec.More() {
		key, err := dec.Token()
		require.NoError(t, err)
		var value json.RawMessage
		require.NoError(t, dec.Decode(&value))
		ms = append(ms, member{key.(string), string(value)})
	}
	return ms
}

// unquoted is ms with each key's escapes decoded.
func unquoted(t *testing.T, ms []member) []member {
	for i := range ms {
		require.NoError(t, json.Unmarshal([]byte(`"`+ms[i].key+`"`), &ms[i].key))
	}
	return ms
}

func TestMembers(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []member
	}{
		{`{}`, nil},
		{` { } `, nil},
		{`{"a":1}`, []member{{"a", "1"}}},
		{`{"model":"gpt-4o","n":-1.5e3,"ok":true,"x":null,"f":false}`,
			[]member{{"model", `"gpt-4o"`}, {"n", "-1.5e3"}, {"ok", "true"}, {"x", "null"}, {"f", "false"}}},
		{`{ "a" : [1, {"b":"]}"}] , "c":{"d":[[]]} }`, []member{{"a", `[1, {"b":"]}"}]`}, {"c", `{"d":[[]]}`}}},
		{`{"q\"k":"v\\","e":"\\\"}","z":"\u0022"}`, []member{{`q\"k`, `"v\\"`}, {"e", `"\\\"}"`}, {"z", `"\u0022"`}}},
		// Not objects, or cut short: nothing, or the members before the cut.
		{`[1]`, nil},
		{``, nil},
		{`{"a":1,"b":"cut`, []member{{"a", "1"}}},
		{`{"a":[1,2`, nil},
		{`{"a" 1}`, nil},
	} {
		require.Equal(t, tc.want, walk([]byte(tc.in)), "%s", tc.in)
	}
}

// Members reads every valid object as encoding/json does, and anything
// else without failing.
func FuzzMembers(f *testing.F) {
	for _, s := range []string{`{"a":[1,-2.5e+3,true,false,null,{"b":"\ud83d\ude00 \"q\""}]}`, `{}`, `{"a" 1}`,
		`{"a":1,}`, `{"\\":"\\\\"}`, `{"a":{"b":[{"c":null}]}, "d" : "e" }`, `{"a":"` + strings.Repeat(`\\`, 9) + `"}`, `[`, `{`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		got := walk(b)
		if !json.Valid(b) || bytes.TrimSpace(b)[0] != '{' {
			return
		}
		require.Equal(t, decoded(t, b), unquoted(t, got), "%q", b)
	})
}

var payload = func() []byte {
	var msgs []map[string]string
	for i := range 16 {
		msgs = append(msgs, map[string]string{"role": "user", "content": strings.Repeat("The customer asked about the status of their order. ", 4) + `"quoted"`})
		_ = i
	}
	b, _ := json.Marshal(map[string]any{"operation": "chat", "provider": "openai", "model": "gpt-4o",
		"messages": msgs, "settings": map[string]any{"temperature": 0.2}, "stream": true})
	return b
}()

// BenchmarkMembers reads a 4 KB LLM request payload member by member:
// Members against Scanner's checked Object and Raw.
//
//	go test ./internal/jsonscan -run '^$' -bench Members -benchmem
func BenchmarkMembers(b *testing.B) {
	b.Run("members", func(b *testing.B) {
		b.SetBytes(int64(len(payload)))
		for b.Loop() {
			n := 0
			for m := jsonscan.NewMembers(payload); m.Next(); {
				n++
			}
			if n != 6 {
				b.Fatal(n)
			}
		}
	})
	b.Run("scanner", func(b *testing.B) {
		b.SetBytes(int64(len(payload)))
		for b.Loop() {
			n := 0
			s := jsonscan.Scanner{B: payload}
			s.Object(func([]byte) bool {
				var v []byte
				n++
				return s.Raw(&v)
			})
			if n != 6 {
				b.Fatal(n)
			}
		}
	})
}

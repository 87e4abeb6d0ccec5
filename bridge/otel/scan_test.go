package otelbridge

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// FuzzMembers checks the object reader against encoding/json: for a valid
// JSON object it yields every member, with the raw value json sees.
func FuzzMembers(f *testing.F) {
	for _, s := range []string{
		`{}`, ` { "a" : 1 , "b":"x\"y", "c":[1,{"d":"}"}], "e":{"f":null}, "g":true } `,
		`{"model":"gpt-4o","stream":true,"settings":{"temperature":0.2}}`,
		`{"a":"é\u00e9","b":-1.5e3}`, `[1]`, `{"a":}`, `{"a":1,}`, `"x"`, `{"a" 1}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var want map[string]json.RawMessage
		valid := json.Unmarshal(b, &want) == nil && want != nil
		got := map[string]json.RawMessage{}
		m := newMembers(b)
		n := 0
		for {
			k, v, ok := m.next()
			if !ok {
				break
			}
			n++
			if n > len(b) {
				t.Fatal("no progress")
			}
			var key string
			if json.Unmarshal(append(append([]byte{'"'}, k...), '"'), &key) != nil {
				key = string(k)
			}
			got[key] = v
		}
		if !valid {
			return
		}
		require.False(t, m.bad, "valid object %q read as faulty", b)
		require.Len(t, got, len(want))
		for k, v := range want {
			assert.Equal(t, string(bytes.TrimSpace(v)), string(got[k]), "member %q", k)
		}
	})
}

func TestJSONString(t *testing.T) {
	assert.Equal(t, "gpt-4o", jsonString([]byte(`"gpt-4o"`)))
	assert.Equal(t, `a"b`, jsonString([]byte(`"a\"b"`)))
	assert.Equal(t, "é", jsonString([]byte(`"\u00e9"`)))
	assert.Equal(t, "", jsonString([]byte(`12`)))
	n, ok := jsonInt([]byte("42"))
	assert.True(t, ok)
	assert.Equal(t, int64(42), n)
}

package prefactorapi

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestRenderSummary(t *testing.T) {
	payload := json.RawMessage(`{"model":"gpt","messages":[{"role":"user","content":"hi"},{"role":"tool","content":"x"}],"n":3,"who":"payload","big":{"a":[1,2,3]}}`)
	result := json.RawMessage(`{"who":"result","text":"Hello world","ok":true}`)
	for _, tc := range []struct {
		tmpl, want string
		ok         bool
	}{
		{"plain text", "plain text", true},
		{"{{ model }} said {{ text | truncate: 5 }}", "gpt said He...", true},
		{"{{ who }}", "result", true}, // the result wins
		{"{{ messages[0].content | upcase }} {{ messages[-1].role }} {{ messages.size }}", "HI tool 2", true},
		{`{{ big["a"][1] }} {{ n }} {{ ok }}`, "2 3 true", true},
		{"[{{ missing }}] [{{ missing.deeper | default: \"none\" }}]", "[] [none]", true},
		{"{{ big }}", `{"a":[1,2,3]}`, true},
		{"{% if x %}", "", false},
		{"{{ model", "", false},
		{"model }}", "", false},
		{"{{ .model }}", "", false},
	} {
		got, ok := RenderSummary(tc.tmpl, payload, result)
		assert.Equal(t, tc.ok, ok, tc.tmpl)
		assert.Equal(t, tc.want, got, tc.tmpl)
	}
	// Payloads that are not objects give no values.
	got, ok := RenderSummary("[{{ a }}]", json.RawMessage(`[1]`), nil)
	assert.True(t, ok)
	assert.Equal(t, "[]", got)
	got, ok = RenderSummary("{{ a }}", nil, json.RawMessage(`{"a":"r"}`))
	assert.True(t, ok)
	assert.Equal(t, "r", got)
}

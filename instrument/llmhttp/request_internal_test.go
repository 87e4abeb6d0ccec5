package llmhttp

import (
	"bytes"
	"encoding/json"
	"io"
	"testing"
	"testing/iotest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The scanned Chat Completions request reads what encoding/json read, and
// refuses what it refused.
func TestScanChatRequest(t *testing.T) {
	body := `{"model":"gpt-4o","messages":[{"role":"system","content":"Be \"brief\"."},{"role":"user","name":"ann","content":[{"type":"text","text":"Hi"}]},` +
		`{"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function","function":{"name":"f","arguments":"{\"a\":1}"}}]},` +
		`{"role":"tool","tool_call_id":"call_1","content":"42"}],"tools":[{"type":"function","function":{"name":"f","description":"d","parameters":{"type":"object"}}}],` +
		`"temperature":0.5,"top_p":null,"max_completion_tokens":100,"seed":7,"stop":["x"],"response_format":{"type":"json_object"},"tool_choice":"auto",` +
		`"reasoning_effort":"low","stream":true,"stream_options":{"include_usage":false},"service_tier":"flex","unknown":{"deep":[1,2,{"x":null}]}} `
	r, ok := scanChatRequest([]byte(body))
	require.True(t, ok)
	assert.Equal(t, "gpt-4o", r.Model)
	require.Len(t, r.Messages, 4)
	assert.Equal(t, `"Be \"brief\"."`, string(r.Messages[0].Content))
	assert.Equal(t, "ann", r.Messages[1].Name)
	require.Len(t, r.Messages[2].ToolCalls, 1)
	assert.Equal(t, "f", r.Messages[2].ToolCalls[0].Function.Name)
	assert.Equal(t, "call_1", r.Messages[3].ToolCallID)
	assert.Equal(t, `{"a":1}`, mustString(t, r.Messages[2].ToolCalls[0].Function.Arguments))
	assert.Equal(t, "call_1", r.Messages[2].ToolCalls[0].ID)
	require.Len(t, r.Tools, 1)
	assert.Equal(t, "f", r.Tools[0].Function.Name)
	assert.Equal(t, `"d"`, string(r.Tools[0].Function.Description))
	assert.JSONEq(t, `{"type":"object"}`, string(r.Tools[0].Function.Parameters))
	require.NotNil(t, r.Temperature)
	assert.Equal(t, 0.5, *r.Temperature)
	assert.Nil(t, r.TopP)
	assert.EqualValues(t, 100, *r.MaxCompletionTokens)
	assert.EqualValues(t, 7, *r.Seed)
	assert.Equal(t, []string{"x"}, stopList(r.Stop))
	assert.Equal(t, "json_object", r.ResponseFormat.Type)
	assert.Equal(t, "auto", toolChoice(r.ToolChoice))
	assert.Equal(t, "low", r.ReasoningEffort)
	assert.True(t, r.Stream)
	assert.True(t, r.includeUsageSet, "include_usage:false is set: left as the caller asked")
	assert.Equal(t, "flex", r.ServiceTier)

	r, ok = scanChatRequest([]byte(`{"stream":true,"stream_options":{"include_usage":null}}`))
	require.True(t, ok)
	assert.False(t, r.includeUsageSet)

	for _, bad := range []string{``, `[]`, `"x"`, `{"model":1}`, `{"temperature":"hot"}`, `{"stream":"yes"}`, `{"messages":[1]}`,
		`{"model":"a"} x`, `{"model":"a"`, `{"tools":{}}`, `{"max_tokens":1.5}`, `{"tools":[1]}`, `{"tools":[{"function":{"name":1}}]}`,
		`{"tools":[{"function":[]}]}`, `{"messages":[{"tool_calls":{}}]}`,
		`{"messages":[{"tool_calls":[{"id":3}]}]}`, `{"messages":[{"tool_calls":[{"function":{"name":true}}]}]}`} {
		_, ok := scanChatRequest([]byte(bad))
		assert.False(t, ok, bad)
		var v chatRequest
		assert.Error(t, json.Unmarshal([]byte(bad), &v), "encoding/json refuses %s too", bad)
	}
}

// A tool description that is not a string is refused, as the SDKs'
// types refuse it (chatTool keeps the raw description to unescape it only
// when content is captured).
func TestScanChatRequestToolDescription(t *testing.T) {
	_, ok := scanChatRequest([]byte(`{"tools":[{"function":{"description":2}}]}`))
	assert.False(t, ok)
	r, ok := scanChatRequest([]byte(`{"tools":[{"function":{"name":"f","description":null}}]}`))
	require.True(t, ok)
	d, ok := jsonString(r.Tools[0].Function.Description)
	assert.False(t, ok)
	assert.Empty(t, d)
}

// readAll reads bodies shorter, longer and as long as announced.
func TestReadAll(t *testing.T) {
	data := bytes.Repeat([]byte("abc"), 100)
	for _, n := range []int64{-1, 0, 10, 299, 300, 301, 1000} {
		got, err := readAll(iotest.HalfReader(bytes.NewReader(data)), n)
		require.NoError(t, err, n)
		assert.Equal(t, data, got, n)
	}
	_, err := readAll(iotest.TimeoutReader(bytes.NewReader(data)), 300)
	assert.Error(t, err)
	_, err = readAll(io.MultiReader(bytes.NewReader(data), iotest.ErrReader(io.ErrClosedPipe)), 300)
	assert.ErrorIs(t, err, io.ErrClosedPipe)
}

func mustString(t *testing.T, raw json.RawMessage) string {
	t.Helper()
	var v string
	require.NoError(t, json.Unmarshal(raw, &v))
	return v
}

// strLen is the length of the unescaped string, as jsonString's.
func TestStrLen(t *testing.T) {
	rc := &reqCapture{}
	for _, in := range []string{`""`, `"abc"`, `"a\"b\u00e9"`, `"\ud83d\ude00 x"`, `"tab\tnl\n"`} {
		n, ok := rc.strLen(json.RawMessage(in))
		require.True(t, ok, in)
		s, ok := jsonString(json.RawMessage(in))
		require.True(t, ok, in)
		assert.Equal(t, len(s), n, in)
	}
	for _, bad := range []string{`"abc`, `abc`, `"a" x`, `1`} {
		_, ok := rc.strLen(json.RawMessage(bad))
		assert.False(t, ok, bad)
	}
}

package agenttrace_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"

	"github.com/agenttrace/agenttrace"
)

func payloadOf(t *testing.T, tr *agenttrace.Tracer, v any) agenttrace.SpanData {
	t.Helper()
	_, s := tr.Start(context.Background(), "chain", v)
	defer s.End()
	return s.Data()
}

func TestTypedPayloads(t *testing.T) {
	tr, _ := newTracer(t)
	temp := 0.2
	for name, tc := range map[string]struct {
		v    any
		want string
	}{
		"llm request": {agenttrace.LLMRequest{Operation: "chat", Provider: "openai", Model: "gpt-4o", System: "be brief",
			Messages: []agenttrace.Message{{Role: "user", Content: "hi"}, {Role: "assistant", ToolCalls: []agenttrace.ToolCall{
				{ID: "c1", Name: "search", Arguments: json.RawMessage(`{"q":"x"}`)}}}, {Role: "tool", ToolCallID: "c1", Content: "r"}},
			Tools:    []agenttrace.ToolDefinition{{Name: "search", Description: "d", Parameters: json.RawMessage(`{"type":"object"}`)}},
			Settings: &agenttrace.LLMSettings{Temperature: &temp, Stop: []string{"\n"}}, Stream: true,
			Metadata: map[string]any{"k": 1}},
			`{"operation":"chat","provider":"openai","model":"gpt-4o","system":"be brief","messages":[{"role":"user","content":"hi"},
			{"role":"assistant","tool_calls":[{"id":"c1","name":"search","arguments":{"q":"x"}}]},{"role":"tool","content":"r","tool_call_id":"c1"}],
			"tools":[{"name":"search","description":"d","parameters":{"type":"object"}}],"settings":{"temperature":0.2,"stop":["\n"]},
			"stream":true,"metadata":{"k":1}}`},
		"llm response": {agenttrace.LLMResponse{ID: "r1", Model: "m", Text: "t", FinishReason: "stop",
			Usage: &agenttrace.Usage{PromptTokens: 3, CompletionTokens: 4, Details: map[string]int64{"cache_read": 1}},
			Cost:  &agenttrace.Cost{Prompt: 0.5, Completion: 0.25}},
			`{"id":"r1","model":"m","text":"t","finish_reason":"stop","token_usage":{"prompt_tokens":3,"completion_tokens":4,"total_tokens":7,
			"details":{"cache_read":1}},"cost":{"prompt":0.5,"completion":0.25,"total":0.75,"currency":"USD"}}`},
		"tool input":   {agenttrace.ToolInput{Name: "search", CallID: "c1", Arguments: map[string]any{"q": "x"}}, `{"tool_name":"search","call_id":"c1","arguments":{"q":"x"}}`},
		"tool output":  {agenttrace.ToolOutput{Output: nil, IsError: true}, `{"output":null,"is_error":true}`},
		"agent input":  {agenttrace.AgentInput{Name: "a", SessionID: "s", Model: "m", Input: "q"}, `{"agent_name":"a","session_id":"s","model":"m","input":"q"}`},
		"agent output": {agenttrace.AgentOutput{Output: "o", StopReason: "end", Turns: 2}, `{"output":"o","stop_reason":"end","turns":2}`},
		"chain":        {agenttrace.ChainInput{Name: "n", Inputs: []int{1}}, `{"name":"n","inputs":[1]}`},
		"chain output": {agenttrace.ChainOutput{Outputs: true}, `{"outputs":true}`},
		"pointer":      {&agenttrace.ToolInput{Name: "p"}, `{"tool_name":"p"}`},
		"nil pointer":  {(*agenttrace.ToolInput)(nil), `{"value":null}`},
		"struct":       {struct{ A int }{1}, `{"A":1}`},
		"number":       {42, `{"value":42}`},
		"string":       {"hello", `{"value":"hello"}`},
		"array":        {[]string{"a"}, `{"value":["a"]}`},
		"raw object":   {json.RawMessage(`{"a": [1, 2]}`), `{"a":[1,2]}`},
		"raw bytes":    {[]byte(`[true]`), `{"value":[true]}`},
	} {
		t.Run(name, func(t *testing.T) {
			d := payloadOf(t, tr, tc.v)
			require.JSONEq(t, tc.want, string(d.Payload))
			require.Empty(t, d.PayloadError)
		})
	}
	require.Zero(t, tr.Stats().PayloadErrors)
}

func TestPayloadIsASnapshot(t *testing.T) {
	tr, _ := newTracer(t)
	m := map[string]any{"k": "before"}
	msgs := []agenttrace.Message{{Role: "user", Content: "before"}}
	_, s := tr.Start(context.Background(), "llm", agenttrace.LLMRequest{Messages: msgs, Metadata: m})
	m["k"] = "after"
	msgs[0].Content = "after"
	require.NotContains(t, string(s.Data().Payload), "after")
	s.End()
}

type badMarshaler struct{ panics bool }

func (b badMarshaler) MarshalJSON() ([]byte, error) {
	if b.panics {
		panic("marshal bug")
	}
	return nil, errors.New("cannot marshal")
}

func TestUnencodablePayloadsBecomeMarkers(t *testing.T) {
	tr, _ := newTracer(t)
	for name, v := range map[string]any{
		"channel":          make(chan int),
		"func":             func() {},
		"marshaler error":  badMarshaler{},
		"marshaler panic":  badMarshaler{panics: true},
		"nested in typed":  agenttrace.ToolInput{Name: "x", Arguments: make(chan int)},
		"invalid raw json": json.RawMessage(`{"a":`),
	} {
		t.Run(name, func(t *testing.T) {
			d := payloadOf(t, tr, v)
			var m map[string]map[string]any
			require.NoError(t, json.Unmarshal(d.Payload, &m), string(d.Payload))
			require.Equal(t, "encoding", m[agenttrace.MarkerKey]["error"])
			require.NotEmpty(t, m[agenttrace.MarkerKey]["message"])
			require.NotEmpty(t, d.PayloadError)
		})
	}
	require.EqualValues(t, 6, tr.Stats().PayloadErrors)
}

func TestInvalidUTF8IsRepaired(t *testing.T) {
	tr, _ := newTracer(t)
	for _, v := range []any{
		agenttrace.LLMRequest{Model: "m\xff\xfe"},
		map[string]string{"k\xc3": "v\xed\xa0\x80"},
		json.RawMessage("{\"a\":\"\xff\"}"),
		"\xff",
	} {
		d := payloadOf(t, tr, v)
		require.True(t, utf8.Valid(d.Payload), "%q", d.Payload)
		require.True(t, json.Valid(d.Payload))
		require.True(t, strings.Contains(string(d.Payload), "\ufffd") || strings.Contains(string(d.Payload), `\ufffd`),
			"%q", d.Payload)
	}
}

func TestOversizedPayloadIsTruncated(t *testing.T) {
	const limit = 4096
	tr, _ := newTracer(t, agenttrace.WithPayloadLimit(limit))
	big := strings.Repeat("lorem ipsum ", 2000)
	for name, v := range map[string]any{
		"long string": agenttrace.LLMRequest{Model: "m", Messages: []agenttrace.Message{{Role: "user", Content: big}}},
		"long array":  map[string]any{"xs": make([]int, 5000)},
		"many keys": func() map[string]int {
			m := map[string]int{}
			for i := range 2000 {
				m[strings.Repeat("k", 10)+string(rune('a'+i%26))+strings.Repeat("z", i%40)] = i
			}
			return m
		}(),
	} {
		t.Run(name, func(t *testing.T) {
			d := payloadOf(t, tr, v)
			require.LessOrEqual(t, len(d.Payload), limit)
			var m map[string]any
			require.NoError(t, json.Unmarshal(d.Payload, &m))
			marker := m[agenttrace.MarkerKey].(map[string]any)
			require.Equal(t, true, marker["truncated"])
			require.Greater(t, marker["original_bytes"], float64(limit))
		})
	}
	// Structure is kept where it can be: the model survives the cut.
	d := payloadOf(t, tr, agenttrace.LLMRequest{Model: "gpt-4o", Messages: []agenttrace.Message{{Role: "user", Content: big}}})
	require.Contains(t, string(d.Payload), `"model":"gpt-4o"`)
	require.Contains(t, string(d.Payload), "…[truncated]")
	require.EqualValues(t, 4, tr.Stats().PayloadsTruncated)
}

func TestRedactor(t *testing.T) {
	var seen []string
	redact := func(spanType string, field agenttrace.PayloadField, p []byte) []byte {
		seen = append(seen, spanType+"/"+field.String())
		return []byte(strings.ReplaceAll(string(p), "sk-secret", "[redacted]"))
	}
	tr, _ := newTracer(t, agenttrace.WithRedactor(redact))
	_, s := tr.Start(context.Background(), "tool", map[string]string{"key": "sk-secret"})
	s.SetResult(map[string]string{"echo": "sk-secret"})
	d := s.Data()
	s.End()
	require.JSONEq(t, `{"key":"[redacted]"}`, string(d.Payload))
	require.JSONEq(t, `{"echo":"[redacted]"}`, string(d.Result))
	require.Equal(t, []string{"tool/payload", "tool/result_payload"}, seen)
}

func TestBrokenRedactorNeverLeaks(t *testing.T) {
	for name, r := range map[string]agenttrace.Redactor{
		"panics":     func(string, agenttrace.PayloadField, []byte) []byte { panic("redactor bug") },
		"not json":   func(string, agenttrace.PayloadField, []byte) []byte { return []byte("nope") },
		"not object": func(string, agenttrace.PayloadField, []byte) []byte { return []byte(`[1]`) },
	} {
		t.Run(name, func(t *testing.T) {
			tr, _ := newTracer(t, agenttrace.WithRedactor(r))
			d := payloadOf(t, tr, map[string]string{"key": "sk-secret"})
			require.NotContains(t, string(d.Payload), "sk-secret")
			require.Contains(t, string(d.Payload), `"error":"redaction"`)
			require.EqualValues(t, 1, tr.Stats().PayloadErrors)
		})
	}
}

// FuzzPayloadRaw: whatever bytes arrive, the stored payload is a valid JSON
// object, valid UTF-8, within the cap.
func FuzzPayloadRaw(f *testing.F) {
	for _, s := range []string{`{}`, `{"a":1}`, `[1,2]`, `"x"`, `nul`, "{\"a\":\"\xff\"}", `{"a":"` + strings.Repeat("é", 900) + `"}`,
		`[` + strings.Repeat(`{"k":[1,2,3]},`, 300) + `1]`, `{"` + agenttrace.MarkerKey + `":1}`} {
		f.Add([]byte(s), uint16(0))
	}
	tracers := map[int]*agenttrace.Tracer{}
	f.Cleanup(func() {
		for _, tr := range tracers {
			_ = tr.Shutdown(context.Background())
		}
	})
	f.Fuzz(func(t *testing.T, raw []byte, extra uint16) {
		limit := 1024 + int(extra%4)*1024
		tr := tracers[limit]
		if tr == nil {
			var err error
			tr, err = agenttrace.New(agenttrace.WithPayloadLimit(limit))
			require.NoError(t, err)
			tracers[limit] = tr
		}
		for _, v := range []any{json.RawMessage(raw), string(raw), map[string]string{"s": string(raw)}} {
			_, s := tr.Start(context.Background(), "chain", v)
			p := s.Data().Payload
			s.End()
			require.LessOrEqual(t, len(p), limit)
			require.True(t, json.Valid(p), "%q", p)
			require.True(t, utf8.Valid(p))
			var obj map[string]any
			require.NoError(t, json.Unmarshal(p, &obj), "must be an object: %q", p)
		}
	})
}

// FuzzPayloadTruncation: objects built from fuzzed strings, far over the
// cap, come out valid, within the cap and marked.
func FuzzPayloadTruncation(f *testing.F) {
	f.Add("key", "value", uint8(10), uint16(3000))
	f.Add("\xff", "\"\\\n", uint8(200), uint16(1))
	f.Add("", "é😀", uint8(1), uint16(5000))
	tr, err := agenttrace.New(agenttrace.WithPayloadLimit(1024))
	require.NoError(f, err)
	f.Cleanup(func() { _ = tr.Shutdown(context.Background()) })
	f.Fuzz(func(t *testing.T, k, v string, n uint8, rep uint16) {
		obj := map[string]any{}
		big := strings.Repeat(v+"x", int(rep%6000)+1100) // always over the cap
		for i := range int(n%50) + 1 {
			obj[k+strings.Repeat("_", i)] = []any{big, map[string]any{k: big, "n": i}}
		}
		_, s := tr.Start(context.Background(), "chain", obj)
		p := s.Data().Payload
		s.End()
		require.LessOrEqual(t, len(p), 1024)
		require.True(t, json.Valid(p), "%q", p)
		var m map[string]any
		require.NoError(t, json.Unmarshal(p, &m))
		require.Contains(t, m, agenttrace.MarkerKey)
	})
}

type latin1Marshaler struct{}

func (latin1Marshaler) MarshalJSON() ([]byte, error) { return []byte("\"caf\xe9\""), nil }

func TestNilTypedPointersAndBadMarshalerBytes(t *testing.T) {
	tr, _ := newTracer(t)
	_, s := tr.Start(context.Background(), "llm", (*agenttrace.LLMRequest)(nil))
	s.SetResult((*agenttrace.LLMResponse)(nil))
	s.End()
	d := s.Data()
	require.True(t, json.Valid(d.Payload), "%q", d.Payload)
	require.True(t, json.Valid(d.Result), "%q", d.Result)
	require.Nil(t, d.Usage)

	// Usage details are copied when the result is set.
	details := map[string]int64{"cached": 3}
	_, s = tr.Start(context.Background(), "llm", nil)
	s.SetResult(agenttrace.LLMResponse{Usage: &agenttrace.Usage{PromptTokens: 1, Details: details}})
	details["cached"] = 99
	s.End()
	require.EqualValues(t, 3, s.Data().Usage.Details["cached"])

	p := payloadOf(t, tr, map[string]any{"m": latin1Marshaler{}})
	require.True(t, utf8.Valid(p.Payload), "%q", p.Payload)
	require.True(t, json.Valid(p.Payload), "%q", p.Payload)
}

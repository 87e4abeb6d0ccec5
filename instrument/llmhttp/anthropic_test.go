package llmhttp_test

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agenttrace/agenttrace"
	"github.com/agenttrace/agenttrace/agenttracetest"
	"github.com/agenttrace/agenttrace/instrument/llmhttp"
)

const anthropicReq = `{"model":"claude-sonnet-4-5-20250929","max_tokens":1024,"stream":true,"system":"You are terse.",
"tools":[{"name":"get_weather","description":"Get the weather","input_schema":{"type":"object","properties":{"location":{"type":"string"}}}}],
"tool_choice":{"type":"auto"},"temperature":0.5,
"messages":[{"role":"user","content":"What is the weather in San Francisco?"}]}`

func TestAnthropicStreamToolUse(t *testing.T) {
	for _, chunk := range []int{0, 1, 7} {
		tr, rec := agenttracetest.New(t)
		body := fixture(t, "anthropic_stream_tool.sse")
		srv := serve(t, 200, "text/event-stream", body, chunk)
		client := newClient(tr, llmhttp.WithCapture(llmhttp.CaptureFull))
		ctx, inst := tr.StartInstance(context.Background())
		ctx, agent := tr.Start(ctx, agenttrace.TypeAgent, agenttrace.AgentInput{Name: "weather"})
		status, got, err := post(t, client, ctx, srv.URL+"/v1/messages", anthropicReq)
		require.NoError(t, err)
		require.Equal(t, 200, status)
		eq(t, body, got)
		agent.End()
		inst.End()

		s := llmSpans(t, tr, rec, 1)[0]
		assert.Equal(t, agenttrace.StatusComplete, s.Status)
		assert.Equal(t, agent.ID(), s.ParentID, "child of the span in the request's context")
		assert.Equal(t, inst.ID(), s.InstanceID)
		assert.Equal(t, "chat claude-sonnet-4-5-20250929", s.Name)
		assert.False(t, s.FirstTokenAt.IsZero(), "time to first token")
		assert.False(t, s.FirstTokenAt.Before(s.StartedAt) || s.FirstTokenAt.After(s.EndedAt))

		req := decodeRequest(t, s)
		assert.Equal(t, "anthropic", req.Provider)
		assert.Equal(t, "chat", req.Operation)
		assert.True(t, req.Stream)
		assert.Equal(t, "You are terse.", req.System)
		require.Len(t, req.Messages, 1)
		assert.Equal(t, "What is the weather in San Francisco?", req.Messages[0].Content)
		require.Len(t, req.Tools, 1)
		assert.Equal(t, "get_weather", req.Tools[0].Name)
		require.NotNil(t, req.Settings)
		assert.Equal(t, "auto", req.Settings.ToolChoice)
		assert.Equal(t, 0.5, *req.Settings.Temperature)
		assert.Equal(t, int64(1024), *req.Settings.MaxTokens)

		r := decodeResult(t, s)
		assert.Equal(t, "msg_014p7gG3wDgGV9EUtLvnow3U", r.ID)
		assert.Equal(t, "claude-sonnet-4-5-20250929", r.Model)
		assert.Equal(t, "Okay, let's check the weather for San Francisco, CA:", r.Text)
		assert.Equal(t, "tool_use", r.FinishReason)
		assert.Equal(t, "standard", r.ServiceTier)
		require.Len(t, r.ToolCalls, 1)
		assert.Equal(t, "toolu_01T1x1fJ34qAmk2tNTrN7Up6", r.ToolCalls[0].ID)
		assert.Equal(t, "get_weather", r.ToolCalls[0].Name)
		assert.JSONEq(t, `{"location": "San Francisco, CA", "unit": "fahrenheit"}`, string(r.ToolCalls[0].Arguments))

		// input_tokens excludes the cache: 472 + 1000 read + 100 written.
		require.NotNil(t, s.Usage)
		assert.Equal(t, agenttrace.Usage{PromptTokens: 1572, CompletionTokens: 89, TotalTokens: 1661, Details: map[string]int64{
			agenttrace.UsageCacheRead: 1000, agenttrace.UsageCacheWrite: 100, agenttrace.UsageCacheWrite5m: 100,
		}}, *s.Usage)
		// Sonnet 4.5: $3 input, $0.30 cache read, $3.75 5-minute write, $15 output per MTok.
		require.NotNil(t, s.Cost)
		assert.InDelta(t, (472*3+1000*0.3+100*3.75)/1e6, s.Cost.Prompt, 1e-12)
		assert.InDelta(t, 89*15/1e6, s.Cost.Completion, 1e-12)
		assert.InDelta(t, s.Cost.Prompt+s.Cost.Completion, s.Cost.Total, 1e-12)
		assert.Equal(t, "USD", s.Cost.Currency)

		// The instance rolls up usage details and cost.
		sum := inst.Summary()
		require.NotNil(t, sum.Usage)
		assert.Equal(t, int64(1000), sum.Usage.Details[agenttrace.UsageCacheRead])
		require.NotNil(t, sum.Cost)
		assert.InDelta(t, s.Cost.Total, sum.Cost.Total, 1e-9)
	}
}

func TestAnthropicStreamThinking(t *testing.T) {
	tr, rec := agenttracetest.New(t)
	body := fixture(t, "anthropic_stream_thinking.sse")
	srv := serve(t, 200, "text/event-stream", body, 3)
	_, got, err := post(t, newClient(tr, llmhttp.WithCapture(llmhttp.CaptureFull)), context.Background(), srv.URL+"/v1/messages",
		`{"model":"claude-sonnet-4-20250514","max_tokens":16000,"stream":true,"thinking":{"type":"enabled","budget_tokens":10000},"messages":[{"role":"user","content":"What is 27 * 453?"}]}`)
	require.NoError(t, err)
	eq(t, body, got)
	s := llmSpans(t, tr, rec, 1)[0]
	assert.Equal(t, agenttrace.StatusComplete, s.Status)
	r := decodeResult(t, s)
	assert.Equal(t, "27 * 453 = 12,231", r.Text)
	assert.Equal(t, "end_turn", r.FinishReason)
	require.Len(t, r.Messages, 1)
	require.Len(t, r.Messages[0].Parts, 1)
	assert.Equal(t, agenttrace.PartThinking, r.Messages[0].Parts[0].Type)
	assert.Equal(t, "Let me solve this step by step:\n\n1. First break down 27 * 453\n2. 453 = 400 + 50 + 3", r.Messages[0].Parts[0].Text)
	assert.Equal(t, "budget:10000", decodeRequest(t, s).Settings.ReasoningEffort)
	assert.Equal(t, agenttrace.Usage{PromptTokens: 12, CompletionTokens: 104, TotalTokens: 116}, *s.Usage)
}

func TestAnthropicStreamErrorEvent(t *testing.T) {
	tr, rec := agenttracetest.New(t)
	body := fixture(t, "anthropic_stream_error.sse")
	srv := serve(t, 200, "text/event-stream", body, 0)
	_, got, err := post(t, newClient(tr), context.Background(), srv.URL+"/v1/messages", `{"model":"claude-haiku-4-5","stream":true,"max_tokens":5,"messages":[]}`)
	require.NoError(t, err)
	eq(t, body, got)
	s := llmSpans(t, tr, rec, 1)[0]
	assert.Equal(t, agenttrace.StatusFailed, s.Status)
	require.NotNil(t, s.Error)
	assert.Equal(t, "overloaded_error", s.Error.Type)
	assert.Contains(t, s.Error.Message, "Overloaded")
	assert.False(t, s.FirstTokenAt.IsZero())
}

func TestAnthropicJSON(t *testing.T) {
	tr, rec := agenttracetest.New(t)
	body := fixture(t, "anthropic_message.json")
	srv := serve(t, 200, "application/json", body, 0)
	_, got, err := post(t, newClient(tr, llmhttp.WithCapture(llmhttp.CaptureFull)), context.Background(), srv.URL+"/v1/messages",
		`{"model":"claude-sonnet-4-5","max_tokens":1024,"messages":[{"role":"user","content":[{"type":"text","text":"Hello"},{"type":"image","source":{"type":"base64","media_type":"image/png","data":"aGVsbG8="}}]},
		{"role":"assistant","content":[{"type":"tool_use","id":"toolu_1","name":"lookup","input":{"q":"x"}}]},
		{"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_1","content":"42"}]}]}`)
	require.NoError(t, err)
	eq(t, body, got)
	s := llmSpans(t, tr, rec, 1)[0]
	assert.Equal(t, agenttrace.StatusComplete, s.Status)
	assert.True(t, s.FirstTokenAt.IsZero(), "no first token for a call that is not streamed")
	req := decodeRequest(t, s)
	require.Len(t, req.Messages, 3)
	assert.Equal(t, "Hello", req.Messages[0].Content)
	require.Len(t, req.Messages[0].Parts, 1)
	assert.Equal(t, agenttrace.ContentPart{Type: agenttrace.PartImage, MIMEType: "image/png", Size: 8}, req.Messages[0].Parts[0])
	require.Len(t, req.Messages[1].ToolCalls, 1)
	assert.JSONEq(t, `{"q":"x"}`, string(req.Messages[1].ToolCalls[0].Arguments))
	assert.Equal(t, agenttrace.Message{Role: "tool", ToolCallID: "toolu_1", Content: "42"}, req.Messages[2])

	r := decodeResult(t, s)
	assert.Equal(t, "Hello!\nMy name is Claude.", r.Text)
	require.Len(t, r.ToolCalls, 1)
	assert.JSONEq(t, `{"location":"San Francisco, CA"}`, string(r.ToolCalls[0].Arguments))
	assert.Equal(t, "The user greets me.", r.Messages[0].Parts[0].Text)
	assert.Equal(t, agenttrace.Usage{PromptTokens: 2095 + 2051 + 2051, CompletionTokens: 503, TotalTokens: 2095 + 2051 + 2051 + 503, Details: map[string]int64{
		agenttrace.UsageCacheRead: 2051, agenttrace.UsageCacheWrite: 2051, agenttrace.UsageCacheWrite5m: 51, agenttrace.UsageCacheWrite1h: 2000,
	}}, *s.Usage)
	assert.InDelta(t, (2095*3+2051*0.3+51*3.75+2000*6)/1e6, s.Cost.Prompt, 1e-12)
}

func TestAnthropicAPIError(t *testing.T) {
	tr, rec := agenttracetest.New(t)
	body := fixture(t, "anthropic_error_429.json")
	srv := serve(t, http.StatusTooManyRequests, "application/json", body, 0)
	status, got, err := post(t, newClient(tr), context.Background(), srv.URL+"/v1/messages", `{"model":"claude-haiku-4-5","max_tokens":5,"messages":[]}`)
	require.NoError(t, err)
	assert.Equal(t, 429, status)
	eq(t, body, got)
	s := llmSpans(t, tr, rec, 1)[0]
	assert.Equal(t, agenttrace.StatusFailed, s.Status)
	assert.Equal(t, "rate_limit_error", s.Error.Type)
	assert.Contains(t, s.Error.Message, "429")
	assert.Contains(t, s.Error.Message, "per-minute rate limit")
	assert.Nil(t, s.Usage)
	assert.Nil(t, s.Cost)
}

func TestCaptureMetadataKeepsNoText(t *testing.T) {
	for _, mode := range []llmhttp.CaptureMode{llmhttp.CaptureMetadata, llmhttp.CaptureOff} {
		tr, rec := agenttracetest.New(t)
		body := fixture(t, "anthropic_stream_tool.sse")
		srv := serve(t, 200, "text/event-stream", body, 0)
		_, got, err := post(t, newClient(tr, llmhttp.WithCapture(mode)), context.Background(), srv.URL+"/v1/messages", anthropicReq)
		require.NoError(t, err)
		eq(t, body, got)
		s := llmSpans(t, tr, rec, 1)[0]
		for _, secret := range []string{"San Francisco", "terse", "Get the weather", "Okay"} {
			assert.NotContains(t, string(s.Payload), secret, mode)
			assert.NotContains(t, string(s.Result), secret, mode)
		}
		req, r := decodeRequest(t, s), decodeResult(t, s)
		assert.Equal(t, "claude-sonnet-4-5-20250929", req.Model)
		require.Len(t, r.ToolCalls, 1)
		assert.Equal(t, "get_weather", r.ToolCalls[0].Name, "tool names are metadata")
		assert.Empty(t, r.ToolCalls[0].Arguments)
		assert.NotNil(t, s.Usage)
		if mode == llmhttp.CaptureMetadata {
			require.Len(t, req.Messages, 2) // the system prompt and the user message, by size
			assert.Equal(t, int64(len("What is the weather in San Francisco?")), req.Messages[1].Parts[0].Size)
			require.Len(t, r.Messages, 1)
			assert.Equal(t, int64(len("Okay, let's check the weather for San Francisco, CA:")), r.Messages[0].Parts[0].Size)
		} else {
			assert.Empty(t, req.Messages)
			assert.Empty(t, r.Messages)
		}
	}
}

func TestCaptureFromEnvironment(t *testing.T) {
	t.Setenv(llmhttp.EnvCaptureContent, "SPAN_ONLY")
	tr, rec := agenttracetest.New(t)
	body := fixture(t, "anthropic_stream_tool.sse")
	srv := serve(t, 200, "text/event-stream", body, 0)
	_, _, err := post(t, newClient(tr), context.Background(), srv.URL+"/v1/messages", anthropicReq)
	require.NoError(t, err)
	s := llmSpans(t, tr, rec, 1)[0]
	assert.Contains(t, string(s.Payload), "San Francisco")
}

func TestCaptureCapAndRedactor(t *testing.T) {
	redact := func(_ string, _ agenttrace.PayloadField, p []byte) []byte {
		var m map[string]any
		_ = json.Unmarshal(p, &m)
		if _, ok := m["system"]; ok {
			m["system"] = "[redacted]"
		}
		b, _ := json.Marshal(m)
		return b
	}
	tr, rec := agenttracetest.New(t, agenttrace.WithRedactor(redact))
	body := fixture(t, "anthropic_stream_tool.sse")
	srv := serve(t, 200, "text/event-stream", body, 0)
	_, got, err := post(t, newClient(tr, llmhttp.WithCapture(llmhttp.CaptureFull), llmhttp.WithMaxContentBytes(40)), context.Background(), srv.URL+"/v1/messages", anthropicReq)
	require.NoError(t, err)
	eq(t, body, got)
	s := llmSpans(t, tr, rec, 1)[0]
	req, r := decodeRequest(t, s), decodeResult(t, s)
	assert.Equal(t, "[redacted]", req.System, "the tracer's redactor sees the captured content")
	// 14 bytes of system prompt + 26 of the user message fill the cap.
	assert.Equal(t, "What is the weather in San", req.Messages[0].Content)
	assert.Empty(t, r.Text)
	assert.Equal(t, true, r.Metadata["content_truncated"])
	assert.NotNil(t, s.Usage, "usage is recorded whatever the cap")
}

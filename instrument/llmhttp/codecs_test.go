package llmhttp_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agenttrace/agenttrace"
	"github.com/agenttrace/agenttrace/agenttracetest"
	"github.com/agenttrace/agenttrace/instrument/llmhttp"
)

type wireCase struct {
	name, path, ctype, fixture, req string
	status                          int
	check                           func(t *testing.T, s agenttrace.SpanData, req agenttrace.LLMRequest, r agenttrace.LLMResponse)
}

func TestWireFormats(t *testing.T) {
	cases := []wireCase{{
		name: "chat json", path: "/v1/chat/completions", ctype: "application/json", fixture: "openai_chat.json",
		req: `{"model":"gpt-4.1","messages":[{"role":"developer","content":"Be nice."},{"role":"user","content":[{"type":"text","text":"Hello!"},{"type":"image_url","image_url":{"url":"https://example.com/cat.png"}}]}],"temperature":0.2,"stop":"END","seed":7,"response_format":{"type":"json_object"},"reasoning_effort":"low"}`,
		check: func(t *testing.T, s agenttrace.SpanData, req agenttrace.LLMRequest, r agenttrace.LLMResponse) {
			assert.Equal(t, "openai", req.Provider)
			assert.Equal(t, []string{"END"}, req.Settings.Stop)
			assert.Equal(t, int64(7), *req.Settings.Seed)
			assert.Equal(t, "json_object", req.Settings.ResponseFormat)
			assert.Equal(t, "low", req.Settings.ReasoningEffort)
			require.Len(t, req.Messages, 2)
			assert.Equal(t, agenttrace.Message{Role: "developer", Content: "Be nice."}, req.Messages[0])
			assert.Equal(t, []agenttrace.ContentPart{{Type: agenttrace.PartImage, URL: "https://example.com/cat.png"}}, req.Messages[1].Parts)
			assert.Equal(t, "Hello! How can I assist you today?", r.Text)
			assert.Equal(t, "stop", r.FinishReason)
			assert.Equal(t, "default", r.ServiceTier)
			assert.Equal(t, "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT", r.ID)
			assert.Equal(t, agenttrace.Usage{PromptTokens: 19, CompletionTokens: 10, TotalTokens: 29}, *s.Usage)
			assert.InDelta(t, (19*2+10*8)/1e6, s.Cost.Total, 1e-12) // gpt-4.1 snapshot
		},
	}, {
		name: "chat stream with usage", path: "/v1/chat/completions", ctype: "text/event-stream", fixture: "openai_chat_stream.sse",
		req: `{"model":"gpt-4o-mini","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"Hi"}]}`,
		check: func(t *testing.T, s agenttrace.SpanData, req agenttrace.LLMRequest, r agenttrace.LLMResponse) {
			assert.True(t, req.Stream)
			assert.Equal(t, "Hello! How can I \"help\"…", r.Text)
			assert.Equal(t, "stop", r.FinishReason)
			assert.False(t, s.FirstTokenAt.IsZero())
			// OpenAI's prompt_tokens include the cached ones.
			assert.Equal(t, agenttrace.Usage{PromptTokens: 1200, CompletionTokens: 9, TotalTokens: 1209, Details: map[string]int64{agenttrace.UsageCacheRead: 1024}}, *s.Usage)
			assert.InDelta(t, (176*0.15+1024*0.075)/1e6, s.Cost.Prompt, 1e-12)
		},
	}, {
		name: "chat stream tool call", path: "/v1/chat/completions", ctype: "text/event-stream", fixture: "openai_chat_tool_stream.sse",
		req: `{"model":"gpt-4o","stream":true,"messages":[{"role":"user","content":"Weather?"}],"tools":[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object"}}}],"tool_choice":{"type":"function","function":{"name":"get_weather"}}}`,
		check: func(t *testing.T, s agenttrace.SpanData, req agenttrace.LLMRequest, r agenttrace.LLMResponse) {
			assert.Equal(t, "get_weather", req.Settings.ToolChoice)
			require.Len(t, r.ToolCalls, 1)
			assert.Equal(t, agenttrace.ToolCall{ID: "call_DdmO9pD3xa9XTPNJ32zg2hcA", Name: "get_weather", Arguments: []byte(`{"location":"Paris, France"}`)}, r.ToolCalls[0])
			assert.Equal(t, "tool_calls", r.FinishReason)
		},
	}, {
		name: "azure deployment", path: "/openai/deployments/prod-gpt/chat/completions", ctype: "application/json", fixture: "openai_chat.json",
		req: `{"messages":[{"role":"user","content":"Hello!"}]}`,
		check: func(t *testing.T, s agenttrace.SpanData, req agenttrace.LLMRequest, r agenttrace.LLMResponse) {
			assert.Equal(t, "azure.ai.openai", req.Provider)
			assert.Equal(t, "prod-gpt", req.Model, "the deployment names the model")
			assert.Equal(t, "gpt-4.1-2025-04-14", r.Model)
			assert.NotNil(t, s.Cost, "priced by the response's model")
		},
	}, {
		name: "chat error 400", path: "/v1/chat/completions", ctype: "application/json", fixture: "openai_error_400.json", status: 400,
		req: `{"model":"gpt-4o","messages":[],"temperature":9}`,
		check: func(t *testing.T, s agenttrace.SpanData, req agenttrace.LLMRequest, r agenttrace.LLMResponse) {
			assert.Equal(t, agenttrace.StatusFailed, s.Status)
			assert.Equal(t, "invalid_request_error", s.Error.Type)
			assert.Contains(t, s.Error.Message, "Invalid value for 'temperature'")
		},
	}, {
		name: "responses json", path: "/v1/responses", ctype: "application/json", fixture: "openai_responses.json",
		req: `{"model":"o4-mini","instructions":"Be brief.","input":[{"role":"user","content":[{"type":"input_text","text":"Tell me a story."}]}],"reasoning":{"effort":"low"},"max_output_tokens":500}`,
		check: func(t *testing.T, s agenttrace.SpanData, req agenttrace.LLMRequest, r agenttrace.LLMResponse) {
			assert.Equal(t, "Be brief.", req.System)
			assert.Equal(t, "Tell me a story.", req.Messages[0].Content)
			assert.Equal(t, "low", req.Settings.ReasoningEffort)
			assert.Equal(t, "In a peaceful grove beneath a silver moon, a unicorn named Lumina discovered a hidden pool.", r.Text)
			assert.Equal(t, "Counting unicorns.", r.Messages[0].Parts[0].Text)
			assert.Equal(t, "stop", r.FinishReason)
			assert.Equal(t, agenttrace.Usage{PromptTokens: 36, CompletionTokens: 87, TotalTokens: 123, Details: map[string]int64{agenttrace.UsageReasoning: 64}}, *s.Usage)
			assert.InDelta(t, (36*1.10+87*4.40)/1e6, s.Cost.Total, 1e-12)
		},
	}, {
		name: "responses stream", path: "/v1/responses", ctype: "text/event-stream", fixture: "openai_responses_stream.sse",
		req: `{"model":"gpt-4.1","input":"Hi","stream":true}`,
		check: func(t *testing.T, s agenttrace.SpanData, req agenttrace.LLMRequest, r agenttrace.LLMResponse) {
			assert.Equal(t, "Hi there!", r.Text)
			assert.Equal(t, "resp_abc", r.ID)
			require.Len(t, r.ToolCalls, 1)
			assert.Equal(t, agenttrace.ToolCall{ID: "call_xyz", Name: "get_weather", Arguments: []byte(`{"city":"Rome"}`)}, r.ToolCalls[0])
			assert.Equal(t, "tool_calls", r.FinishReason)
			assert.Equal(t, int64(48), s.Usage.TotalTokens)
			assert.False(t, s.FirstTokenAt.IsZero())
		},
	}, {
		name: "gemini json", path: "/v1beta/models/gemini-2.5-flash:generateContent", ctype: "application/json", fixture: "gemini_response.json",
		req: `{"contents":[{"role":"user","parts":[{"text":"Why is the sky blue?"},{"inlineData":{"mimeType":"image/jpeg","data":"AAAA"}}]}],"systemInstruction":{"parts":[{"text":"Be a physicist."}]},"generationConfig":{"temperature":0.1,"maxOutputTokens":200,"thinkingConfig":{"thinkingBudget":1024}}}`,
		check: func(t *testing.T, s agenttrace.SpanData, req agenttrace.LLMRequest, r agenttrace.LLMResponse) {
			assert.Equal(t, "gcp.gemini", req.Provider)
			assert.Equal(t, "generate_content", req.Operation)
			assert.Equal(t, "gemini-2.5-flash", req.Model)
			assert.Equal(t, "Be a physicist.", req.System)
			assert.Equal(t, "budget:1024", req.Settings.ReasoningEffort)
			assert.Equal(t, []agenttrace.ContentPart{{Type: agenttrace.PartImage, MIMEType: "image/jpeg", Size: 4}}, req.Messages[0].Parts)
			assert.Equal(t, "The sky is blue because of Rayleigh scattering.", r.Text)
			assert.Equal(t, "Thinking about clouds.", r.Messages[0].Parts[0].Text)
			assert.Equal(t, "STOP", r.FinishReason)
			// candidatesTokenCount excludes the thoughts.
			assert.Equal(t, agenttrace.Usage{PromptTokens: 10, CompletionTokens: 109, TotalTokens: 119, Details: map[string]int64{agenttrace.UsageCacheRead: 4, agenttrace.UsageReasoning: 100}}, *s.Usage)
			assert.InDelta(t, (6*0.30+4*0.03+109*2.50)/1e6, s.Cost.Total, 1e-12)
		},
	}, {
		name: "gemini sse", path: "/v1beta/models/gemini-2.5-flash:streamGenerateContent", ctype: "text/event-stream", fixture: "gemini_stream.sse",
		req: `{"contents":[{"role":"user","parts":[{"text":"Weather in Oslo?"}]}],"tools":[{"functionDeclarations":[{"name":"get_weather","description":"d","parameters":{"type":"OBJECT"}}]}]}`,
		check: func(t *testing.T, s agenttrace.SpanData, req agenttrace.LLMRequest, r agenttrace.LLMResponse) {
			assert.True(t, req.Stream)
			assert.Equal(t, "The end.", r.Text)
			require.Len(t, r.ToolCalls, 1)
			assert.Equal(t, "get_weather", r.ToolCalls[0].Name)
			assert.JSONEq(t, `{"city":"Oslo"}`, string(r.ToolCalls[0].Arguments))
			assert.Equal(t, agenttrace.Usage{PromptTokens: 8, CompletionTokens: 42, TotalTokens: 50, Details: map[string]int64{agenttrace.UsageReasoning: 30}}, *s.Usage)
			assert.False(t, s.FirstTokenAt.IsZero())
		},
	}, {
		name: "gemini array", path: "/v1beta/models/gemini-2.0-flash:streamGenerateContent", ctype: "application/json", fixture: "gemini_stream_array.json",
		req: `{"contents":[{"parts":[{"text":"Hi"}]}]}`,
		check: func(t *testing.T, s agenttrace.SpanData, req agenttrace.LLMRequest, r agenttrace.LLMResponse) {
			assert.Equal(t, agenttrace.StatusComplete, s.Status)
			assert.Equal(t, `Hello [not a bracket] { "world"}`, r.Text)
			assert.Equal(t, int64(9), s.Usage.TotalTokens)
			assert.False(t, s.FirstTokenAt.IsZero())
		},
	}, {
		name: "gemini error", path: "/v1beta/models/gemini-2.5-pro:generateContent", ctype: "application/json", fixture: "gemini_error_429.json", status: 429,
		req: `{"contents":[]}`,
		check: func(t *testing.T, s agenttrace.SpanData, req agenttrace.LLMRequest, r agenttrace.LLMResponse) {
			assert.Equal(t, "RESOURCE_EXHAUSTED", s.Error.Type)
		},
	}}
	for _, c := range cases {
		for _, chunk := range []int{0, 1, 13} {
			t.Run(c.name, func(t *testing.T) {
				tr, rec := agenttracetest.New(t)
				body := fixture(t, c.fixture)
				status := c.status
				if status == 0 {
					status = 200
				}
				srv := serve(t, status, c.ctype, body, chunk)
				_, got, err := post(t, newClient(tr, llmhttp.WithCapture(llmhttp.CaptureFull)), context.Background(), srv.URL+c.path, c.req)
				require.NoError(t, err)
				eq(t, body, got)
				s := llmSpans(t, tr, rec, 1)[0]
				if status == 200 {
					require.Equal(t, agenttrace.StatusComplete, s.Status, "%+v", s.Error)
				}
				c.check(t, s, decodeRequest(t, s), decodeResult(t, s))
			})
		}
	}
}

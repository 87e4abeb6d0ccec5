package langchaingotrace_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agenttrace/agenttrace"
	"github.com/agenttrace/agenttrace/agenttracetest"
	langchaingotrace "github.com/agenttrace/agenttrace/instrument/langchaingo"
	"github.com/agenttrace/agenttrace/instrument/llmhttp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/tmc/langchaingo/agents"
	"github.com/tmc/langchaingo/chains"
	"github.com/tmc/langchaingo/llms"
	"github.com/tmc/langchaingo/llms/openai"
	"github.com/tmc/langchaingo/schema"
	"github.com/tmc/langchaingo/tools"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeOpenAI is an OpenAI Chat Completions server: asked without tool
// results it calls weather and calculator; given them, it answers. It
// streams (SSE, with the include_usage chunk) when asked to, and fails
// every request with status fail when set.
func fakeOpenAI(t *testing.T, fail int) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasSuffix(r.URL.Path, "/chat/completions") {
			http.NotFound(w, r)
			return
		}
		var req struct {
			Stream   bool `json:"stream"`
			Messages []struct {
				Role string `json:"role"`
			} `json:"messages"`
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if fail != 0 {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(fail)
			fmt.Fprint(w, `{"error":{"message":"Invalid model","type":"invalid_request_error","code":"model_not_found"}}`)
			return
		}
		answered := false
		for _, m := range req.Messages {
			answered = answered || m.Role == "tool"
		}
		usage := `{"prompt_tokens":50,"completion_tokens":10,"total_tokens":60,"prompt_tokens_details":{"cached_tokens":0},"completion_tokens_details":{"reasoning_tokens":4}}`
		if answered {
			usage = `{"prompt_tokens":90,"completion_tokens":7,"total_tokens":97,"prompt_tokens_details":{"cached_tokens":64},"completion_tokens_details":{"reasoning_tokens":0}}`
		}
		if !req.Stream {
			w.Header().Set("Content-Type", "application/json")
			msg := `{"role":"assistant","content":null,"tool_calls":[` +
				`{"id":"call_w","type":"function","function":{"name":"weather","arguments":"{\"city\":\"Paris\"}"}},` +
				`{"id":"call_c","type":"function","function":{"name":"calculator","arguments":"{\"__arg1\":\"2+3\"}"}}]}`
			finish := "tool_calls"
			if answered {
				msg, finish = `{"role":"assistant","content":"Sunny; 2+3 is 5."}`, "stop"
			}
			fmt.Fprintf(w, `{"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"gpt-4o-mini","choices":[{"index":0,"message":%s,"finish_reason":%q}],"usage":%s}`, msg, finish, usage)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		chunk := func(delta, finish string) {
			f := "null"
			if finish != "" {
				f = `"` + finish + `"`
			}
			fmt.Fprintf(w, "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-4o-mini\",\"choices\":[{\"index\":0,\"delta\":%s,\"finish_reason\":%s}]}\n\n", delta, f)
		}
		chunk(`{"role":"assistant","content":""}`, "")
		if answered {
			chunk(`{"content":"Sunny; "}`, "")
			chunk(`{"content":"2+3 is 5."}`, "")
			chunk(`{}`, "stop")
		} else {
			chunk(`{"tool_calls":[{"index":0,"id":"call_w","type":"function","function":{"name":"weather","arguments":"{\"city\":"}}]}`, "")
			chunk(`{"tool_calls":[{"index":0,"function":{"arguments":"\"Paris\"}"}}]}`, "")
			chunk(`{"tool_calls":[{"index":1,"id":"call_c","type":"function","function":{"name":"calculator","arguments":"{\"__arg1\":\"2+3\"}"}}]}`, "")
			chunk(`{}`, "tool_calls")
		}
		fmt.Fprintf(w, "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-4o-mini\",\"choices\":[],\"usage\":%s}\n\n", usage)
		fmt.Fprint(w, "data: [DONE]\n\n")
	}))
	t.Cleanup(srv.Close)
	return srv
}

// weather is a tool that does not call the callbacks (as most do). It
// starts two spans of its own: one from the context it receives, one from
// Handler.Context.
type weather struct {
	tracer *agenttrace.Tracer
	h      *langchaingotrace.Handler
}

func (weather) Name() string        { return "weather" }
func (weather) Description() string { return "the weather of a city" }
func (w weather) Call(ctx context.Context, input string) (string, error) {
	_, plain := w.tracer.Start(ctx, agenttrace.TypeChain, nil, agenttrace.WithName("from ctx"))
	plain.End()
	_, nested := w.tracer.Start(w.h.Context(ctx), agenttrace.TypeChain, nil, agenttrace.WithName("from Handler.Context"))
	nested.End()
	return `{"sky":"sunny"}`, nil
}

func newExecutor(t *testing.T, tr *agenttrace.Tracer, h *langchaingotrace.Handler, url string) *agents.Executor {
	t.Helper()
	llm, err := openai.New(openai.WithToken("sk-test"), openai.WithBaseURL(url+"/v1"), openai.WithModel("gpt-4o-mini"), openai.WithCallback(h))
	require.NoError(t, err)
	a := agents.NewOpenAIFunctionsAgent(llm, []tools.Tool{weather{tracer: tr, h: h}, tools.Calculator{CallbacksHandler: h}})
	return agents.NewExecutor(a, agents.WithCallbacksHandler(h), agents.WithMaxIterations(3))
}

// runOpts makes the run stream: chains.WithCallback hands the LLM a
// streaming function that calls the handler's HandleStreamingFunc. (An
// agent's own agents.WithCallbacksHandler does not: in langchaingo v0.1.14
// the chain's call options replace its streaming function with nil.)
func runOpts(h *langchaingotrace.Handler, stream bool) []chains.ChainCallOption {
	if !stream {
		return nil
	}
	return []chains.ChainCallOption{chains.WithCallback(h)}
}

// executorTree is the tree under the executor's outermost span: its two
// LLM calls and two tools, and the weather tool's spans from
// Handler.Context (nested) and from its plain context (a root).
const executorTree = "  llm chat gpt-4o-mini complete\n" +
	"  tool weather complete\n" +
	"    chain from Handler.Context complete\n" +
	"  tool calculator complete\n" +
	"  llm chat gpt-4o-mini complete\n" +
	"chain from ctx complete\n"

func TestAgentExecutor(t *testing.T) {
	for _, stream := range []bool{false, true} {
		t.Run(fmt.Sprintf("stream=%v", stream), func(t *testing.T) {
			srv := fakeOpenAI(t, 0)
			tr, rec := agenttracetest.New(t)
			h := langchaingotrace.NewHandler(tr, langchaingotrace.WithModel("openai", "gpt-4o-mini"), langchaingotrace.WithContent(true))
			ctx, inst := tr.StartInstance(context.Background())
			out, err := chains.Run(ctx, newExecutor(t, tr, h, srv.URL), "Weather in Paris, and 2+3?", runOpts(h, stream)...)
			require.NoError(t, err)
			assert.Equal(t, "Sunny; 2+3 is 5.", out)
			inst.End()
			require.NoError(t, tr.Flush(context.Background()))

			// The run's spans nest through the handler's stack; the tool's
			// span started from its plain context is a root (the context
			// holds the instance and no span), the one from
			// Handler.Context nests under the tool span.
			assert.Equal(t, "agent complete\n"+executorTree, rec.Tree(inst.ID()))
			assert.Zero(t, h.Untracked())

			llms := rec.SpansOfType(agenttrace.TypeLLM)
			require.Len(t, llms, 2)
			var req agenttrace.LLMRequest
			require.NoError(t, json.Unmarshal(llms[0].Payload, &req))
			assert.Equal(t, "openai", req.Provider)
			assert.Equal(t, "gpt-4o-mini", req.Model)
			assert.Equal(t, "Weather in Paris, and 2+3?", req.Messages[len(req.Messages)-1].Content)
			var first, second agenttrace.LLMResponse
			require.NoError(t, json.Unmarshal(llms[0].Result, &first))
			require.NoError(t, json.Unmarshal(llms[1].Result, &second))
			require.Len(t, first.ToolCalls, 2)
			assert.Equal(t, agenttrace.ToolCall{ID: "call_w", Name: "weather", Arguments: json.RawMessage(`{"city":"Paris"}`)}, first.ToolCalls[0])
			assert.Equal(t, "calculator", first.ToolCalls[1].Name)
			assert.Equal(t, "tool_calls", first.FinishReason)
			assert.Equal(t, "stop", second.FinishReason)
			assert.Equal(t, "Sunny; 2+3 is 5.", second.Text)
			assert.Equal(t, agenttrace.Usage{PromptTokens: 50, CompletionTokens: 10, TotalTokens: 60, Details: map[string]int64{"reasoning": 4}}, *llms[0].Usage)
			assert.Equal(t, agenttrace.Usage{PromptTokens: 90, CompletionTokens: 7, TotalTokens: 97, Details: map[string]int64{"cache_read": 64}}, *llms[1].Usage)
			for _, l := range llms {
				assert.Equal(t, stream, !l.FirstTokenAt.IsZero(), "first token only when streamed")
			}

			tools := rec.SpansOfType(agenttrace.TypeTool)
			require.Len(t, tools, 2)
			assert.JSONEq(t, `{"tool_name":"weather","call_id":"call_w","arguments":{"city":"Paris"}}`, string(tools[0].Payload))
			assert.Empty(t, tools[0].Result, "the executor does not report a tool's output")
			assert.JSONEq(t, `{"tool_name":"calculator","call_id":"call_c","arguments":"2+3"}`, string(tools[1].Payload))
			assert.JSONEq(t, `{"output":5}`, string(tools[1].Result), "the calculator reports its own")
			sum := inst.Summary()
			require.NotNil(t, sum.Usage)
			assert.Equal(t, int64(157), sum.Usage.TotalTokens)
		})
	}
}

// Inside a span of the user's, the executor's chain is a chain span under
// it; with WithoutLLMSpans, LLM calls are left to another instrumentation.
func TestUserAgentSpan(t *testing.T) {
	srv := fakeOpenAI(t, 0)
	tr, rec := agenttracetest.New(t)
	h := langchaingotrace.NewHandler(tr, langchaingotrace.WithoutLLMSpans())
	ctx, inst := tr.StartInstance(context.Background())
	ctx, span := tr.Start(ctx, agenttrace.TypeAgent, agenttrace.AgentInput{Name: "support"}, agenttrace.WithName("support"))
	_, err := chains.Run(ctx, newExecutor(t, tr, h, srv.URL), "Weather in Paris, and 2+3?")
	require.NoError(t, err)
	span.End()
	inst.End()
	require.NoError(t, tr.Flush(context.Background()))
	assert.Equal(t, "agent support complete\n"+
		"  chain complete\n"+
		"    tool weather complete\n"+
		"      chain from Handler.Context complete\n"+
		"    tool calculator complete\n"+
		"  chain from ctx complete\n", rec.Tree(inst.ID()))
	for _, s := range rec.Spans() {
		assert.NotContains(t, string(s.Payload), "Paris", "no content by default")
	}
}

// openai's LLM does not call HandleLLMError: the LLM span left open fails
// with the error of the chain around it.
func TestLLMError(t *testing.T) {
	srv := fakeOpenAI(t, http.StatusBadRequest)
	tr, rec := agenttracetest.New(t)
	h := langchaingotrace.NewHandler(tr, langchaingotrace.WithModel("openai", "gpt-4o-mini"))
	ctx, inst := tr.StartInstance(context.Background())
	_, err := chains.Run(ctx, newExecutor(t, tr, h, srv.URL), "hi")
	require.Error(t, err)
	inst.End()
	require.NoError(t, tr.Flush(context.Background()))
	assert.Equal(t, "agent failed\n  llm chat gpt-4o-mini failed\n", rec.Tree(inst.ID()))
	llm := rec.SpansOfType(agenttrace.TypeLLM)[0]
	assert.Contains(t, llm.Error.Message, "Invalid model")
}

// Concurrent runs with contexts of their own get trees of their own.
func TestConcurrentRuns(t *testing.T) {
	srv := fakeOpenAI(t, 0)
	tr, rec := agenttracetest.New(t, agenttrace.WithFlushInterval(5*time.Millisecond))
	h := langchaingotrace.NewHandler(tr, langchaingotrace.WithModel("openai", "gpt-4o-mini"))
	var wg sync.WaitGroup
	insts := make([]*agenttrace.Instance, 6)
	for i := range insts {
		wg.Go(func() {
			ctx, inst := tr.StartInstance(context.Background())
			insts[i] = inst
			_, err := chains.Run(ctx, newExecutor(t, tr, h, srv.URL), "Weather in Paris, and 2+3?", runOpts(h, i%2 == 1)...)
			assert.NoError(t, err)
			inst.End()
		})
	}
	wg.Wait()
	require.NoError(t, tr.Flush(context.Background()))
	for _, inst := range insts {
		assert.Equal(t, "agent complete\n"+executorTree, rec.Tree(inst.ID()))
	}
}

// A context type that cannot be a map key is not tracked: its spans are
// recorded flat, and counted.
func TestUnkeyableContext(t *testing.T) {
	srv := fakeOpenAI(t, 0)
	tr, rec := agenttracetest.New(t)
	h := langchaingotrace.NewHandler(tr)
	ctx, inst := tr.StartInstance(context.Background())
	_, err := chains.Run(unkeyable{Context: ctx, tags: []string{"x"}}, newExecutor(t, tr, h, srv.URL), "hi")
	require.NoError(t, err)
	inst.End()
	require.NoError(t, tr.Flush(context.Background()))
	assert.Positive(t, h.Untracked())
	assert.NotEmpty(t, rec.Spans())
}

type unkeyable struct {
	context.Context
	tags []string
}

// Usage is normalised per provider from the GenerationInfo keys the
// langchaingo LLMs set: Anthropic's InputTokens exclude the cache tokens,
// OpenAI's PromptTokens include PromptCachedTokens.
func TestUsageByProvider(t *testing.T) {
	for _, tc := range []struct {
		name string
		info map[string]any
		want agenttrace.Usage
	}{
		{"anthropic", map[string]any{"InputTokens": 20, "OutputTokens": 30, "CacheCreationInputTokens": 100, "CacheReadInputTokens": 1000},
			agenttrace.Usage{PromptTokens: 1120, CompletionTokens: 30, TotalTokens: 1150, Details: map[string]int64{agenttrace.UsageCacheRead: 1000, agenttrace.UsageCacheWrite: 100}}},
		{"openai", map[string]any{"PromptTokens": 1120, "CompletionTokens": 30, "TotalTokens": 1150, "PromptCachedTokens": 1000, "ReasoningTokens": 12},
			agenttrace.Usage{PromptTokens: 1120, CompletionTokens: 30, TotalTokens: 1150, Details: map[string]int64{agenttrace.UsageCacheRead: 1000, agenttrace.UsageReasoning: 12}}},
		{"googleai", map[string]any{"PromptTokens": int32(50), "CompletionTokens": int32(5), "TotalTokens": int32(55), "CachedTokens": int32(40)},
			agenttrace.Usage{PromptTokens: 50, CompletionTokens: 5, TotalTokens: 55, Details: map[string]int64{agenttrace.UsageCacheRead: 40}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr, rec := agenttracetest.New(t)
			h := langchaingotrace.NewHandler(tr, langchaingotrace.WithModel(tc.name, "m"))
			ctx, inst := tr.StartInstance(context.Background())
			h.HandleLLMGenerateContentStart(ctx, []llms.MessageContent{llms.TextParts(llms.ChatMessageTypeHuman, "hi")})
			h.HandleLLMGenerateContentEnd(ctx, &llms.ContentResponse{Choices: []*llms.ContentChoice{{Content: "hello", StopReason: "end_turn", GenerationInfo: tc.info}}})
			inst.End()
			require.NoError(t, tr.Flush(context.Background()))
			llm := rec.SpansOfType(agenttrace.TypeLLM)[0]
			assert.Equal(t, agenttrace.StatusComplete, llm.Status)
			assert.Equal(t, tc.want, *llm.Usage)
			assert.Equal(t, "end_turn", jsonString(t, llm.Result, "finish_reason"))
		})
	}
}

// An anthropic LLM reports its errors (HandleLLMError): the span fails
// with that error, and a tool left open inside a failing chain fails too.
func TestErrorCallbacks(t *testing.T) {
	tr, rec := agenttracetest.New(t)
	h := langchaingotrace.NewHandler(tr)
	ctx, inst := tr.StartInstance(context.Background())
	h.HandleChainStart(ctx, map[string]any{"input": "x"})
	h.HandleLLMGenerateContentStart(ctx, nil)
	h.HandleLLMError(ctx, errors.New("overloaded"))
	h.HandleAgentAction(ctx, schema.AgentAction{Tool: "search", ToolID: "t1", ToolInput: "q"})
	h.HandleChainError(ctx, errors.New("tool exploded"))
	inst.End()
	require.NoError(t, tr.Flush(context.Background()))
	assert.Equal(t, "agent failed\n  llm failed\n  tool search failed\n", rec.Tree(inst.ID()))
	tool := rec.SpansOfType(agenttrace.TypeTool)[0]
	assert.Equal(t, "tool exploded", tool.Error.Message)
	assert.Equal(t, "overloaded", rec.SpansOfType(agenttrace.TypeLLM)[0].Error.Message)
}

func jsonString(t *testing.T, payload []byte, field string) string {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal(payload, &m))
	s, _ := m[field].(string)
	return s
}

// Without content capture, spans keep the shape of the run but no text,
// arguments or results: metadata (the default) keeps the messages' roles
// and text sizes and the tool calls' names and ids; off keeps no messages.
func TestWithoutContent(t *testing.T) {
	for _, mode := range []llmhttp.CaptureMode{llmhttp.CaptureDefault, llmhttp.CaptureMetadata, llmhttp.CaptureOff} {
		t.Run(mode.String(), func(t *testing.T) {
			t.Setenv(llmhttp.EnvCaptureContent, "")
			srv := fakeOpenAI(t, 0)
			tr, rec := agenttracetest.New(t)
			h := langchaingotrace.NewHandler(tr, langchaingotrace.WithModel("openai", "gpt-4o-mini"), langchaingotrace.WithCapture(mode))
			ctx, inst := tr.StartInstance(context.Background())
			_, err := chains.Run(ctx, newExecutor(t, tr, h, srv.URL), "Weather in Paris, and 2+3?")
			require.NoError(t, err)
			inst.End()
			require.NoError(t, tr.Flush(context.Background()))
			for _, s := range rec.Spans() {
				for _, secret := range []string{"Paris", "2+3", "Sunny", "sunny"} {
					assert.NotContains(t, string(s.Payload)+string(s.Result), secret, s.Name)
				}
			}
			llms := rec.SpansOfType(agenttrace.TypeLLM)
			require.Len(t, llms, 2)
			var req agenttrace.LLMRequest
			require.NoError(t, json.Unmarshal(llms[0].Payload, &req))
			var first, second agenttrace.LLMResponse
			require.NoError(t, json.Unmarshal(llms[0].Result, &first))
			require.NoError(t, json.Unmarshal(llms[1].Result, &second))
			assert.Equal(t, []agenttrace.ToolCall{{ID: "call_w", Name: "weather"}, {ID: "call_c", Name: "calculator"}}, first.ToolCalls)
			assert.Equal(t, "stop", second.FinishReason)
			tools := rec.SpansOfType(agenttrace.TypeTool)
			require.Len(t, tools, 2)
			assert.JSONEq(t, `{"tool_name":"weather","call_id":"call_w"}`, string(tools[0].Payload))
			if mode == llmhttp.CaptureOff {
				assert.Empty(t, req.Messages)
				assert.Empty(t, second.Messages)
				return
			}
			require.NotEmpty(t, req.Messages)
			assert.Equal(t, agenttrace.Message{Role: "user", Parts: []agenttrace.ContentPart{{Type: agenttrace.PartText, Size: 26}}}, req.Messages[len(req.Messages)-1])
			assert.Equal(t, []agenttrace.Message{{Role: "assistant", Parts: []agenttrace.ContentPart{{Type: agenttrace.PartText, Size: 16}}}}, second.Messages)
		})
	}
}

// OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT turns content on when
// no mode is set; the content of a span is capped (WithMaxContentBytes),
// the cut marked and counted; the tracer's Redactor sees what is captured.
func TestContentCapAndRedactor(t *testing.T) {
	t.Setenv(llmhttp.EnvCaptureContent, "true")
	redact := func(_ string, _ agenttrace.PayloadField, p []byte) []byte {
		return bytes.ReplaceAll(p, []byte("Paris"), []byte("[city]"))
	}
	srv := fakeOpenAI(t, 0)
	tr, rec := agenttracetest.New(t, agenttrace.WithRedactor(redact))
	h := langchaingotrace.NewHandler(tr, langchaingotrace.WithModel("openai", "gpt-4o-mini"), langchaingotrace.WithMaxContentBytes(20))
	before := llmhttp.ReadStats().ContentTruncated
	_, err := chains.Run(context.Background(), newExecutor(t, tr, h, srv.URL), "Weather in Paris, and 2+3?")
	require.NoError(t, err)
	require.NoError(t, tr.Flush(context.Background()))
	for _, s := range rec.Spans() {
		assert.NotContains(t, string(s.Payload)+string(s.Result), "Paris", "the redactor saw %s", s.Name)
	}
	llms := rec.SpansOfType(agenttrace.TypeLLM)
	require.Len(t, llms, 2)
	var req agenttrace.LLMRequest
	require.NoError(t, json.Unmarshal(llms[0].Payload, &req))
	n := len(req.System)
	for _, m := range req.Messages {
		n += len(m.Content)
	}
	assert.LessOrEqual(t, n, 20)
	assert.Equal(t, true, req.Metadata["content_truncated"])
	var second agenttrace.LLMResponse
	require.NoError(t, json.Unmarshal(llms[1].Result, &second))
	assert.Empty(t, second.Text, "request and response share the call's budget")
	assert.Equal(t, true, second.Metadata["content_truncated"])
	tools := rec.SpansOfType(agenttrace.TypeTool)
	require.Len(t, tools, 2)
	assert.JSONEq(t, `{"tool_name":"weather","call_id":"call_w","arguments":{"city":"[city]"}}`, string(tools[0].Payload))
	assert.Greater(t, llmhttp.ReadStats().ContentTruncated, before)
}

// With WithoutAgentSpans the outermost chain of a run is a chain span.
func TestWithoutAgentSpans(t *testing.T) {
	srv := fakeOpenAI(t, 0)
	tr, rec := agenttracetest.New(t)
	h := langchaingotrace.NewHandler(tr, langchaingotrace.WithModel("openai", "gpt-4o-mini"), langchaingotrace.WithoutAgentSpans())
	ctx, inst := tr.StartInstance(context.Background())
	_, err := chains.Run(ctx, newExecutor(t, tr, h, srv.URL), "Weather in Paris, and 2+3?")
	require.NoError(t, err)
	inst.End()
	require.NoError(t, tr.Flush(context.Background()))
	assert.Equal(t, "chain complete\n"+executorTree, rec.Tree(inst.ID()))
}

// WithMaxRuns bounds the runs tracked at once: while one run is open, a
// second one's spans are flat children of its context, counted by
// Untracked; once the first ends, runs are tracked again.
func TestMaxRuns(t *testing.T) {
	srv := fakeOpenAI(t, 0)
	tr, rec := agenttracetest.New(t)
	h := langchaingotrace.NewHandler(tr, langchaingotrace.WithModel("openai", "gpt-4o-mini"), langchaingotrace.WithMaxRuns(1))
	ctxA, instA := tr.StartInstance(context.Background())
	h.HandleChainStart(ctxA, map[string]any{"input": "a"}) // run A stays open

	ctxB, instB := tr.StartInstance(context.Background())
	_, err := chains.Run(ctxB, newExecutor(t, tr, h, srv.URL), "Weather in Paris, and 2+3?")
	require.NoError(t, err)
	instB.End()
	untracked := h.Untracked()
	assert.Positive(t, untracked, "run B was over the bound")

	h.HandleChainEnd(ctxA, map[string]any{"output": "done"})
	instA.End()
	ctxC, instC := tr.StartInstance(context.Background())
	_, err = chains.Run(ctxC, newExecutor(t, tr, h, srv.URL), "Weather in Paris, and 2+3?")
	require.NoError(t, err)
	instC.End()
	require.NoError(t, tr.Flush(context.Background()))
	assert.Equal(t, untracked, h.Untracked(), "run C, after A ended, is tracked")

	assert.Equal(t, "agent complete\n", rec.Tree(instA.ID()))
	// The handler cannot match an untracked span's end to its start: the
	// spans it started for run B end with the instance, so marked.
	for _, s := range rec.Spans() {
		if s.InstanceID == instB.ID() && !strings.HasPrefix(s.Name, "from ") {
			require.NotNil(t, s.Error, "%s %s", s.Type, s.Name)
			assert.Equal(t, "instance_ended", s.Error.Type)
		}
	}
	assert.NotContains(t, rec.Tree(instB.ID()), "\n  ", "untracked spans do not nest")
	assert.Equal(t, "agent complete\n"+executorTree, rec.Tree(instC.ID()))
}

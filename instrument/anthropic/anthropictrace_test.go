package anthropictrace_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agenttrace/agenttrace"
	"github.com/agenttrace/agenttrace/agenttracetest"
	otelbridge "github.com/agenttrace/agenttrace/bridge/otel"
	anthropictrace "github.com/agenttrace/agenttrace/instrument/anthropic"
	"github.com/agenttrace/agenttrace/instrument/llmhttp"
	"github.com/agenttrace/agenttrace/instrument/llmhttp/llmhttptest"
	"github.com/anthropics/anthropic-sdk-go/v2"
	"github.com/anthropics/anthropic-sdk-go/v2/option"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const (
	model = "claude-sonnet-4-5"
	// A documented Messages response: a tool use, with cache usage
	// (input_tokens excludes the cache tokens).
	toolUseJSON = `{"id":"msg_01","type":"message","role":"assistant","model":"claude-sonnet-4-5-20250929","content":[{"type":"text","text":"Let me check."},{"type":"tool_use","id":"toolu_01","name":"get_weather","input":{"location":"Paris"}}],"stop_reason":"tool_use","stop_sequence":null,"usage":{"input_tokens":20,"output_tokens":30,"cache_creation_input_tokens":100,"cache_read_input_tokens":1000,"cache_creation":{"ephemeral_5m_input_tokens":60,"ephemeral_1h_input_tokens":40},"service_tier":"standard"}}`
	answerJSON  = `{"id":"msg_02","type":"message","role":"assistant","model":"claude-sonnet-4-5-20250929","content":[{"type":"text","text":"Sunny in Paris."}],"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":60,"output_tokens":6,"cache_creation_input_tokens":0,"cache_read_input_tokens":1100,"service_tier":"standard"}}`
)

func errorJSON(typ, msg string) string {
	return fmt.Sprintf(`{"type":"error","error":{"type":%q,"message":%q},"request_id":"req_01"}`, typ, msg)
}

// fakeAnthropic serves POST /v1/messages with handle, given the request
// number (from 0) and the decoded body.
func fakeAnthropic(t *testing.T, handle func(w http.ResponseWriter, r *http.Request, n int, body map[string]any)) *httptest.Server {
	t.Helper()
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/messages" {
			http.NotFound(w, r)
			return
		}
		var body map[string]any
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		handle(w, r, int(n.Add(1)-1), body)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func writeJSON(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("request-id", "req_01")
	w.WriteHeader(status)
	fmt.Fprint(w, body)
}

// sseEvents returns the events of an SSE fixture, its comment lines left
// out.
func sseEvents(t *testing.T, name string) []string {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	require.NoError(t, err)
	var events []string
	for _, e := range strings.Split(string(b), "\n\n") {
		var lines []string
		for _, l := range strings.Split(e, "\n") {
			if l != "" && !strings.HasPrefix(l, ":") {
				lines = append(lines, l)
			}
		}
		if len(lines) > 0 {
			events = append(events, strings.Join(lines, "\n")+"\n\n")
		}
	}
	return events
}

func writeSSE(w http.ResponseWriter, events []string) {
	w.Header().Set("Content-Type", "text/event-stream")
	w.WriteHeader(http.StatusOK)
	for _, e := range events {
		fmt.Fprint(w, e)
		w.(http.Flusher).Flush()
	}
}

// newClient returns an SDK client against url, traced into tr when tr is
// not nil (the uninstrumented twin otherwise), with the SDK's own OTel spans
// off.
func newClient(url string, tr *agenttrace.Tracer, extra ...option.RequestOption) *anthropic.Client {
	opts := []option.RequestOption{option.WithAPIKey("sk-ant-test-key"), option.WithBaseURL(url), option.WithoutOpenTelemetry()}
	if tr != nil {
		opts = append(opts, option.WithMiddleware(anthropictrace.Middleware(tr, llmhttp.WithCapture(llmhttp.CaptureFull))))
	}
	c := anthropic.NewClient(append(opts, extra...)...)
	return &c
}

func params(msgs ...anthropic.MessageParam) anthropic.MessageNewParams {
	if len(msgs) == 0 {
		msgs = []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("Weather in Paris?"))}
	}
	return anthropic.MessageNewParams{
		Model: anthropic.Model(model), MaxTokens: 1024, Messages: msgs,
		System: []anthropic.TextBlockParam{{Text: "You are a weather bot."}},
		Tools: []anthropic.ToolUnionParam{{OfTool: &anthropic.ToolParam{Name: "get_weather", InputSchema: anthropic.ToolInputSchemaParam{
			Properties: map[string]any{"location": map[string]any{"type": "string"}}, Required: []string{"location"},
		}}}},
	}
}

func waitSpans(t *testing.T, rec *agenttracetest.Recorder, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, rec.WaitFor(ctx, func(r *agenttracetest.Recorder) bool {
		return len(r.FindSpans(func(d agenttrace.SpanData) bool { return d.Status.Finished() })) >= n
	}))
}

func result(t *testing.T, d agenttrace.SpanData) agenttrace.LLMResponse {
	t.Helper()
	var r agenttrace.LLMResponse
	require.NoError(t, json.Unmarshal(d.Result, &r))
	return r
}

var toolUseUsage = agenttrace.Usage{PromptTokens: 1120, CompletionTokens: 30, TotalTokens: 1150, Details: map[string]int64{
	agenttrace.UsageCacheRead: 1000, agenttrace.UsageCacheWrite: 100, agenttrace.UsageCacheWrite5m: 60, agenttrace.UsageCacheWrite1h: 40,
}}

// Non-streamed: one llm span with the request, output, tool call, finish
// reason and inclusive usage; the SDK's result is the uninstrumented
// client's.
func TestMessage(t *testing.T) {
	srv := fakeAnthropic(t, func(w http.ResponseWriter, _ *http.Request, _ int, _ map[string]any) { writeJSON(w, 200, toolUseJSON) })
	tr, rec := agenttracetest.New(t, agenttrace.WithFlushInterval(5*time.Millisecond))
	ctx, inst := tr.StartInstance(context.Background())
	ctx, agent := tr.Start(ctx, agenttrace.TypeAgent, agenttrace.AgentInput{Name: "weather"})
	got, err := newClient(srv.URL, tr).Messages.New(ctx, params())
	require.NoError(t, err)
	agent.End()
	inst.End()
	want, err := newClient(srv.URL, nil).Messages.New(context.Background(), params())
	require.NoError(t, err)
	assert.Equal(t, want.RawJSON(), got.RawJSON(), "the SDK reads what the server sent")
	assert.Equal(t, want.Content[1].Input, got.Content[1].Input)
	require.NoError(t, tr.Flush(context.Background()))

	assert.Equal(t, "agent complete\n  llm chat claude-sonnet-4-5 complete\n", rec.Tree(inst.ID()))
	llm := rec.SpansOfType(agenttrace.TypeLLM)[0]
	var req agenttrace.LLMRequest
	require.NoError(t, json.Unmarshal(llm.Payload, &req))
	assert.Equal(t, "anthropic", req.Provider)
	assert.Equal(t, model, req.Model)
	assert.Equal(t, "You are a weather bot.", req.System)
	require.Len(t, req.Tools, 1)
	assert.Equal(t, "get_weather", req.Tools[0].Name)
	res := result(t, llm)
	assert.Equal(t, "Let me check.", res.Text)
	assert.Equal(t, "tool_use", res.FinishReason)
	assert.Equal(t, "msg_01", res.ID)
	require.Len(t, res.ToolCalls, 1)
	assert.Equal(t, "toolu_01", res.ToolCalls[0].ID)
	assert.JSONEq(t, `{"location":"Paris"}`, string(res.ToolCalls[0].Arguments))
	assert.Equal(t, toolUseUsage, *llm.Usage)
	assert.True(t, llm.FirstTokenAt.IsZero(), "no first token without a stream")
	require.NotNil(t, llm.Cost, "claude-sonnet-4-5 is in the price table")
	// 20 plain input, 1000 cache reads, 60 5-minute and 40 1-hour cache
	// writes, 30 output tokens.
	assert.InDelta(t, (20*3+1000*0.30+60*3.75+40*6+30*15)/1e6, llm.Cost.Total, 1e-12)
}

// Streamed: the tool call reassembled from input_json_delta, the first
// token marked, usage from message_start and message_delta.
func TestStream(t *testing.T) {
	events := sseEvents(t, "anthropic_stream_tool.sse")
	srv := fakeAnthropic(t, func(w http.ResponseWriter, _ *http.Request, _ int, body map[string]any) {
		assert.Equal(t, true, body["stream"])
		writeSSE(w, events)
	})
	tr, rec := agenttracetest.New(t, agenttrace.WithFlushInterval(5*time.Millisecond))
	ctx, inst := tr.StartInstance(context.Background())
	accumulate := func(ctx context.Context, c *anthropic.Client) anthropic.Message {
		s := c.Messages.NewStreaming(ctx, params())
		defer s.Close()
		var m anthropic.Message
		for s.Next() {
			require.NoError(t, m.Accumulate(s.Current()))
		}
		require.NoError(t, s.Err())
		return m
	}
	got := accumulate(ctx, newClient(srv.URL, tr))
	inst.End()
	want := accumulate(context.Background(), newClient(srv.URL, nil))
	gb, _ := json.Marshal(got)
	wb, _ := json.Marshal(want)
	assert.JSONEq(t, string(wb), string(gb))
	waitSpans(t, rec, 1)
	require.NoError(t, tr.Flush(context.Background()))

	llm := rec.SpansOfType(agenttrace.TypeLLM)[0]
	assert.Equal(t, agenttrace.StatusComplete, llm.Status)
	res := result(t, llm)
	assert.Equal(t, "Okay, let's check the weather for San Francisco, CA:", res.Text)
	assert.Equal(t, "tool_use", res.FinishReason)
	require.Len(t, res.ToolCalls, 1)
	assert.Equal(t, "get_weather", res.ToolCalls[0].Name)
	assert.JSONEq(t, `{"location":"San Francisco, CA","unit":"fahrenheit"}`, string(res.ToolCalls[0].Arguments))
	assert.Equal(t, agenttrace.Usage{PromptTokens: 1572, CompletionTokens: 89, TotalTokens: 1661, Details: map[string]int64{
		agenttrace.UsageCacheRead: 1000, agenttrace.UsageCacheWrite: 100, agenttrace.UsageCacheWrite5m: 100,
	}}, *llm.Usage)
	assert.False(t, llm.FirstTokenAt.IsZero())
	assert.GreaterOrEqual(t, llm.TimeToFirstToken(), time.Duration(0))
	assert.Positive(t, inst.Summary().TimeToFirstToken)
	assert.Equal(t, "llm chat claude-sonnet-4-5 complete\n", rec.Tree(inst.ID()))
	require.NotNil(t, llm.Cost)
	assert.InDelta(t, (472*3+1000*0.30+100*3.75+89*15)/1e6, llm.Cost.Total, 1e-12, "a cache write of unknown lifetime at the 5-minute rate")
}

// Two turns with a tool call in between, inside an agent span: agent >
// llm, tool, llm, the instance summing both calls.
func TestToolCallTwoTurns(t *testing.T) {
	srv := fakeAnthropic(t, func(w http.ResponseWriter, _ *http.Request, n int, body map[string]any) {
		if n%2 == 0 { // the first turn, traced and then uninstrumented
			writeJSON(w, 200, toolUseJSON)
			return
		}
		msgs := body["messages"].([]any)
		assert.Len(t, msgs, 3, "user, assistant tool use, user tool result")
		writeJSON(w, 200, answerJSON)
	})
	tr, rec := agenttracetest.New(t, agenttrace.WithFlushInterval(5*time.Millisecond))
	user := anthropic.NewUserMessage(anthropic.NewTextBlock("Weather in Paris?"))
	twoTurns := func(ctx context.Context, client *anthropic.Client, record bool) (*anthropic.Message, *anthropic.Message) {
		first, err := client.Messages.New(ctx, params(user))
		require.NoError(t, err)
		use := first.Content[1]
		if record {
			_, tool := tr.Start(ctx, agenttrace.TypeTool, agenttrace.ToolInput{Name: use.Name, CallID: use.ID, Arguments: use.Input}, agenttrace.WithName(use.Name))
			tool.SetResult(agenttrace.ToolOutput{Output: "sunny"})
			tool.End()
		}
		second, err := client.Messages.New(ctx, params(user, first.ToParam(), anthropic.NewUserMessage(anthropic.NewToolResultBlock(use.ID, "sunny", false))))
		require.NoError(t, err)
		return first, second
	}
	ctx, inst := tr.StartInstance(context.Background())
	ctx, agent := tr.Start(ctx, agenttrace.TypeAgent, agenttrace.AgentInput{Name: "weather"})
	first, second := twoTurns(ctx, newClient(srv.URL, tr), true)
	assert.Equal(t, "Sunny in Paris.", second.Content[0].Text)
	wantFirst, wantSecond := twoTurns(context.Background(), newClient(srv.URL, nil), false)
	assert.Equal(t, wantFirst.RawJSON(), first.RawJSON(), "the SDK's results are an uninstrumented client's")
	assert.Equal(t, wantSecond.RawJSON(), second.RawJSON())
	agent.End()
	inst.End()
	require.NoError(t, tr.Flush(context.Background()))

	assert.Equal(t, "agent complete\n"+
		"  llm chat claude-sonnet-4-5 complete\n"+
		"  tool get_weather complete\n"+
		"  llm chat claude-sonnet-4-5 complete\n", rec.Tree(inst.ID()))
	llms := rec.SpansOfType(agenttrace.TypeLLM)
	require.Len(t, llms, 2)
	one := result(t, llms[0])
	assert.Equal(t, "tool_use", one.FinishReason)
	assert.Equal(t, []agenttrace.ToolCall{{ID: "toolu_01", Name: "get_weather", Arguments: json.RawMessage(`{"location":"Paris"}`)}}, one.ToolCalls)
	var req agenttrace.LLMRequest
	require.NoError(t, json.Unmarshal(llms[1].Payload, &req))
	require.Len(t, req.Messages, 3)
	assert.Equal(t, []agenttrace.ToolCall{{ID: "toolu_01", Name: "get_weather", Arguments: json.RawMessage(`{"location":"Paris"}`)}}, req.Messages[1].ToolCalls, "the tool use sent back")
	assert.Equal(t, "toolu_01", req.Messages[2].ToolCallID, "the tool result")
	assert.Equal(t, "end_turn", result(t, llms[1]).FinishReason)
	require.NotNil(t, llms[1].Cost)
	assert.InDelta(t, (60*3+1100*0.30+6*15)/1e6, llms[1].Cost.Total, 1e-12)
	assert.Equal(t, agenttrace.Usage{PromptTokens: 1160, CompletionTokens: 6, TotalTokens: 1166, Details: map[string]int64{agenttrace.UsageCacheRead: 1100}}, *llms[1].Usage)
	sum := inst.Summary()
	require.NotNil(t, sum.Usage)
	assert.Equal(t, int64(1120+1160), sum.Usage.PromptTokens)
	assert.Equal(t, int64(2), sum.LLMCalls)
}

// API errors fail the span with the API's error type; the SDK returns the
// same error as without the middleware.
func TestAPIErrors(t *testing.T) {
	for _, tc := range []struct {
		status int
		typ    string
	}{{400, "invalid_request_error"}, {429, "rate_limit_error"}, {500, "api_error"}} {
		t.Run(fmt.Sprint(tc.status), func(t *testing.T) {
			srv := fakeAnthropic(t, func(w http.ResponseWriter, _ *http.Request, _ int, _ map[string]any) {
				writeJSON(w, tc.status, errorJSON(tc.typ, "something went wrong"))
			})
			tr, rec := agenttracetest.New(t, agenttrace.WithFlushInterval(5*time.Millisecond))
			_, err := newClient(srv.URL, tr, option.WithMaxRetries(0)).Messages.New(context.Background(), params())
			var got *anthropic.Error
			require.ErrorAs(t, err, &got)
			_, err = newClient(srv.URL, nil, option.WithMaxRetries(0)).Messages.New(context.Background(), params())
			var want *anthropic.Error
			require.ErrorAs(t, err, &want)
			assert.Equal(t, want.StatusCode, got.StatusCode)
			assert.Equal(t, want.RawJSON(), got.RawJSON())
			assert.NotContains(t, got.Error(), "sk-ant-test-key")
			require.NoError(t, tr.Flush(context.Background()))

			llm := rec.SpansOfType(agenttrace.TypeLLM)[0]
			assert.Equal(t, agenttrace.StatusFailed, llm.Status)
			assert.Equal(t, tc.typ, llm.Error.Type)
			assert.Contains(t, llm.Error.Message, "something went wrong")
			for _, s := range rec.Spans() {
				assert.NotContains(t, string(s.Payload)+string(s.Result)+s.Error.Message, "sk-ant-test-key")
			}
		})
	}
}

// A call the SDK retries (529, then 200) is one span, complete, with its
// attempts recorded.
func TestRetryThenSuccess(t *testing.T) {
	srv := fakeAnthropic(t, func(w http.ResponseWriter, r *http.Request, n int, _ map[string]any) {
		if n == 0 {
			w.Header().Set("retry-after-ms", "1")
			writeJSON(w, 529, errorJSON("overloaded_error", "Overloaded"))
			return
		}
		assert.Equal(t, "1", r.Header.Get("X-Stainless-Retry-Count"))
		writeJSON(w, 200, answerJSON)
	})
	tr, rec := agenttracetest.New(t, agenttrace.WithFlushInterval(5*time.Millisecond))
	// One retry allowed: the retry must succeed, as it does without the
	// middleware.
	msg, err := newClient(srv.URL, tr, option.WithMaxRetries(1)).Messages.New(context.Background(), params())
	require.NoError(t, err)
	assert.Equal(t, "Sunny in Paris.", msg.Content[0].Text)
	require.NoError(t, tr.Flush(context.Background()))
	llms := rec.SpansOfType(agenttrace.TypeLLM)
	require.Len(t, llms, 1, "one logical call, one span")
	assert.Equal(t, agenttrace.StatusComplete, llms[0].Status)
	res := result(t, llms[0])
	assert.EqualValues(t, 2, res.Metadata["attempts"])
	assert.Contains(t, fmt.Sprint(res.Metadata["attempt_errors"]), "overloaded_error")
	assert.Equal(t, agenttrace.Usage{PromptTokens: 1160, CompletionTokens: 6, TotalTokens: 1166, Details: map[string]int64{agenttrace.UsageCacheRead: 1100}}, *llms[0].Usage)
}

// A stream the connection cuts mid-way, one the caller closes early and one
// whose context is cancelled each fail the span with a cause that says so.
func TestStreamEndings(t *testing.T) {
	events := sseEvents(t, "anthropic_stream_tool.sse")
	for _, tc := range []struct {
		name    string
		errType string
		reason  error
	}{
		{"cut", "stream_cut", llmhttp.ErrStreamCut},
		{"closed early", "stream_closed_early", llmhttp.ErrClosedEarly},
		{"cancelled", "context.Canceled", context.Canceled},
	} {
		t.Run(tc.name, func(t *testing.T) {
			release := make(chan struct{})
			var once sync.Once
			srv := fakeAnthropic(t, func(w http.ResponseWriter, r *http.Request, _ int, _ map[string]any) {
				writeSSE(w, events[:4]) // message_start .. the first text delta
				if tc.name == "cut" {
					conn, _, err := w.(http.Hijacker).Hijack()
					require.NoError(t, err)
					conn.Close()
					return
				}
				select {
				case <-r.Context().Done():
				case <-release:
				}
			})
			defer once.Do(func() { close(release) })
			tr, rec := agenttracetest.New(t, agenttrace.WithFlushInterval(5*time.Millisecond))
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			s := newClient(srv.URL, tr, option.WithMaxRetries(0)).Messages.NewStreaming(ctx, params())
			var texts int
			for s.Next() {
				if s.Current().Type == "content_block_delta" {
					texts++
					if tc.name == "closed early" {
						require.NoError(t, s.Close())
						break
					}
					if tc.name == "cancelled" {
						cancel()
					}
				}
			}
			assert.Equal(t, 1, texts)
			if tc.name != "closed early" {
				require.Error(t, s.Err())
			}
			_ = s.Close()
			waitSpans(t, rec, 1)
			once.Do(func() { close(release) })
			llm := rec.SpansOfType(agenttrace.TypeLLM)[0]
			assert.Equal(t, agenttrace.StatusFailed, llm.Status)
			assert.Equal(t, tc.errType, llm.Error.Type)
			assert.False(t, llm.FirstTokenAt.IsZero(), "the first token came before the end")
			require.NotNil(t, llm.Usage, "usage so far, from message_start")
		})
	}
}

// The other route: no middleware, the SDK's own OTel spans through the
// bridge's span processor, joining the agenttrace span in the call's
// context.
func TestOTelRoute(t *testing.T) {
	srv := fakeAnthropic(t, func(w http.ResponseWriter, _ *http.Request, n int, _ map[string]any) {
		if n == 0 {
			writeJSON(w, 200, toolUseJSON)
			return
		}
		writeSSE(w, sseEvents(t, "anthropic_stream_tool.sse"))
	})
	tr, rec := agenttracetest.New(t, agenttrace.WithFlushInterval(5*time.Millisecond))
	proc := otelbridge.NewSpanProcessor(tr)
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(proc))
	defer func() { require.NoError(t, tp.Shutdown(context.Background())) }()
	client := anthropic.NewClient(option.WithAPIKey("sk-ant-test-key"), option.WithBaseURL(srv.URL), option.WithTracerProvider(tp))

	ctx, inst := tr.StartInstance(context.Background())
	ctx, agent := tr.Start(ctx, agenttrace.TypeAgent, agenttrace.AgentInput{Name: "weather"})
	_, err := client.Messages.New(otelbridge.ContextWithSpan(ctx), params())
	require.NoError(t, err)
	s := client.Messages.NewStreaming(ctx, params())
	for s.Next() {
	}
	require.NoError(t, s.Err())
	require.NoError(t, s.Close())
	agent.End()
	inst.End()
	require.NoError(t, tp.ForceFlush(context.Background()))
	require.NoError(t, tr.Flush(context.Background()))

	assert.Zero(t, proc.Dropped())
	require.Len(t, rec.Instances(), 1, "the SDK's spans join the caller's instance")
	assert.Equal(t, "agent complete\n"+
		"  llm anthropic.messages.create complete\n"+
		"  llm anthropic.messages.create complete\n", rec.Tree(inst.ID()))
	llms := rec.SpansOfType(agenttrace.TypeLLM)
	require.Len(t, llms, 2)
	assert.Equal(t, toolUseUsage, *llms[0].Usage, "cache_write read from the SDK's spelling")
	assert.Equal(t, "tool_use", result(t, llms[0]).FinishReason)
	assert.False(t, llms[1].FirstTokenAt.IsZero(), "gen_ai.response.time_to_first_chunk")
}

// anthropic-sdk-go gives each attempt of a non-streamed call a deadline of
// its own and cancels it just before it retries. With one retry allowed
// (WithMaxRetries(1)) the traced call must succeed as the uninstrumented one
// does, the retry going out with its own context, and be one span: the
// cancelled attempt context is not the caller giving up.
func TestRetryAfterAttemptContextCancelled(t *testing.T) {
	script := []llmhttptest.Reply{
		{Status: 529, Body: []byte(errorJSON("overloaded_error", "Overloaded")), Header: map[string]string{"retry-after-ms": "200"}},
		{Body: []byte(answerJSON), Delay: 50 * time.Millisecond},
	}
	for _, timeout := range []time.Duration{0, 30 * time.Second} {
		t.Run(fmt.Sprint("timeout=", timeout), func(t *testing.T) {
			srv, bareSrv := llmhttptest.NewServer(t, script...), llmhttptest.NewServer(t, script...)
			tr, rec := agenttracetest.New(t, agenttrace.WithFlushInterval(5*time.Millisecond))
			extra := []option.RequestOption{option.WithMaxRetries(1)}
			if timeout > 0 {
				extra = append(extra, option.WithRequestTimeout(timeout))
			}
			want, err := newClient(bareSrv.URL, nil, extra...).Messages.New(context.Background(), params())
			require.NoError(t, err)
			got, err := newClient(srv.URL, tr, extra...).Messages.New(context.Background(), params())
			require.NoError(t, err, "the traced call succeeds as the uninstrumented one does")
			assert.Equal(t, want.RawJSON(), got.RawJSON())
			reqs := srv.Requests()
			require.Len(t, reqs, 2)
			assert.NotEmpty(t, reqs[0].Header.Get("X-Stainless-Timeout"), "the SDK set a per-attempt timeout")

			// Long enough for a cancelled wait to have ended the span early.
			time.Sleep(100 * time.Millisecond)
			require.NoError(t, tr.Flush(context.Background()))
			waitSpans(t, rec, 1)
			llms := rec.SpansOfType(agenttrace.TypeLLM)
			require.Len(t, llms, 1, "one logical call, one span")
			assert.Equal(t, agenttrace.StatusComplete, llms[0].Status)
			res := result(t, llms[0])
			assert.EqualValues(t, 2, res.Metadata["attempts"])
			assert.Contains(t, fmt.Sprint(res.Metadata["attempt_errors"]), "overloaded_error")
		})
	}
}

// An attempt whose answer is slower than option.WithRequestTimeout, then a
// success: anthropic-sdk-go retries once the attempt's own deadline runs
// out (before the headers, or part-way through the JSON body it reads in
// its retry loop), and also when the connection drops part-way through
// that body. The traced call returns what the uninstrumented one does, and
// it is one span, complete, with both attempts recorded.
func TestRetryAfterRequestTimeout(t *testing.T) {
	cases := map[string]llmhttptest.Reply{
		"slow headers": {Body: []byte(answerJSON), Delay: 5 * time.Second},
		"slow body":    {Body: []byte(answerJSON), HoldAfter: 20},
		"body cut":     {Body: []byte(answerJSON), CutAfter: 20},
	}
	for name, slow := range cases {
		t.Run(name, func(t *testing.T) {
			script := []llmhttptest.Reply{slow, {Body: []byte(answerJSON)}}
			srv, bareSrv := llmhttptest.NewServer(t, script...), llmhttptest.NewServer(t, script...)
			tr, rec := agenttracetest.New(t, agenttrace.WithFlushInterval(5*time.Millisecond))
			extra := []option.RequestOption{option.WithMaxRetries(1), option.WithRequestTimeout(300 * time.Millisecond)}
			want, err := newClient(bareSrv.URL, nil, extra...).Messages.New(context.Background(), params())
			require.NoError(t, err, "the SDK retries after the attempt's deadline")
			require.Len(t, bareSrv.Requests(), 2)

			ctx, run := tr.StartInstance(context.Background())
			got, err := newClient(srv.URL, tr, extra...).Messages.New(ctx, params())
			run.End()
			require.NoError(t, err)
			assert.Equal(t, want.RawJSON(), got.RawJSON())
			reqs := srv.Requests()
			require.Len(t, reqs, 2)
			assert.Equal(t, "1", reqs[1].Header.Get("X-Stainless-Retry-Count"))

			require.NoError(t, tr.Flush(context.Background()))
			waitSpans(t, rec, 1)
			llms := rec.SpansOfType(agenttrace.TypeLLM)
			require.Len(t, llms, 1, "one logical call, one span")
			assert.Equal(t, agenttrace.StatusComplete, llms[0].Status)
			res := result(t, llms[0])
			assert.EqualValues(t, 2, res.Metadata["attempts"])
			wantErr := "deadline exceeded"
			if slow.CutAfter > 0 {
				wantErr = "unexpected EOF"
			}
			assert.Contains(t, fmt.Sprint(res.Metadata["attempt_errors"]), wantErr)
			assert.Equal(t, "Sunny in Paris.", res.Text)
			require.NotNil(t, llms[0].Usage)
			assert.EqualValues(t, 1160, llms[0].Usage.PromptTokens)
		})
	}
}

// A non-streamed call whose context is cancelled while the server holds
// the answer back: the SDK returns the context's error, as the
// uninstrumented client does, and the span fails with it.
func TestCancelledBeforeResponse(t *testing.T) {
	script := llmhttptest.Reply{Body: []byte(answerJSON), Delay: time.Minute}
	srv, bareSrv := llmhttptest.NewServer(t, script), llmhttptest.NewServer(t, script)
	tr, rec := agenttracetest.New(t, agenttrace.WithFlushInterval(5*time.Millisecond))
	call := func(c *anthropic.Client, srv *llmhttptest.Server) error {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		go func() {
			for len(srv.Requests()) == 0 && ctx.Err() == nil {
				time.Sleep(time.Millisecond)
			}
			cancel() // once the server has the request
		}()
		_, err := c.Messages.New(ctx, params())
		return err
	}
	require.ErrorIs(t, call(newClient(bareSrv.URL, nil), bareSrv), context.Canceled)
	require.ErrorIs(t, call(newClient(srv.URL, tr), srv), context.Canceled)
	assert.Len(t, srv.Requests(), 1, "no retry once the caller gave up")
	waitSpans(t, rec, 1)
	llms := rec.SpansOfType(agenttrace.TypeLLM)
	require.Len(t, llms, 1)
	assert.Equal(t, agenttrace.StatusFailed, llms[0].Status)
	assert.Equal(t, "context.Canceled", llms[0].Error.Type)
}

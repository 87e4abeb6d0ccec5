package openaitrace_test

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/responses"
	"github.com/openai/openai-go/v3/shared"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/agenttrace/agenttrace"
	"github.com/agenttrace/agenttrace/agenttracetest"
	"github.com/agenttrace/agenttrace/instrument/llmhttp"
	"github.com/agenttrace/agenttrace/instrument/llmhttp/llmhttptest"
	openaitrace "github.com/agenttrace/agenttrace/instrument/openai"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func fixture(t testing.TB, name string) []byte {
	return llmhttptest.Fixture(t, filepath.Join("..", "llmhttp", "testdata", name))
}

// fast makes openai-go retry at once.
var fast = map[string]string{"Retry-After-Ms": "1"}

type env struct {
	tr      *agenttrace.Tracer
	rec     *agenttracetest.Recorder
	srv     *llmhttptest.Server
	traced  openai.Client
	bare    openai.Client
	bareSrv *llmhttptest.Server
}

// newEnv returns a traced client and an uninstrumented one, each against a
// fake provider answering with script.
func newEnv(t *testing.T, opts []llmhttp.Option, script ...llmhttptest.Reply) *env {
	e := &env{}
	e.tr, e.rec = agenttracetest.New(t)
	e.srv = llmhttptest.NewServer(t, script...)
	e.bareSrv = llmhttptest.NewServer(t, script...)
	common := []option.RequestOption{option.WithAPIKey("sk-test-SECRET"), option.WithMaxRetries(3)}
	opts = append([]llmhttp.Option{llmhttp.WithCapture(llmhttp.CaptureFull)}, opts...)
	e.traced = openai.NewClient(append(common, option.WithBaseURL(e.srv.URL+"/v1"), openaitrace.WithTracing(e.tr, opts...))...)
	e.bare = openai.NewClient(append(common, option.WithBaseURL(e.bareSrv.URL+"/v1"))...)
	return e
}

func (e *env) spans(t *testing.T, n int) []agenttrace.SpanData {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, e.rec.WaitFor(ctx, func(r *agenttracetest.Recorder) bool {
		_ = e.tr.Flush(ctx)
		k := 0
		for _, s := range r.SpansOfType(agenttrace.TypeLLM) {
			if s.Status.Finished() {
				k++
			}
		}
		return k >= n
	}))
	s := e.rec.SpansOfType(agenttrace.TypeLLM)
	require.Len(t, s, n)
	for _, sp := range s {
		all := string(sp.Payload) + string(sp.Result)
		if sp.Error != nil {
			all += sp.Error.Message
		}
		assert.NotContains(t, all, "SECRET", "the API key stays off spans")
	}
	return s
}

func result(t *testing.T, s agenttrace.SpanData) agenttrace.LLMResponse {
	var r agenttrace.LLMResponse
	require.NoError(t, json.Unmarshal(s.Result, &r))
	return r
}

func request(t *testing.T, s agenttrace.SpanData) agenttrace.LLMRequest {
	var r agenttrace.LLMRequest
	require.NoError(t, json.Unmarshal(s.Payload, &r))
	return r
}

func chatParams() openai.ChatCompletionNewParams {
	return openai.ChatCompletionNewParams{
		Model:       shared.ChatModelGPT4o,
		Messages:    []openai.ChatCompletionMessageParamUnion{openai.SystemMessage("Be nice."), openai.UserMessage("Hello!")},
		Temperature: openai.Float(0.3),
	}
}

func TestChatJSON(t *testing.T) {
	e := newEnv(t, nil, llmhttptest.Reply{Body: fixture(t, "openai_chat.json")})
	ctx, agent := e.tr.Start(context.Background(), agenttrace.TypeAgent, agenttrace.AgentInput{Name: "a"})
	got, err := e.traced.Chat.Completions.New(ctx, chatParams())
	require.NoError(t, err)
	want, err := e.bare.Chat.Completions.New(context.Background(), chatParams())
	require.NoError(t, err)
	assert.Equal(t, want.RawJSON(), got.RawJSON(), "the SDK's result is an uninstrumented client's")
	assert.Equal(t, want.Choices[0].Message.Content, got.Choices[0].Message.Content)
	agent.End()

	s := e.spans(t, 1)[0]
	assert.Equal(t, agenttrace.StatusComplete, s.Status)
	assert.Equal(t, agent.ID(), s.ParentID)
	assert.Equal(t, "chat gpt-4o", s.Name)
	req, r := request(t, s), result(t, s)
	assert.Equal(t, "openai", req.Provider)
	assert.Equal(t, "gpt-4o", req.Model)
	assert.Equal(t, 0.3, *req.Settings.Temperature)
	assert.Equal(t, []agenttrace.Message{{Role: "system", Content: "Be nice."}, {Role: "user", Content: "Hello!"}}, req.Messages)
	assert.Equal(t, got.Choices[0].Message.Content, r.Text)
	assert.Equal(t, "stop", r.FinishReason)
	assert.Equal(t, got.ID, r.ID)
	assert.Equal(t, agenttrace.Usage{PromptTokens: 19, CompletionTokens: 10, TotalTokens: 29}, *s.Usage)
	require.NotNil(t, s.Cost)
	assert.InDelta(t, (19*2+10*8)/1e6, s.Cost.Total, 1e-12)
	assert.True(t, s.FirstTokenAt.IsZero())
}

func drainChat(t *testing.T, c openai.Client, ctx context.Context, p openai.ChatCompletionNewParams) (openai.ChatCompletion, []string, error) {
	stream := c.Chat.Completions.NewStreaming(ctx, p)
	defer stream.Close()
	var acc openai.ChatCompletionAccumulator
	var raw []string
	for stream.Next() {
		acc.AddChunk(stream.Current())
		raw = append(raw, stream.Current().RawJSON())
	}
	return acc.ChatCompletion, raw, stream.Err()
}

func TestChatStream(t *testing.T) {
	sse := fixture(t, "openai_chat_stream.sse")
	e := newEnv(t, []llmhttp.Option{llmhttp.WithIncludeUsage()}, llmhttptest.Reply{ContentType: "text/event-stream", Body: sse, Chunk: 40})
	p := chatParams()
	p.Model = shared.ChatModelGPT4oMini
	got, gotRaw, err := drainChat(t, e.traced, context.Background(), p)
	require.NoError(t, err)
	want, wantRaw, err := drainChat(t, e.bare, context.Background(), p)
	require.NoError(t, err)
	assert.Equal(t, wantRaw, gotRaw, "every chunk as the server sent it")
	assert.Equal(t, want.Choices[0].Message.Content, got.Choices[0].Message.Content)

	// WithIncludeUsage asked for the usage chunk.
	reqs := e.srv.Requests()
	require.Len(t, reqs, 1)
	assert.Contains(t, string(reqs[0].Body), `"stream_options":{"include_usage":true}`)
	assert.NotContains(t, string(e.bareSrv.Requests()[0].Body), "include_usage")

	s := e.spans(t, 1)[0]
	assert.Equal(t, agenttrace.StatusComplete, s.Status)
	assert.False(t, s.FirstTokenAt.IsZero())
	assert.True(t, request(t, s).Stream)
	r := result(t, s)
	assert.Equal(t, got.Choices[0].Message.Content, r.Text)
	assert.Equal(t, "stop", r.FinishReason)
	assert.Equal(t, agenttrace.Usage{PromptTokens: 1200, CompletionTokens: 9, TotalTokens: 1209, Details: map[string]int64{agenttrace.UsageCacheRead: 1024}}, *s.Usage)
	assert.InDelta(t, (176*0.15+1024*0.075+9*0.60)/1e6, s.Cost.Total, 1e-12)
}

func TestChatStreamWithoutUsage(t *testing.T) {
	// Without include_usage the stream reports no usage: the span says so
	// rather than recording zeros.
	sse := fixture(t, "openai_chat_stream.sse")
	noUsage := strings.Replace(string(sse), `"choices":[],"usage":{"prompt_tokens":1200`, `"choices":[],"x":{"prompt_tokens":1200`, 1)
	e := newEnv(t, nil, llmhttptest.Reply{ContentType: "text/event-stream", Body: []byte(noUsage)})
	_, _, err := drainChat(t, e.traced, context.Background(), chatParams())
	require.NoError(t, err)
	s := e.spans(t, 1)[0]
	assert.Nil(t, s.Usage)
	assert.Nil(t, s.Cost)
	assert.Equal(t, true, result(t, s).Metadata["usage_missing"])
}

func TestTwoTurnToolCall(t *testing.T) {
	script := []llmhttptest.Reply{{Body: fixture(t, "openai_chat_tool.json")}, {Body: fixture(t, "openai_chat_turn2.json")}}
	e := newEnv(t, nil, script...)
	run := func(c openai.Client, ctx context.Context) (string, error) {
		p := openai.ChatCompletionNewParams{
			Model:    shared.ChatModelGPT4o,
			Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("Weather in Paris?")},
			Tools: []openai.ChatCompletionToolUnionParam{openai.ChatCompletionFunctionTool(shared.FunctionDefinitionParam{
				Name: "get_weather", Description: openai.String("Get the weather"),
				Parameters: shared.FunctionParameters{"type": "object", "properties": map[string]any{"location": map[string]any{"type": "string"}}},
			})},
		}
		first, err := c.Chat.Completions.New(ctx, p)
		if err != nil {
			return "", err
		}
		call := first.Choices[0].Message.ToolCalls[0]
		ctx2, tool := e.tr.Start(ctx, agenttrace.TypeTool, agenttrace.ToolInput{Name: call.Function.Name, CallID: call.ID, Arguments: json.RawMessage(call.Function.Arguments)})
		tool.SetResult(agenttrace.ToolOutput{Output: "14°C, sunny"})
		tool.End()
		_ = ctx2
		p.Messages = append(p.Messages, first.Choices[0].Message.ToParam(), openai.ToolMessage("14°C, sunny", call.ID))
		second, err := c.Chat.Completions.New(ctx, p)
		if err != nil {
			return "", err
		}
		return second.Choices[0].Message.Content, nil
	}
	ctx, inst := e.tr.StartInstance(context.Background())
	ctx, agent := e.tr.Start(ctx, agenttrace.TypeAgent, agenttrace.AgentInput{Name: "weather"})
	got, err := run(e.traced, ctx)
	require.NoError(t, err)
	want, err := run(e.bare, context.Background())
	require.NoError(t, err)
	assert.Equal(t, want, got)
	agent.End()
	inst.End()

	spans := e.spans(t, 2)
	require.NoError(t, e.tr.Flush(context.Background()))
	assert.Equal(t, "agent\n  llm\n  tool\n  llm\n", treeTypes(e.rec, inst.ID()))
	first, second := spans[0], spans[1]
	for _, s := range spans {
		assert.Equal(t, agenttrace.StatusComplete, s.Status)
		assert.True(t, s.FirstTokenAt.IsZero(), "not streamed")
	}
	assert.Equal(t, agenttrace.Usage{PromptTokens: 82, CompletionTokens: 17, TotalTokens: 99}, *first.Usage)
	assert.Equal(t, "stop", result(t, second).FinishReason)
	r1 := result(t, first)
	require.Len(t, r1.ToolCalls, 1)
	assert.Equal(t, agenttrace.ToolCall{ID: "call_12345xyz", Name: "get_weather", Arguments: json.RawMessage(`{"location":"Paris, France"}`)}, r1.ToolCalls[0])
	assert.Equal(t, "tool_calls", r1.FinishReason)
	req1 := request(t, first)
	require.Len(t, req1.Tools, 1)
	assert.Equal(t, "get_weather", req1.Tools[0].Name)
	assert.JSONEq(t, `{"type":"object","properties":{"location":{"type":"string"}}}`, string(req1.Tools[0].Parameters))

	req2 := request(t, second)
	require.Len(t, req2.Messages, 3)
	assert.Equal(t, "assistant", req2.Messages[1].Role)
	assert.Equal(t, "call_12345xyz", req2.Messages[1].ToolCalls[0].ID)
	assert.Equal(t, agenttrace.Message{Role: "tool", Content: "14°C, sunny", ToolCallID: "call_12345xyz"}, req2.Messages[2])
	assert.Equal(t, "It is 14°C and sunny in Paris.", result(t, second).Text)

	sum := inst.Summary()
	assert.Equal(t, int64(2), sum.LLMCalls)
	assert.Equal(t, int64(99+132), sum.Usage.TotalTokens)
	assert.InDelta(t, ((82+120)*2.5+(17+12)*10)/1e6, sum.Cost.Total, 1e-9)
}

// treeTypes lists the instance's spans depth first as indented types.
func treeTypes(rec *agenttracetest.Recorder, inst agenttrace.ID) string {
	var b strings.Builder
	var walk func(s agenttrace.SpanData, depth int)
	walk = func(s agenttrace.SpanData, depth int) {
		b.WriteString(strings.Repeat("  ", depth) + s.Type + "\n")
		for _, c := range rec.Children(s.ID) {
			walk(c, depth+1)
		}
	}
	for _, r := range rec.Roots(inst) {
		walk(r, 0)
	}
	return b.String()
}

func TestAPIErrors(t *testing.T) {
	for _, c := range []struct {
		status  int
		fixture string
		typ     string
	}{{400, "openai_error_400.json", "invalid_request_error"}, {429, "openai_error_429.json", "tokens"}, {500, "openai_error_500.json", "server_error"}} {
		t.Run(c.fixture, func(t *testing.T) {
			e := newEnv(t, nil, llmhttptest.Reply{Status: c.status, Body: fixture(t, c.fixture), Header: fast})
			_, err := e.traced.Chat.Completions.New(context.Background(), chatParams())
			var got *openai.Error
			require.ErrorAs(t, err, &got)
			_, err = e.bare.Chat.Completions.New(context.Background(), chatParams())
			var want *openai.Error
			require.ErrorAs(t, err, &want)
			assert.Equal(t, want.StatusCode, got.StatusCode)
			assert.Equal(t, want.Message, got.Message)
			assert.Equal(t, want.Type, got.Type)
			assert.Equal(t, want.RawJSON(), got.RawJSON())

			s := e.spans(t, 1)[0]
			assert.Equal(t, agenttrace.StatusFailed, s.Status)
			assert.Equal(t, c.typ, s.Error.Type)
			assert.Contains(t, s.Error.Message, got.Message)
			attempts := 1
			if c.status != 400 {
				attempts = 4 // the SDK retried three times
			}
			assert.Len(t, e.srv.Requests(), attempts)
			if attempts > 1 {
				assert.EqualValues(t, attempts, result(t, s).Metadata["attempts"])
			}
		})
	}
}

func TestRetryThenSuccess(t *testing.T) {
	e := newEnv(t, nil,
		llmhttptest.Reply{Status: 500, Body: fixture(t, "openai_error_500.json"), Header: fast},
		llmhttptest.Reply{Status: 429, Body: fixture(t, "openai_error_429.json"), Header: fast},
		llmhttptest.Reply{Body: fixture(t, "openai_chat.json")})
	got, err := e.traced.Chat.Completions.New(context.Background(), chatParams())
	require.NoError(t, err)
	want, err := e.bare.Chat.Completions.New(context.Background(), chatParams())
	require.NoError(t, err)
	assert.Equal(t, want.RawJSON(), got.RawJSON())

	s := e.spans(t, 1)[0]
	assert.Equal(t, agenttrace.StatusComplete, s.Status, "one span for the logical call")
	r := result(t, s)
	assert.EqualValues(t, 3, r.Metadata["attempts"])
	errs := r.Metadata["attempt_errors"].([]any)
	require.Len(t, errs, 2)
	assert.Contains(t, errs[0], "500 server_error")
	assert.Contains(t, errs[1], "429 tokens")
	assert.Equal(t, int64(29), s.Usage.TotalTokens)
}

func TestStreamCut(t *testing.T) {
	sse := fixture(t, "openai_chat_stream.sse")
	cut := strings.Index(string(sse), `"finish_reason":"stop"`)
	e := newEnv(t, nil, llmhttptest.Reply{ContentType: "text/event-stream", Body: sse, CutAfter: cut})
	got, _, err := drainChat(t, e.traced, context.Background(), chatParams())
	require.Error(t, err)
	want, _, wantErr := drainChat(t, e.bare, context.Background(), chatParams())
	require.Error(t, wantErr)
	assert.Equal(t, want.Choices[0].Message.Content, got.Choices[0].Message.Content)
	s := e.spans(t, 1)[0]
	assert.Equal(t, agenttrace.StatusFailed, s.Status)
	assert.Equal(t, "stream_cut", s.Error.Type)
	assert.Equal(t, got.Choices[0].Message.Content, result(t, s).Text)
}

func TestStreamClosedEarly(t *testing.T) {
	sse := fixture(t, "openai_chat_stream.sse")
	e := newEnv(t, nil, llmhttptest.Reply{ContentType: "text/event-stream", Body: sse, HoldAfter: strings.Index(string(sse), "[DONE]") - 10})
	stream := e.traced.Chat.Completions.NewStreaming(context.Background(), chatParams())
	require.True(t, stream.Next())
	require.True(t, stream.Next())
	require.NoError(t, stream.Close())
	s := e.spans(t, 1)[0]
	assert.Equal(t, agenttrace.StatusFailed, s.Status)
	assert.Equal(t, "stream_closed_early", s.Error.Type)
	assert.False(t, s.FirstTokenAt.IsZero())
}

func TestStreamContextCancelled(t *testing.T) {
	sse := fixture(t, "openai_chat_stream.sse")
	e := newEnv(t, nil, llmhttptest.Reply{ContentType: "text/event-stream", Body: sse, HoldAfter: strings.Index(string(sse), "[DONE]") - 10})
	ctx, cancel := context.WithCancel(context.Background())
	stream := e.traced.Chat.Completions.NewStreaming(ctx, chatParams())
	require.True(t, stream.Next())
	cancel()
	for stream.Next() {
	}
	require.ErrorIs(t, stream.Err(), context.Canceled)
	_ = stream.Close()
	s := e.spans(t, 1)[0]
	assert.Equal(t, agenttrace.StatusFailed, s.Status)
	assert.Equal(t, "context.Canceled", s.Error.Type)
}

func TestCancelledBeforeResponse(t *testing.T) {
	e := newEnv(t, nil, llmhttptest.Reply{Body: fixture(t, "openai_chat.json"), HoldAfter: 1})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := e.traced.Chat.Completions.New(ctx, chatParams())
	require.Error(t, err)
	assert.True(t, errors.Is(err, context.DeadlineExceeded), err)
	s := e.spans(t, 1)[0]
	assert.Equal(t, agenttrace.StatusFailed, s.Status)
	assert.Equal(t, "context.DeadlineExceeded", s.Error.Type)
}

func responsesParams(model string) responses.ResponseNewParams {
	return responses.ResponseNewParams{
		Model:        shared.ResponsesModel(model),
		Instructions: openai.String("Be brief."),
		Input:        responses.ResponseNewParamsInputUnion{OfString: openai.String("Tell me a story.")},
	}
}

func TestResponsesJSON(t *testing.T) {
	e := newEnv(t, nil, llmhttptest.Reply{Body: fixture(t, "openai_responses.json")})
	got, err := e.traced.Responses.New(context.Background(), responsesParams("o4-mini"))
	require.NoError(t, err)
	want, err := e.bare.Responses.New(context.Background(), responsesParams("o4-mini"))
	require.NoError(t, err)
	assert.Equal(t, want.RawJSON(), got.RawJSON())
	s := e.spans(t, 1)[0]
	assert.Equal(t, agenttrace.StatusComplete, s.Status)
	assert.Equal(t, "chat o4-mini", s.Name, "gen_ai.operation.name is chat for the Responses API too")
	req, r := request(t, s), result(t, s)
	assert.Equal(t, "stop", r.FinishReason)
	assert.Equal(t, got.ID, r.ID)
	assert.Equal(t, "Be brief.", req.System)
	assert.Equal(t, "Tell me a story.", req.Messages[0].Content)
	assert.Equal(t, got.OutputText(), r.Text)
	assert.Equal(t, agenttrace.Usage{PromptTokens: 36, CompletionTokens: 87, TotalTokens: 123, Details: map[string]int64{agenttrace.UsageReasoning: 64}}, *s.Usage)
	assert.InDelta(t, (36*1.10+87*4.40)/1e6, s.Cost.Total, 1e-12)
}

func TestResponsesStream(t *testing.T) {
	e := newEnv(t, nil, llmhttptest.Reply{ContentType: "text/event-stream", Body: fixture(t, "openai_responses_stream.sse"), Chunk: 64})
	drain := func(c openai.Client) ([]string, error) {
		stream := c.Responses.NewStreaming(context.Background(), responsesParams("gpt-4.1"))
		defer stream.Close()
		var types []string
		for stream.Next() {
			types = append(types, stream.Current().Type+":"+stream.Current().RawJSON())
		}
		return types, stream.Err()
	}
	got, err := drain(e.traced)
	require.NoError(t, err)
	want, err := drain(e.bare)
	require.NoError(t, err)
	assert.Equal(t, want, got)
	s := e.spans(t, 1)[0]
	assert.Equal(t, agenttrace.StatusComplete, s.Status)
	r := result(t, s)
	assert.Equal(t, "Hi there!", r.Text)
	assert.Equal(t, "tool_calls", r.FinishReason)
	assert.Equal(t, agenttrace.ToolCall{ID: "call_xyz", Name: "get_weather", Arguments: json.RawMessage(`{"city":"Rome"}`)}, r.ToolCalls[0])
	assert.False(t, s.FirstTokenAt.IsZero())
	assert.Equal(t, int64(48), s.Usage.TotalTokens)
	assert.InDelta(t, (37*2+11*8)/1e6, s.Cost.Total, 1e-12)
}

// A retry goes out with its own attempt's context: openai-go gives each
// attempt a deadline of WithRequestTimeout, so a retry sent with the first
// attempt's context would run out of time where an uninstrumented call
// succeeds. The first attempt fails at once and the SDK waits 1.5 s (well
// inside the 3 s timeout); the retry's answer takes 2 s, past the first
// attempt's deadline but inside its own.
func TestRetryWithRequestTimeout(t *testing.T) {
	script := []llmhttptest.Reply{
		{Status: 500, Body: fixture(t, "openai_error_500.json"), Header: map[string]string{"Retry-After-Ms": "1500"}},
		{Body: fixture(t, "openai_chat.json"), Delay: 2 * time.Second},
	}
	tr, rec := agenttracetest.New(t)
	srv, bareSrv := llmhttptest.NewServer(t, script...), llmhttptest.NewServer(t, script...)
	common := []option.RequestOption{option.WithAPIKey("sk-test-SECRET"), option.WithMaxRetries(1), option.WithRequestTimeout(3 * time.Second)}
	traced := openai.NewClient(append(common, option.WithBaseURL(srv.URL+"/v1"), openaitrace.WithTracing(tr))...)
	bare := openai.NewClient(append(common, option.WithBaseURL(bareSrv.URL+"/v1"))...)

	var wg sync.WaitGroup
	var want *openai.ChatCompletion
	var bareErr error
	wg.Go(func() { want, bareErr = bare.Chat.Completions.New(context.Background(), chatParams()) })
	got, err := traced.Chat.Completions.New(context.Background(), chatParams())
	wg.Wait()
	require.NoError(t, bareErr)
	require.NoError(t, err, "the traced call succeeds as the uninstrumented one does")
	assert.Equal(t, want.RawJSON(), got.RawJSON())
	require.Len(t, srv.Requests(), 2)

	e := &env{tr: tr, rec: rec}
	s := e.spans(t, 1)[0]
	assert.Equal(t, agenttrace.StatusComplete, s.Status, "one span for the logical call")
	r := result(t, s)
	assert.EqualValues(t, 2, r.Metadata["attempts"])
	assert.Equal(t, int64(29), s.Usage.TotalTokens)
}

// An attempt slower than option.WithRequestTimeout: openai-go (v3.98.0)
// returns the attempt's deadline error to its caller rather than retrying.
// The traced call fails as the uninstrumented one does, with one request
// sent, and it is one span, failed with the deadline (after the short wait
// for a retry that does not come, bounded here by WithRetryWait).
func TestRequestTimeoutNotRetried(t *testing.T) {
	script := []llmhttptest.Reply{{Body: fixture(t, "openai_chat.json"), Delay: 5 * time.Second}, {Body: fixture(t, "openai_chat.json")}}
	tr, rec := agenttracetest.New(t)
	srv, bareSrv := llmhttptest.NewServer(t, script...), llmhttptest.NewServer(t, script...)
	common := []option.RequestOption{option.WithAPIKey("sk-test-SECRET"), option.WithMaxRetries(1), option.WithRequestTimeout(200 * time.Millisecond)}
	traced := openai.NewClient(append(common, option.WithBaseURL(srv.URL+"/v1"), openaitrace.WithTracing(tr, llmhttp.WithRetryWait(2*time.Second)))...)
	bare := openai.NewClient(append(common, option.WithBaseURL(bareSrv.URL+"/v1"))...)

	_, bareErr := bare.Chat.Completions.New(context.Background(), chatParams())
	require.ErrorIs(t, bareErr, context.DeadlineExceeded)
	ctx, agent := tr.Start(context.Background(), agenttrace.TypeAgent, agenttrace.AgentInput{Name: "a"})
	_, err := traced.Chat.Completions.New(ctx, chatParams())
	agent.End()
	require.ErrorIs(t, err, context.DeadlineExceeded, "the traced call fails as the uninstrumented one does")
	assert.Len(t, srv.Requests(), len(bareSrv.Requests()))

	e := &env{tr: tr, rec: rec}
	s := e.spans(t, 1)[0]
	assert.Equal(t, agenttrace.StatusFailed, s.Status)
	assert.Equal(t, agent.ID(), s.ParentID)
	require.NotNil(t, s.Error)
	assert.Contains(t, s.Error.Message, "deadline exceeded")
	took := s.EndedAt.Sub(s.StartedAt)
	assert.GreaterOrEqual(t, took, 200*time.Millisecond)
	assert.Less(t, took, 1500*time.Millisecond, "the span ends when the attempt did, not when the 2 s wait ran out")
}

package goopenai_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	openai "github.com/sashabaranov/go-openai"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/agenttrace/agenttrace"
	"github.com/agenttrace/agenttrace/agenttracetest"
	"github.com/agenttrace/agenttrace/instrument/llmhttp"
	"github.com/agenttrace/agenttrace/instrument/llmhttp/llmhttptest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func fixture(t testing.TB, name string) []byte {
	return llmhttptest.Fixture(t, filepath.Join("..", "llmhttp", "testdata", name))
}

type env struct {
	tr           *agenttrace.Tracer
	rec          *agenttracetest.Recorder
	srv, bareSrv *llmhttptest.Server
	traced, bare *openai.Client
}

func newEnv(t *testing.T, script ...llmhttptest.Reply) *env {
	e := &env{}
	e.tr, e.rec = agenttracetest.New(t)
	e.srv = llmhttptest.NewServer(t, script...)
	e.bareSrv = llmhttptest.NewServer(t, script...)
	cfg := openai.DefaultConfig("sk-test-SECRET")
	cfg.BaseURL = e.srv.URL + "/v1"
	cfg.HTTPClient = &http.Client{Transport: llmhttp.NewTransport(e.tr, nil, llmhttp.WithCapture(llmhttp.CaptureFull))}
	e.traced = openai.NewClientWithConfig(cfg)
	bare := openai.DefaultConfig("sk-test-SECRET")
	bare.BaseURL = e.bareSrv.URL + "/v1"
	e.bare = openai.NewClientWithConfig(bare)
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

func chatReq() openai.ChatCompletionRequest {
	return openai.ChatCompletionRequest{
		Model:    openai.GPT4Dot1,
		Messages: []openai.ChatCompletionMessage{{Role: openai.ChatMessageRoleUser, Content: "Hello!"}},
	}
}

func TestChat(t *testing.T) {
	e := newEnv(t, llmhttptest.Reply{Body: fixture(t, "openai_chat.json")})
	got, err := e.traced.CreateChatCompletion(context.Background(), chatReq())
	require.NoError(t, err)
	want, err := e.bare.CreateChatCompletion(context.Background(), chatReq())
	require.NoError(t, err)
	got.SetHeader(nil)
	want.SetHeader(nil)
	assert.Equal(t, want, got)
	s := e.spans(t, 1)[0]
	assert.Equal(t, agenttrace.StatusComplete, s.Status)
	r := result(t, s)
	assert.Equal(t, got.Choices[0].Message.Content, r.Text)
	assert.Equal(t, "stop", r.FinishReason)
	assert.Equal(t, agenttrace.Usage{PromptTokens: 19, CompletionTokens: 10, TotalTokens: 29}, *s.Usage)
	assert.InDelta(t, (19*2+10*8)/1e6, s.Cost.Total, 1e-12)
}

func stream(c *openai.Client, ctx context.Context, req openai.ChatCompletionRequest) (string, []openai.ChatCompletionStreamResponse, error) {
	req.Stream = true
	st, err := c.CreateChatCompletionStream(ctx, req)
	if err != nil {
		return "", nil, err
	}
	defer st.Close()
	var text strings.Builder
	var chunks []openai.ChatCompletionStreamResponse
	for {
		ch, err := st.Recv()
		if errors.Is(err, io.EOF) {
			return text.String(), chunks, nil
		}
		if err != nil {
			return text.String(), chunks, err
		}
		chunks = append(chunks, ch)
		if len(ch.Choices) > 0 {
			text.WriteString(ch.Choices[0].Delta.Content)
		}
	}
}

func TestChatStream(t *testing.T) {
	e := newEnv(t, llmhttptest.Reply{ContentType: "text/event-stream", Body: fixture(t, "openai_chat_stream.sse"), Chunk: 50})
	req := chatReq()
	req.StreamOptions = &openai.StreamOptions{IncludeUsage: true}
	got, gotChunks, err := stream(e.traced, context.Background(), req)
	require.NoError(t, err)
	want, wantChunks, err := stream(e.bare, context.Background(), req)
	require.NoError(t, err)
	assert.Equal(t, want, got)
	assert.Equal(t, wantChunks, gotChunks)
	s := e.spans(t, 1)[0]
	assert.Equal(t, agenttrace.StatusComplete, s.Status)
	assert.Equal(t, got, result(t, s).Text)
	assert.False(t, s.FirstTokenAt.IsZero())
	assert.Equal(t, int64(1209), s.Usage.TotalTokens)
	assert.Equal(t, int64(1024), s.Usage.Details[agenttrace.UsageCacheRead])
	assert.Equal(t, "stop", result(t, s).FinishReason)
	require.NotNil(t, s.Cost, "gpt-4o-mini is priced")
	assert.InDelta(t, (176*0.15+1024*0.075+9*0.60)/1e6, s.Cost.Total, 1e-12, "cached input at its own price")
}

func TestTwoTurnToolCall(t *testing.T) {
	e := newEnv(t, llmhttptest.Reply{Body: fixture(t, "openai_chat_tool.json")}, llmhttptest.Reply{Body: fixture(t, "openai_chat_turn2.json")})
	run := func(c *openai.Client, ctx context.Context) (string, error) {
		req := chatReq()
		req.Model = openai.GPT4o
		req.Tools = []openai.Tool{{Type: openai.ToolTypeFunction, Function: &openai.FunctionDefinition{Name: "get_weather", Parameters: json.RawMessage(`{"type":"object"}`)}}}
		first, err := c.CreateChatCompletion(ctx, req)
		if err != nil {
			return "", err
		}
		msg := first.Choices[0].Message
		req.Messages = append(req.Messages, msg, openai.ChatCompletionMessage{Role: openai.ChatMessageRoleTool, Content: "14°C", ToolCallID: msg.ToolCalls[0].ID})
		second, err := c.CreateChatCompletion(ctx, req)
		if err != nil {
			return "", err
		}
		return second.Choices[0].Message.Content, nil
	}
	ctx, agent := e.tr.Start(context.Background(), agenttrace.TypeAgent, nil)
	got, err := run(e.traced, ctx)
	require.NoError(t, err)
	want, err := run(e.bare, context.Background())
	require.NoError(t, err)
	assert.Equal(t, want, got)
	agent.End()
	spans := e.spans(t, 2)
	for _, s := range spans {
		assert.Equal(t, agent.ID(), s.ParentID)
	}
	assert.Equal(t, agenttrace.ToolCall{ID: "call_12345xyz", Name: "get_weather", Arguments: json.RawMessage(`{"location":"Paris, France"}`)}, result(t, spans[0]).ToolCalls[0])
	req2 := request(t, spans[1])
	assert.Equal(t, agenttrace.Message{Role: "tool", Content: "14°C", ToolCallID: "call_12345xyz"}, req2.Messages[2])
	assert.Equal(t, got, result(t, spans[1]).Text)
	for i, w := range []struct {
		finish      string
		usage       agenttrace.Usage
		prompt, out int64
	}{
		{"tool_calls", agenttrace.Usage{PromptTokens: 82, CompletionTokens: 17, TotalTokens: 99}, 82, 17},
		{"stop", agenttrace.Usage{PromptTokens: 120, CompletionTokens: 12, TotalTokens: 132}, 120, 12},
	} {
		s := spans[i]
		assert.Equal(t, agenttrace.StatusComplete, s.Status)
		assert.Equal(t, w.finish, result(t, s).FinishReason)
		assert.Equal(t, w.usage, *s.Usage)
		require.NotNil(t, s.Cost)
		assert.InDelta(t, (float64(w.prompt)*2.50+float64(w.out)*10)/1e6, s.Cost.Total, 1e-12, "gpt-4o")
		assert.True(t, s.FirstTokenAt.IsZero(), "not streamed")
	}
}

func TestAPIErrors(t *testing.T) {
	for _, c := range []struct {
		status       int
		fixture, typ string
	}{{400, "openai_error_400.json", "invalid_request_error"}, {429, "openai_error_429.json", "tokens"}, {500, "openai_error_500.json", "server_error"}} {
		t.Run(fmt.Sprint(c.status), func(t *testing.T) {
			e := newEnv(t, llmhttptest.Reply{Status: c.status, Body: fixture(t, c.fixture)})
			_, err := e.traced.CreateChatCompletion(context.Background(), chatReq())
			var got *openai.APIError
			require.ErrorAs(t, err, &got)
			_, err = e.bare.CreateChatCompletion(context.Background(), chatReq())
			var want *openai.APIError
			require.ErrorAs(t, err, &want)
			assert.Equal(t, want, got)
			s := e.spans(t, 1)[0]
			assert.Equal(t, agenttrace.StatusFailed, s.Status)
			assert.Equal(t, c.typ, s.Error.Type)
			assert.Contains(t, s.Error.Message, got.Message)
		})
	}
}

func TestCallerRetry(t *testing.T) {
	// go-openai does not retry: a caller's retry is a call, and a span, of
	// its own.
	e := newEnv(t, llmhttptest.Reply{Status: 500, Body: fixture(t, "openai_error_500.json")}, llmhttptest.Reply{Body: fixture(t, "openai_chat.json")})
	_, err := e.traced.CreateChatCompletion(context.Background(), chatReq())
	require.Error(t, err)
	_, err = e.traced.CreateChatCompletion(context.Background(), chatReq())
	require.NoError(t, err)
	spans := e.spans(t, 2)
	assert.Equal(t, agenttrace.StatusFailed, spans[0].Status)
	assert.Equal(t, agenttrace.StatusComplete, spans[1].Status)
}

func TestStreamCut(t *testing.T) {
	sse := fixture(t, "openai_chat_stream.sse")
	e := newEnv(t, llmhttptest.Reply{ContentType: "text/event-stream", Body: sse, CutAfter: strings.Index(string(sse), `"finish_reason":"stop"`)})
	got, _, err := stream(e.traced, context.Background(), chatReq())
	require.Error(t, err)
	want, _, err := stream(e.bare, context.Background(), chatReq())
	require.Error(t, err)
	assert.Equal(t, want, got)
	s := e.spans(t, 1)[0]
	assert.Equal(t, agenttrace.StatusFailed, s.Status)
	assert.Equal(t, "stream_cut", s.Error.Type)
	assert.False(t, s.FirstTokenAt.IsZero(), "content came before the cut")
	assert.NotEmpty(t, result(t, s).Text, "the text up to the cut is kept")
	assert.Nil(t, s.Usage, "no usage chunk arrived")
}

func TestStreamClosedEarly(t *testing.T) {
	sse := fixture(t, "openai_chat_stream.sse")
	e := newEnv(t, llmhttptest.Reply{ContentType: "text/event-stream", Body: sse, HoldAfter: strings.Index(string(sse), "[DONE]") - 10})
	req := chatReq()
	req.Stream = true
	st, err := e.traced.CreateChatCompletionStream(context.Background(), req)
	require.NoError(t, err)
	_, err = st.Recv()
	require.NoError(t, err)
	st.Close()
	s := e.spans(t, 1)[0]
	assert.Equal(t, agenttrace.StatusFailed, s.Status)
	assert.Equal(t, "stream_closed_early", s.Error.Type)
	assert.False(t, s.FirstTokenAt.IsZero())
}

func TestStreamContextCancelled(t *testing.T) {
	sse := fixture(t, "openai_chat_stream.sse")
	e := newEnv(t, llmhttptest.Reply{ContentType: "text/event-stream", Body: sse, HoldAfter: strings.Index(string(sse), "[DONE]") - 10})
	ctx, cancel := context.WithCancel(context.Background())
	req := chatReq()
	req.Stream = true
	st, err := e.traced.CreateChatCompletionStream(ctx, req)
	require.NoError(t, err)
	_, err = st.Recv()
	require.NoError(t, err)
	cancel()
	for err == nil {
		_, err = st.Recv()
	}
	require.ErrorIs(t, err, context.Canceled)
	st.Close()
	s := e.spans(t, 1)[0]
	assert.Equal(t, agenttrace.StatusFailed, s.Status)
	assert.Equal(t, "context.Canceled", s.Error.Type)
}

// A non-streamed call whose context is cancelled while the server holds
// the answer back: the SDK returns the context's error, as the
// uninstrumented client does, and the span fails with it.
func TestCancelledBeforeResponse(t *testing.T) {
	e := newEnv(t, llmhttptest.Reply{Body: fixture(t, "openai_chat.json"), Delay: time.Minute}, llmhttptest.Reply{Body: fixture(t, "openai_chat.json"), Delay: time.Minute})
	call := func(c *openai.Client, srv *llmhttptest.Server) error {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		go func() {
			for len(srv.Requests()) == 0 && ctx.Err() == nil {
				time.Sleep(time.Millisecond)
			}
			cancel() // once the server has the request
		}()
		_, err := c.CreateChatCompletion(ctx, chatReq())
		return err
	}
	got := call(e.traced, e.srv)
	want := call(e.bare, e.bareSrv)
	require.ErrorIs(t, got, context.Canceled)
	require.ErrorIs(t, want, context.Canceled)
	s := e.spans(t, 1)[0]
	assert.Equal(t, agenttrace.StatusFailed, s.Status)
	assert.Equal(t, "context.Canceled", s.Error.Type)
	assert.Nil(t, s.Usage)
}

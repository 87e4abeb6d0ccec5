package genai_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"google.golang.org/genai"

	"github.com/agenttrace/agenttrace"
	"github.com/agenttrace/agenttrace/agenttracetest"
	"github.com/agenttrace/agenttrace/instrument/llmhttp"
	"github.com/agenttrace/agenttrace/instrument/llmhttp/llmhttptest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func fixture(t testing.TB, name string) []byte {
	return llmhttptest.Fixture(t, filepath.Join("..", "llmhttp", "testdata", name))
}

const model = "gemini-2.5-flash"

type env struct {
	tr           *agenttrace.Tracer
	rec          *agenttracetest.Recorder
	srv, bareSrv *llmhttptest.Server
	traced, bare *genai.Client
}

func newEnv(t *testing.T, retry *genai.HTTPRetryOptions, script ...llmhttptest.Reply) *env {
	e := &env{}
	e.tr, e.rec = agenttracetest.New(t)
	e.srv = llmhttptest.NewServer(t, script...)
	e.bareSrv = llmhttptest.NewServer(t, script...)
	mk := func(url string, hc *http.Client) *genai.Client {
		c, err := genai.NewClient(context.Background(), &genai.ClientConfig{
			APIKey: "AIza-SECRET", Backend: genai.BackendGeminiAPI, HTTPClient: hc,
			HTTPOptions: genai.HTTPOptions{BaseURL: url, RetryOptions: retry},
		})
		require.NoError(t, err)
		return c
	}
	e.traced = mk(e.srv.URL, &http.Client{Transport: llmhttp.NewTransport(e.tr, nil, llmhttp.WithCapture(llmhttp.CaptureFull))})
	e.bare = mk(e.bareSrv.URL, &http.Client{})
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
		assert.NotContains(t, string(sp.Payload)+string(sp.Result), "SECRET")
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

// strip drops what differs between two clients' identical responses: the
// HTTP headers (Date).
func strip(r *genai.GenerateContentResponse) string {
	if r == nil {
		return ""
	}
	c := *r
	c.SDKHTTPResponse = nil
	b, _ := json.Marshal(c)
	return string(b)
}

func TestGenerateContent(t *testing.T) {
	e := newEnv(t, nil, llmhttptest.Reply{Body: fixture(t, "gemini_response.json")})
	cfg := &genai.GenerateContentConfig{SystemInstruction: genai.NewContentFromText("Be a physicist.", genai.RoleUser), Temperature: genai.Ptr[float32](0.5)}
	ctx, agent := e.tr.Start(context.Background(), agenttrace.TypeAgent, nil)
	got, err := e.traced.Models.GenerateContent(ctx, model, genai.Text("Why is the sky blue?"), cfg)
	require.NoError(t, err)
	want, err := e.bare.Models.GenerateContent(context.Background(), model, genai.Text("Why is the sky blue?"), cfg)
	require.NoError(t, err)
	assert.Equal(t, strip(want), strip(got))
	agent.End()

	s := e.spans(t, 1)[0]
	assert.Equal(t, agent.ID(), s.ParentID)
	assert.Equal(t, agenttrace.StatusComplete, s.Status)
	assert.Equal(t, "generate_content gemini-2.5-flash", s.Name)
	req, r := request(t, s), result(t, s)
	assert.Equal(t, "gcp.gemini", req.Provider)
	assert.Equal(t, "Be a physicist.", req.System)
	assert.Equal(t, "Why is the sky blue?", req.Messages[0].Content)
	assert.InDelta(t, 0.5, *req.Settings.Temperature, 1e-6)
	assert.Equal(t, got.Text(), r.Text)
	assert.Equal(t, "STOP", r.FinishReason)
	assert.Equal(t, agenttrace.Usage{PromptTokens: 10, CompletionTokens: 109, TotalTokens: 119, Details: map[string]int64{agenttrace.UsageCacheRead: 4, agenttrace.UsageReasoning: 100}}, *s.Usage)
	assert.InDelta(t, (6*0.30+4*0.03+109*2.50)/1e6, s.Cost.Total, 1e-12)
	// The API key travels in a header, never on the span.
	assert.Equal(t, "AIza-SECRET", e.srv.Requests()[0].Header.Get("x-goog-api-key"))
}

func stream(c *genai.Client, ctx context.Context, cfg *genai.GenerateContentConfig, stop int) ([]string, error) {
	var out []string
	for r, err := range c.Models.GenerateContentStream(ctx, model, genai.Text("Weather in Oslo?"), cfg) {
		if err != nil {
			return out, err
		}
		out = append(out, strip(r))
		if stop > 0 && len(out) == stop {
			break
		}
	}
	return out, nil
}

func TestGenerateContentStream(t *testing.T) {
	e := newEnv(t, nil, llmhttptest.Reply{ContentType: "text/event-stream", Body: fixture(t, "gemini_stream.sse"), Chunk: 30})
	got, err := stream(e.traced, context.Background(), nil, 0)
	require.NoError(t, err)
	want, err := stream(e.bare, context.Background(), nil, 0)
	require.NoError(t, err)
	assert.Equal(t, want, got)
	assert.Equal(t, "alt=sse", e.srv.Requests()[0].RawQuery)
	s := e.spans(t, 1)[0]
	assert.Equal(t, agenttrace.StatusComplete, s.Status)
	assert.True(t, request(t, s).Stream)
	r := result(t, s)
	assert.Equal(t, "The end.", r.Text)
	require.Len(t, r.ToolCalls, 1)
	assert.Equal(t, "get_weather", r.ToolCalls[0].Name)
	assert.False(t, s.FirstTokenAt.IsZero())
	assert.Equal(t, agenttrace.Usage{PromptTokens: 8, CompletionTokens: 42, TotalTokens: 50, Details: map[string]int64{agenttrace.UsageReasoning: 30}}, *s.Usage)
	assert.Equal(t, "STOP", r.FinishReason)
	require.NotNil(t, s.Cost)
	assert.InDelta(t, (8*0.30+42*2.50)/1e6, s.Cost.Total, 1e-12, "thoughts bill as output")
}

func TestTwoTurnFunctionCall(t *testing.T) {
	call := `{"candidates":[{"content":{"parts":[{"functionCall":{"name":"get_weather","args":{"city":"Oslo"}}}],"role":"model"},"finishReason":"STOP","index":0}],"usageMetadata":{"promptTokenCount":20,"candidatesTokenCount":5,"totalTokenCount":25},"modelVersion":"gemini-2.5-flash"}`
	answer := `{"candidates":[{"content":{"parts":[{"text":"It is 3°C in Oslo."}],"role":"model"},"finishReason":"STOP","index":0}],"usageMetadata":{"promptTokenCount":40,"candidatesTokenCount":8,"totalTokenCount":48},"modelVersion":"gemini-2.5-flash"}`
	e := newEnv(t, nil, llmhttptest.Reply{Body: []byte(call)}, llmhttptest.Reply{Body: []byte(answer)})
	cfg := &genai.GenerateContentConfig{Tools: []*genai.Tool{{FunctionDeclarations: []*genai.FunctionDeclaration{{
		Name: "get_weather", Description: "weather", Parameters: &genai.Schema{Type: genai.TypeObject, Properties: map[string]*genai.Schema{"city": {Type: genai.TypeString}}},
	}}}}}
	run := func(c *genai.Client, ctx context.Context) (string, error) {
		history := genai.Text("Weather in Oslo?")
		first, err := c.Models.GenerateContent(ctx, model, history, cfg)
		if err != nil {
			return "", err
		}
		fc := first.FunctionCalls()[0]
		history = append(history, first.Candidates[0].Content,
			genai.NewContentFromParts([]*genai.Part{genai.NewPartFromFunctionResponse(fc.Name, map[string]any{"temp": "3°C"})}, genai.RoleUser))
		second, err := c.Models.GenerateContent(ctx, model, history, cfg)
		if err != nil {
			return "", err
		}
		return second.Text(), nil
	}
	ctx, agent := e.tr.Start(context.Background(), agenttrace.TypeAgent, nil)
	got, err := run(e.traced, ctx)
	require.NoError(t, err)
	want, err := run(e.bare, context.Background())
	require.NoError(t, err)
	assert.Equal(t, want, got)
	agent.End()
	spans := e.spans(t, 2)
	for i, u := range []agenttrace.Usage{{PromptTokens: 20, CompletionTokens: 5, TotalTokens: 25}, {PromptTokens: 40, CompletionTokens: 8, TotalTokens: 48}} {
		s := spans[i]
		assert.Equal(t, agent.ID(), s.ParentID)
		assert.Equal(t, agenttrace.StatusComplete, s.Status)
		assert.Equal(t, u, *s.Usage)
		assert.Equal(t, "STOP", result(t, s).FinishReason)
		require.NotNil(t, s.Cost)
		assert.InDelta(t, (float64(u.PromptTokens)*0.30+float64(u.CompletionTokens)*2.50)/1e6, s.Cost.Total, 1e-12)
	}
	r1 := result(t, spans[0])
	require.Len(t, r1.ToolCalls, 1)
	assert.JSONEq(t, `{"city":"Oslo"}`, string(r1.ToolCalls[0].Arguments))
	req1 := request(t, spans[0])
	require.Len(t, req1.Tools, 1)
	assert.Equal(t, "get_weather", req1.Tools[0].Name)
	req2 := request(t, spans[1])
	require.Len(t, req2.Messages, 3)
	assert.Equal(t, "assistant", req2.Messages[1].Role)
	assert.Equal(t, "get_weather", req2.Messages[1].ToolCalls[0].Name)
	assert.Equal(t, "tool", req2.Messages[2].Role)
	assert.JSONEq(t, `{"temp":"3°C"}`, req2.Messages[2].Content)
	assert.Equal(t, got, result(t, spans[1]).Text)
}

func TestAPIErrors(t *testing.T) {
	for _, c := range []struct {
		status int
		body   string
		typ    string
	}{
		{400, `{"error":{"code":400,"message":"API key not valid.","status":"INVALID_ARGUMENT"}}`, "INVALID_ARGUMENT"},
		{429, string(fixture(t, "gemini_error_429.json")), "RESOURCE_EXHAUSTED"},
		{500, `{"error":{"code":500,"message":"An internal error has occurred.","status":"INTERNAL"}}`, "INTERNAL"},
	} {
		t.Run(fmt.Sprint(c.status), func(t *testing.T) {
			e := newEnv(t, nil, llmhttptest.Reply{Status: c.status, Body: []byte(c.body)})
			_, err := e.traced.Models.GenerateContent(context.Background(), model, genai.Text("hi"), nil)
			var got genai.APIError
			require.ErrorAs(t, err, &got)
			_, err = e.bare.Models.GenerateContent(context.Background(), model, genai.Text("hi"), nil)
			var want genai.APIError
			require.ErrorAs(t, err, &want)
			assert.Equal(t, want, got)
			s := e.spans(t, 1)[0]
			assert.Equal(t, agenttrace.StatusFailed, s.Status)
			assert.Equal(t, c.typ, s.Error.Type)
			assert.Contains(t, s.Error.Message, got.Message)
		})
	}
}

func TestRetryThenSuccess(t *testing.T) {
	retry := &genai.HTTPRetryOptions{Attempts: genai.Ptr[int32](3), InitialDelay: genai.Ptr(0.001), MaxDelay: genai.Ptr(0.01)}
	e := newEnv(t, retry,
		llmhttptest.Reply{Status: 503, Body: []byte(`{"error":{"code":503,"message":"The model is overloaded.","status":"UNAVAILABLE"}}`)},
		llmhttptest.Reply{Status: 429, Body: fixture(t, "gemini_error_429.json")},
		llmhttptest.Reply{Body: fixture(t, "gemini_response.json")})
	got, err := e.traced.Models.GenerateContent(context.Background(), model, genai.Text("hi"), nil)
	require.NoError(t, err)
	want, err := e.bare.Models.GenerateContent(context.Background(), model, genai.Text("hi"), nil)
	require.NoError(t, err)
	assert.Equal(t, strip(want), strip(got))
	require.Len(t, e.srv.Requests(), 3)
	s := e.spans(t, 1)[0]
	assert.Equal(t, agenttrace.StatusComplete, s.Status)
	r := result(t, s)
	assert.EqualValues(t, 3, r.Metadata["attempts"])
	errs := r.Metadata["attempt_errors"].([]any)
	assert.Contains(t, errs[0], "503 UNAVAILABLE")
	assert.Contains(t, errs[1], "429 RESOURCE_EXHAUSTED")
}

func TestAutomaticContinuation(t *testing.T) {
	hop1 := llmhttptest.Reply{ContentType: "text/event-stream", Body: llmhttptest.Fixture(t, "testdata/continuation_hop1.sse")}
	hop2 := llmhttptest.Reply{ContentType: "text/event-stream", Body: llmhttptest.Fixture(t, "testdata/continuation_hop2.sse")}
	e := newEnv(t, nil, hop1, hop2)
	got, err := stream(e.traced, context.Background(), nil, 0)
	require.NoError(t, err)
	want, err := stream(e.bare, context.Background(), nil, 0)
	require.NoError(t, err)
	assert.Equal(t, want, got)
	reqs := e.srv.Requests()
	require.Len(t, reqs, 2, "the SDK continued the stream")
	assert.Contains(t, string(reqs[1].Body), `"continuationToken":"dG9rZW4tMQ=="`)

	s := e.spans(t, 1)[0]
	assert.Equal(t, agenttrace.StatusComplete, s.Status, "one logical stream, one span")
	r := result(t, s)
	assert.Equal(t, "Once upon a time, the end.", r.Text)
	assert.Equal(t, "STOP", r.FinishReason)
	assert.EqualValues(t, 2, r.Metadata["requests"])
	assert.Equal(t, agenttrace.Usage{PromptTokens: 13, CompletionTokens: 9, TotalTokens: 22}, *s.Usage, "usage summed over the requests")
}

func TestStreamCut(t *testing.T) {
	sse := fixture(t, "gemini_stream.sse")
	e := newEnv(t, nil, llmhttptest.Reply{ContentType: "text/event-stream", Body: sse, CutAfter: strings.Index(string(sse), `" end."`)})
	got, err := stream(e.traced, context.Background(), &genai.GenerateContentConfig{AutomaticContinuation: genai.Ptr(false)}, 0)
	want, wantErr := stream(e.bare, context.Background(), &genai.GenerateContentConfig{AutomaticContinuation: genai.Ptr(false)}, 0)
	assert.Equal(t, want, got)
	assert.Equal(t, wantErr != nil, err != nil)
	s := e.spans(t, 1)[0]
	assert.Equal(t, agenttrace.StatusFailed, s.Status)
	assert.Equal(t, "stream_cut", s.Error.Type)
}

func TestStreamClosedEarly(t *testing.T) {
	sse := fixture(t, "gemini_stream.sse")
	e := newEnv(t, nil, llmhttptest.Reply{ContentType: "text/event-stream", Body: sse, HoldAfter: strings.Index(string(sse), `" end."`)})
	got, err := stream(e.traced, context.Background(), nil, 1) // the caller breaks out of the loop
	require.NoError(t, err)
	require.Len(t, got, 1)
	s := e.spans(t, 1)[0]
	assert.Equal(t, agenttrace.StatusFailed, s.Status)
	assert.Equal(t, "stream_closed_early", s.Error.Type)
}

func TestStreamContextCancelled(t *testing.T) {
	sse := fixture(t, "gemini_stream.sse")
	e := newEnv(t, nil, llmhttptest.Reply{ContentType: "text/event-stream", Body: sse, HoldAfter: strings.Index(string(sse), `" end."`)})
	ctx, cancel := context.WithCancel(context.Background())
	n := 0
	var err error
	for _, err = range e.traced.Models.GenerateContentStream(ctx, model, genai.Text("hi"), &genai.GenerateContentConfig{AutomaticContinuation: genai.Ptr(false)}) {
		if err != nil {
			break
		}
		n++
		if n == 1 {
			cancel()
		}
	}
	cancel()
	s := e.spans(t, 1)[0]
	assert.Equal(t, agenttrace.StatusFailed, s.Status)
	assert.Equal(t, "context.Canceled", s.Error.Type)
}

// A non-streamed call whose context is cancelled while the server holds
// the answer back: the SDK returns the context's error, as the
// uninstrumented client does, and the span fails with it.
func TestCancelledBeforeResponse(t *testing.T) {
	slow := llmhttptest.Reply{Body: fixture(t, "gemini_response.json"), Delay: time.Minute}
	e := newEnv(t, nil, slow)
	call := func(c *genai.Client, srv *llmhttptest.Server) error {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		go func() {
			for len(srv.Requests()) == 0 && ctx.Err() == nil {
				time.Sleep(time.Millisecond)
			}
			cancel() // once the server has the request
		}()
		_, err := c.Models.GenerateContent(ctx, model, genai.Text("Hi"), nil)
		return err
	}
	require.ErrorIs(t, call(e.bare, e.bareSrv), context.Canceled)
	require.ErrorIs(t, call(e.traced, e.srv), context.Canceled)
	s := e.spans(t, 1)[0]
	assert.Equal(t, agenttrace.StatusFailed, s.Status)
	assert.Equal(t, "context.Canceled", s.Error.Type)
	assert.Nil(t, s.Usage)
}

package llmhttp_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agenttrace/agenttrace"
	"github.com/agenttrace/agenttrace/agenttracetest"
	"github.com/agenttrace/agenttrace/instrument/llmhttp"
)

// partialServer sends the first half of the fixture and then either cuts
// the connection (cut) or waits for the client to go away.
func partialServer(t *testing.T, body []byte, cut bool) *httptest.Server {
	half := bytes.Index(body, []byte("content_block_stop"))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = w.Write(body[:half])
		w.(http.Flusher).Flush()
		if cut {
			conn, _, err := http.NewResponseController(w).Hijack()
			if err == nil {
				_ = conn.Close()
			}
			return
		}
		select {
		case <-r.Context().Done():
		case <-time.After(30 * time.Second):
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestStreamCut(t *testing.T) {
	tr, rec := agenttracetest.New(t)
	body := fixture(t, "anthropic_stream_tool.sse")
	srv := partialServer(t, body, true)
	_, got, err := post(t, newClient(tr, llmhttp.WithCapture(llmhttp.CaptureFull)), context.Background(), srv.URL+"/v1/messages", anthropicReq)
	require.Error(t, err, "the caller sees the cut")
	assert.True(t, bytes.HasPrefix(body, got))
	s := llmSpans(t, tr, rec, 1)[0]
	assert.Equal(t, agenttrace.StatusFailed, s.Status)
	assert.Equal(t, "stream_cut", s.Error.Type)
	assert.Contains(t, s.Error.Message, "connection cut")
	r := decodeResult(t, s)
	assert.Equal(t, "Okay, let's check the weather for San Francisco, CA:", r.Text, "what arrived is kept")
	assert.False(t, s.FirstTokenAt.IsZero())
}

func TestStreamClosedEarly(t *testing.T) {
	tr, rec := agenttracetest.New(t)
	body := fixture(t, "anthropic_stream_tool.sse")
	srv := partialServer(t, body, false)
	req, err := http.NewRequest(http.MethodPost, srv.URL+"/v1/messages", strings.NewReader(anthropicReq))
	require.NoError(t, err)
	res, err := newClient(tr).Do(req)
	require.NoError(t, err)
	buf := make([]byte, 100)
	_, err = io.ReadFull(res.Body, buf)
	require.NoError(t, err)
	require.NoError(t, res.Body.Close())
	s := llmSpans(t, tr, rec, 1)[0]
	assert.Equal(t, agenttrace.StatusFailed, s.Status)
	assert.Equal(t, "stream_closed_early", s.Error.Type)
	assert.Contains(t, s.Error.Message, "closed by the caller")
}

func TestStreamContextCancelled(t *testing.T) {
	tr, rec := agenttracetest.New(t)
	body := fixture(t, "anthropic_stream_tool.sse")
	srv := partialServer(t, body, false)
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL+"/v1/messages", strings.NewReader(anthropicReq))
	require.NoError(t, err)
	res, err := newClient(tr).Do(req)
	require.NoError(t, err)
	buf := make([]byte, 100)
	_, err = io.ReadFull(res.Body, buf)
	require.NoError(t, err)
	cancel()
	_, err = io.ReadAll(res.Body)
	require.ErrorIs(t, err, context.Canceled)
	s := llmSpans(t, tr, rec, 1)[0]
	_ = res.Body.Close()
	assert.Equal(t, agenttrace.StatusFailed, s.Status)
	assert.Equal(t, "context.Canceled", s.Error.Type)
}

func TestContextCancelledWithoutRead(t *testing.T) {
	// A caller that abandons the body: the context's end ends the span.
	tr, rec := agenttracetest.New(t)
	body := fixture(t, "anthropic_stream_tool.sse")
	srv := partialServer(t, body, false)
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL+"/v1/messages", strings.NewReader(anthropicReq))
	require.NoError(t, err)
	res, err := newClient(tr).Do(req)
	require.NoError(t, err)
	cancel()
	s := llmSpans(t, tr, rec, 1)[0]
	assert.Equal(t, "context.Canceled", s.Error.Type)
	_ = res.Body.Close()
}

// TestRetryIsOneSpan drives the middleware as openai-go and
// anthropic-sdk-go do: one call per attempt, X-Stainless-Retry-Count set,
// the error body of a retried attempt closed unread.
func TestRetryIsOneSpan(t *testing.T) {
	var n atomic.Int32
	ok := fixture(t, "anthropic_message.json")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		switch n.Add(1) {
		case 1:
			w.WriteHeader(529)
			_, _ = w.Write([]byte(`{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`))
		case 2:
			w.WriteHeader(500)
			_, _ = w.Write([]byte(`{"type":"error","error":{"type":"api_error","message":"Internal server error"}}`))
		default:
			_, _ = w.Write(ok)
		}
	}))
	defer srv.Close()
	tr, rec := agenttracetest.New(t)
	mw := llmhttp.Middleware(tr)
	ctx, parent := tr.Start(context.Background(), agenttrace.TypeAgent, nil)
	var last []byte
	for attempt := 0; attempt < 3; attempt++ {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL+"/v1/messages", strings.NewReader(`{"model":"claude-sonnet-4-5","max_tokens":5,"messages":[]}`))
		require.NoError(t, err)
		req.Header.Set("X-Stainless-Retry-Count", string(rune('0'+attempt)))
		res, err := mw(req, http.DefaultTransport.RoundTrip)
		require.NoError(t, err)
		if res.StatusCode >= 400 {
			require.NoError(t, res.Body.Close()) // retried: closed unread
			continue
		}
		last, err = io.ReadAll(res.Body)
		require.NoError(t, err)
		require.NoError(t, res.Body.Close())
	}
	eq(t, ok, last)
	parent.End()
	s := llmSpans(t, tr, rec, 1)[0]
	assert.Equal(t, agenttrace.StatusComplete, s.Status)
	assert.Equal(t, parent.ID(), s.ParentID)
	r := decodeResult(t, s)
	assert.EqualValues(t, 3, r.Metadata["attempts"])
	errs, _ := r.Metadata["attempt_errors"].([]any)
	require.Len(t, errs, 2)
	assert.Contains(t, errs[0], "529 overloaded_error")
	assert.Contains(t, errs[1], "500 api_error")
	assert.NotNil(t, s.Usage)
}

// TestRetriesExhausted: the SDK reads the last error body, which ends the
// span at once.
func TestRetriesExhausted(t *testing.T) {
	srv := serve(t, 503, "application/json", []byte(`{"error":{"message":"busy","type":"server_error"}}`), 0)
	tr, rec := agenttracetest.New(t)
	mw := llmhttp.Middleware(tr, llmhttp.WithRetryWait(time.Hour))
	for attempt := 0; attempt < 2; attempt++ {
		req, err := http.NewRequest(http.MethodPost, srv.URL+"/v1/chat/completions", strings.NewReader(`{"model":"gpt-4o","messages":[]}`))
		require.NoError(t, err)
		req.Header.Set("X-Stainless-Retry-Count", string(rune('0'+attempt)))
		res, err := mw(req, http.DefaultTransport.RoundTrip)
		require.NoError(t, err)
		if attempt == 0 {
			require.NoError(t, res.Body.Close())
			continue
		}
		_, err = io.ReadAll(res.Body)
		require.NoError(t, err)
		require.NoError(t, res.Body.Close())
	}
	s := llmSpans(t, tr, rec, 1)[0]
	assert.Equal(t, agenttrace.StatusFailed, s.Status)
	assert.Equal(t, "server_error", s.Error.Type)
	assert.EqualValues(t, 2, decodeResult(t, s).Metadata["attempts"])
}

// TestRetryNeverCame: a failed attempt the SDK might retry ends as failed
// when no retry comes within the wait.
func TestRetryNeverCame(t *testing.T) {
	srv := serve(t, 429, "application/json", []byte(`{"error":{"message":"slow down","type":"rate_limit_exceeded"}}`), 0)
	tr, rec := agenttracetest.New(t)
	mw := llmhttp.Middleware(tr, llmhttp.WithRetryWait(50*time.Millisecond))
	req, err := http.NewRequest(http.MethodPost, srv.URL+"/v1/chat/completions", strings.NewReader(`{"model":"gpt-4o","messages":[]}`))
	require.NoError(t, err)
	req.Header.Set("X-Stainless-Retry-Count", "0")
	res, err := mw(req, http.DefaultTransport.RoundTrip)
	require.NoError(t, err)
	require.NoError(t, res.Body.Close())
	s := llmSpans(t, tr, rec, 1)[0]
	assert.Equal(t, agenttrace.StatusFailed, s.Status)
	assert.Equal(t, "rate_limit_exceeded", s.Error.Type)
}

func TestTransportErrorFailsSpan(t *testing.T) {
	tr, rec := agenttracetest.New(t)
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close() // nothing listens any more
	_, _, err := post(t, newClient(tr), context.Background(), url+"/v1/chat/completions?key=SECRET-KEY", `{"model":"gpt-4o","messages":[]}`)
	require.Error(t, err)
	s := llmSpans(t, tr, rec, 1)[0]
	assert.Equal(t, agenttrace.StatusFailed, s.Status)
	assert.NotContains(t, s.Error.Message, "SECRET-KEY", "query strings (API keys) stay off spans")
	var se *llmhttp.StreamError
	assert.False(t, errors.As(err, &se), "the caller's error is the transport's own")
}

func TestPassThrough(t *testing.T) {
	tr, rec := agenttracetest.New(t)
	srv := serve(t, 200, "application/json", []byte(`{"data":[]}`), 0)
	res, err := newClient(tr).Get(srv.URL + "/v1/models")
	require.NoError(t, err)
	b, _ := io.ReadAll(res.Body)
	_ = res.Body.Close()
	assert.Equal(t, `{"data":[]}`, string(b))
	_, _, err = post(t, newClient(tr), context.Background(), srv.URL+"/v1/files", `{}`)
	require.NoError(t, err)
	require.NoError(t, tr.Flush(context.Background()))
	assert.Empty(t, rec.SpansOfType(agenttrace.TypeLLM))
}

type attemptKey struct{}

// TestRetryAfterAttemptCancelled: as anthropic-sdk-go does, each attempt
// has a context of its own and the SDK cancels the failed attempt's context
// before it sends the retry. The retry goes out with its own context (and
// the call's span) and resumes the call: one span, not a failed one and a
// second one.
func TestRetryAfterAttemptCancelled(t *testing.T) {
	var n atomic.Int32
	ok := fixture(t, "anthropic_message.json")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		if n.Add(1) == 1 {
			w.WriteHeader(529)
			_, _ = w.Write([]byte(`{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`))
			return
		}
		_, _ = w.Write(ok)
	}))
	defer srv.Close()
	tr, rec := agenttracetest.New(t)
	mw := llmhttp.Middleware(tr)
	root, parent := tr.Start(context.Background(), agenttrace.TypeAgent, nil)
	var last []byte
	for attempt := 0; attempt < 2; attempt++ {
		ctx, cancel := context.WithCancel(context.WithValue(root, attemptKey{}, attempt))
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL+"/v1/messages", strings.NewReader(`{"model":"claude-sonnet-4-5","max_tokens":5,"messages":[]}`))
		require.NoError(t, err)
		req.Header.Set("X-Stainless-Retry-Count", string(rune('0'+attempt)))
		res, err := mw(req, func(out *http.Request) (*http.Response, error) {
			assert.Equal(t, attempt, out.Context().Value(attemptKey{}), "each attempt goes out with its own context")
			assert.NoError(t, out.Context().Err())
			assert.NotNil(t, agenttrace.SpanFromContext(out.Context()))
			return http.DefaultTransport.RoundTrip(out)
		})
		require.NoError(t, err)
		if res.StatusCode >= 400 {
			require.NoError(t, res.Body.Close()) // retried: closed unread
			cancel()                             // the SDK releases the attempt's deadline
			// Time for a wait that gave up on the cancelled context to end
			// the span before the retry comes.
			time.Sleep(100 * time.Millisecond)
			continue
		}
		last, err = io.ReadAll(res.Body)
		require.NoError(t, err)
		require.NoError(t, res.Body.Close())
		cancel()
	}
	eq(t, ok, last)
	parent.End()
	spans := llmSpans(t, tr, rec, 1)
	s := spans[0]
	assert.Equal(t, agenttrace.StatusComplete, s.Status)
	assert.Equal(t, parent.ID(), s.ParentID)
	assert.EqualValues(t, 2, decodeResult(t, s).Metadata["attempts"])
}

// TestCancelledWhileWaitingForRetry: the caller gives up while the SDK
// waits to retry (the attempt's context ends, no retry comes): the span
// fails within the grace period, not after the whole retry wait, stamped
// at the failed attempt.
func TestCancelledWhileWaitingForRetry(t *testing.T) {
	srv := serve(t, 429, "application/json", []byte(`{"error":{"message":"slow down","type":"rate_limit_exceeded"}}`), 0)
	tr, rec := agenttracetest.New(t)
	mw := llmhttp.Middleware(tr, llmhttp.WithRetryWait(time.Hour))
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL+"/v1/chat/completions", strings.NewReader(`{"model":"gpt-4o","messages":[]}`))
	require.NoError(t, err)
	req.Header.Set("X-Stainless-Retry-Count", "0")
	res, err := mw(req, http.DefaultTransport.RoundTrip)
	require.NoError(t, err)
	require.NoError(t, res.Body.Close())
	failedAt := time.Now()
	cancel()
	s := llmSpans(t, tr, rec, 1)[0] // waits 10 s at most
	assert.Equal(t, agenttrace.StatusFailed, s.Status)
	assert.Equal(t, "rate_limit_exceeded", s.Error.Type)
	assert.False(t, s.EndedAt.After(failedAt), "the span ends when the attempt failed")
}

package llmhttp_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/agenttrace/agenttrace"
	"github.com/agenttrace/agenttrace/agenttracetest"
	"github.com/agenttrace/agenttrace/instrument/llmhttp"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func fixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	require.NoError(t, err)
	return b
}

// serve returns a server answering every request with status, content
// type and body, written in pieces of chunk bytes (0: at once) with a
// flush after each.
func serve(t testing.TB, status int, contentType string, body []byte, chunk int) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", contentType)
		w.WriteHeader(status)
		if chunk <= 0 {
			_, _ = w.Write(body)
			return
		}
		for b := body; len(b) > 0; {
			n := min(chunk, len(b))
			_, _ = w.Write(b[:n])
			w.(http.Flusher).Flush()
			b = b[n:]
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

// post sends body to url+path through an instrumented client and returns
// the response body the caller read.
func post(t testing.TB, client *http.Client, ctx context.Context, url, body string) (int, []byte, error) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	res, err := client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	return res.StatusCode, b, err
}

// llmSpans flushes the tracer and returns its finished llm spans.
func llmSpans(t testing.TB, tr *agenttrace.Tracer, rec *agenttracetest.Recorder, n int) []agenttrace.SpanData {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, rec.WaitFor(ctx, func(r *agenttracetest.Recorder) bool {
		_ = tr.Flush(ctx)
		k := 0
		for _, s := range r.SpansOfType(agenttrace.TypeLLM) {
			if s.Status.Finished() {
				k++
			}
		}
		return k >= n
	}))
	spans := rec.SpansOfType(agenttrace.TypeLLM)
	require.Len(t, spans, n)
	return spans
}

type result struct {
	agenttrace.LLMResponse
}

func decodeResult(t testing.TB, s agenttrace.SpanData) agenttrace.LLMResponse {
	t.Helper()
	var r agenttrace.LLMResponse
	require.NoError(t, json.Unmarshal(s.Result, &r), string(s.Result))
	return r
}

func decodeRequest(t testing.TB, s agenttrace.SpanData) agenttrace.LLMRequest {
	t.Helper()
	var r agenttrace.LLMRequest
	require.NoError(t, json.Unmarshal(s.Payload, &r), string(s.Payload))
	return r
}

func newClient(tr *agenttrace.Tracer, opts ...llmhttp.Option) *http.Client {
	return &http.Client{Transport: llmhttp.NewTransport(tr, nil, opts...)}
}

func eq(t testing.TB, want, got []byte) {
	t.Helper()
	if !bytes.Equal(want, got) {
		t.Fatalf("the caller read different bytes than the server sent:\nwant %q\ngot  %q", want, got)
	}
}

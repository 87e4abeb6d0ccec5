package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"go.uber.org/goleak"
	"google.golang.org/protobuf/proto"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func clearOTLPEnv(t *testing.T) {
	for _, k := range []string{"OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"} {
		t.Setenv(k, "")
	}
}

func TestRunStdout(t *testing.T) {
	clearOTLPEnv(t)
	var out bytes.Buffer
	require.NoError(t, run(context.Background(), &out))
	s := out.String()

	// stdouttrace writes one JSON object per span.
	dec := json.NewDecoder(strings.NewReader(s))
	type span struct {
		Name        string
		SpanContext struct{ TraceID, SpanID string }
		Parent      struct{ SpanID string }
		Attributes  []struct {
			Key   string
			Value struct{ Value any }
		}
	}
	spans := map[string]span{}
	for {
		var sp span
		if err := dec.Decode(&sp); err != nil {
			break
		}
		spans[sp.Name] = sp
	}
	for _, name := range []string{"POST /support", "invoke_agent support-bot", "chat gpt-4o", "execute_tool lookup_order", "GET /orders/A1"} {
		require.Contains(t, spans, name)
	}
	req := spans["POST /support"]
	for name, sp := range spans {
		assert.Equal(t, req.SpanContext.TraceID, sp.SpanContext.TraceID, name)
	}
	assert.Equal(t, spans["execute_tool lookup_order"].SpanContext.SpanID, spans["GET /orders/A1"].Parent.SpanID)
	assert.NotContains(t, s, "gen_ai.input.messages", "content capture is off by default")
	assert.Contains(t, s, "\notel: exported to stdout: trace "+req.SpanContext.TraceID+", 4 agent spans, 307 tokens; answer: Order A1 has shipped.\n")
}

func TestRunOTLP(t *testing.T) {
	clearOTLPEnv(t)
	var mu sync.Mutex
	var names []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var req collectortrace.ExportTraceServiceRequest
		if err := proto.Unmarshal(b, &req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		mu.Lock()
		for _, rs := range req.GetResourceSpans() {
			for _, ss := range rs.GetScopeSpans() {
				for _, s := range ss.GetSpans() {
					names = append(names, s.GetName())
				}
			}
		}
		mu.Unlock()
	}))
	defer srv.Close()
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", srv.URL)
	t.Setenv("OTEL_EXPORTER_OTLP_COMPRESSION", "none")
	t.Setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "true")
	var out bytes.Buffer
	require.NoError(t, run(context.Background(), &out))
	assert.Contains(t, out.String(), "otel: exported to OTLP/HTTP at "+srv.URL)
	mu.Lock()
	defer mu.Unlock()
	assert.ElementsMatch(t, []string{"POST /support", "invoke_agent support-bot", "invoke_agent support-bot",
		"chat gpt-4o", "chat gpt-4o", "execute_tool lookup_order", "GET /orders/A1"}, names)
}

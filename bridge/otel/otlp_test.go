package otelbridge_test

import (
	"compress/gzip"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/agenttrace/agenttrace"
	otelbridge "github.com/agenttrace/agenttrace/bridge/otel"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"
)

// receiver is an in-process OTLP/HTTP trace endpoint that decodes what it
// is sent.
type receiver struct {
	mu    sync.Mutex
	spans []*tracepb.Span
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/v1/traces" || r.Header.Get("Content-Type") != "application/x-protobuf" {
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	var body io.Reader = r.Body
	if r.Header.Get("Content-Encoding") == "gzip" {
		gz, err := gzip.NewReader(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		body = gz
	}
	b, err := io.ReadAll(body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var req collectortrace.ExportTraceServiceRequest
	if err := proto.Unmarshal(b, &req); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	rc.mu.Lock()
	for _, rs := range req.GetResourceSpans() {
		for _, ss := range rs.GetScopeSpans() {
			rc.spans = append(rc.spans, ss.GetSpans()...)
		}
	}
	rc.mu.Unlock()
	out, _ := proto.Marshal(&collectortrace.ExportTraceServiceResponse{})
	w.Header().Set("Content-Type", "application/x-protobuf")
	_, _ = w.Write(out)
}

func wireAttrs(kvs []*commonpb.KeyValue) map[string]*commonpb.AnyValue {
	m := map[string]*commonpb.AnyValue{}
	for _, kv := range kvs {
		m[kv.GetKey()] = kv.GetValue()
	}
	return m
}

func TestOTLPRoundTrip(t *testing.T) {
	rc := &receiver{}
	srv := httptest.NewServer(rc)
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	otlp, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpointURL(srv.URL+"/v1/traces"), otlptracehttp.WithCompression(otlptracehttp.GzipCompression))
	require.NoError(t, err)
	tp := sdktrace.NewTracerProvider(sdktrace.WithIDGenerator(otelbridge.IDGenerator()), sdktrace.WithBatcher(otlp))
	tr, err := agenttrace.New(
		agenttrace.WithAgent("support-bot", "1.4.0"),
		agenttrace.WithExporter(otelbridge.NewExporter(tp, otelbridge.WithContentCapture(true))),
	)
	require.NoError(t, err)
	inst := runAgent(ctx, tr)
	require.NoError(t, tr.Shutdown(ctx)) // flushes the provider too
	require.NoError(t, tp.Shutdown(ctx))

	rc.mu.Lock()
	defer rc.mu.Unlock()
	require.Len(t, rc.spans, 7)
	spans := map[string]*tracepb.Span{}
	for _, s := range rc.spans {
		spans[s.GetName()] = s
	}
	tid := otelbridge.TraceID(inst.ID())
	root := spans["invoke_agent support-bot"]
	require.NotNil(t, root)
	rootSID := otelbridge.SpanID(inst.ID())
	assert.Equal(t, rootSID[:], root.GetSpanId())
	assert.Empty(t, root.GetParentSpanId())
	assert.Equal(t, tracepb.Span_SPAN_KIND_INTERNAL, root.GetKind())
	ra := wireAttrs(root.GetAttributes())
	assert.Equal(t, "support-bot", ra["gen_ai.agent.name"].GetStringValue())
	assert.Equal(t, int64(300), ra["gen_ai.usage.input_tokens"].GetIntValue())
	assert.Equal(t, "u-42", ra["user.id"].GetStringValue())
	assert.Equal(t, uint64(inst.Data().StartedAt.UnixNano()), root.GetStartTimeUnixNano())
	assert.Equal(t, uint64(inst.Data().EndedAt.UnixNano()), root.GetEndTimeUnixNano())

	for name, s := range spans {
		assert.Equal(t, tid[:], s.GetTraceId(), name)
	}
	agent := spans["invoke_agent planner"]
	assert.Equal(t, rootSID[:], agent.GetParentSpanId())

	chat := spans["chat claude-sonnet-4"]
	assert.Equal(t, tracepb.Span_SPAN_KIND_CLIENT, chat.GetKind())
	assert.Equal(t, agent.GetSpanId(), chat.GetParentSpanId())
	ca := wireAttrs(chat.GetAttributes())
	assert.Equal(t, "chat", ca["gen_ai.operation.name"].GetStringValue())
	assert.Equal(t, "anthropic", ca["gen_ai.provider.name"].GetStringValue())
	assert.Equal(t, "claude-sonnet-4-20250514", ca["gen_ai.response.model"].GetStringValue())
	assert.Equal(t, int64(12), ca["gen_ai.usage.output_tokens"].GetIntValue())
	assert.Equal(t, "tool_use", ca["gen_ai.response.finish_reasons"].GetArrayValue().GetValues()[0].GetStringValue())
	assert.Greater(t, ca["gen_ai.response.time_to_first_chunk"].GetDoubleValue(), 0.0)
	assert.JSONEq(t, `[{"role":"user","parts":[{"type":"text","content":"where is my order?"}]}]`, ca["gen_ai.input.messages"].GetStringValue())
	id, err := agenttrace.ParseID(ca["agenttrace.span.id"].GetStringValue())
	require.NoError(t, err)
	sid := otelbridge.SpanID(id)
	assert.Equal(t, sid[:], chat.GetSpanId())
	assert.Greater(t, chat.GetEndTimeUnixNano(), chat.GetStartTimeUnixNano())

	tool := spans["execute_tool lookup_order"]
	ta := wireAttrs(tool.GetAttributes())
	assert.Equal(t, "toolu_1", ta["gen_ai.tool.call.id"].GetStringValue())
	assert.JSONEq(t, `{"status":"shipped"}`, ta["gen_ai.tool.call.result"].GetStringValue())

	refund := spans["execute_tool refund"]
	assert.Equal(t, tracepb.Status_STATUS_CODE_ERROR, refund.GetStatus().GetCode())
	assert.Equal(t, "refund service down", refund.GetStatus().GetMessage())
	assert.Equal(t, "error", wireAttrs(refund.GetAttributes())["error.type"].GetStringValue())

	esc := spans["execute_tool escalate"]
	assert.Equal(t, tracepb.Status_STATUS_CODE_UNSET, esc.GetStatus().GetCode())
	assert.Equal(t, "cancelled", wireAttrs(esc.GetAttributes())["agenttrace.span.status"].GetStringValue())

	chain := wireAttrs(spans["chain"].GetAttributes())
	assert.Equal(t, int64(3), chain["agenttrace.payload.inputs.n"].GetIntValue())
	assert.Len(t, chain["agenttrace.payload.inputs.tags"].GetArrayValue().GetValues(), 2)
}

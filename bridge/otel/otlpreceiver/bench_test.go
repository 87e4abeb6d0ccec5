package otlpreceiver_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/agenttrace/agenttrace"
	"github.com/agenttrace/agenttrace/bridge/otel/otlpreceiver"
	"github.com/stretchr/testify/require"
	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"
)

// discard is an agenttrace exporter that drops what it is given.
type discard struct{}

func (discard) Name() string                                      { return "discard" }
func (discard) Export(context.Context, []agenttrace.Record) error { return nil }
func (discard) Shutdown(context.Context) error                    { return nil }

func strAttr(k, v string) *commonpb.KeyValue {
	return &commonpb.KeyValue{Key: k, Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: v}}}
}

func intAttr(k string, v int64) *commonpb.KeyValue {
	return &commonpb.KeyValue{Key: k, Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_IntValue{IntValue: v}}}
}

// traceRequest is an export request of one trace: an invoke_agent root and
// n-1 chat spans under it, children first, as an SDK exports them.
func traceRequest(trace uint64, n int) []byte {
	tid := make([]byte, 16)
	binary.BigEndian.PutUint64(tid[8:], trace)
	tid[0] = 1
	sid := func(i int) []byte {
		b := make([]byte, 8)
		binary.BigEndian.PutUint64(b, uint64(i+1))
		return b
	}
	t0 := uint64(time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC).UnixNano())
	spans := make([]*tracepb.Span, 0, n)
	for i := 1; i < n; i++ {
		spans = append(spans, &tracepb.Span{TraceId: tid, SpanId: sid(i), ParentSpanId: sid(0), Name: "chat gpt-4o",
			Kind: tracepb.Span_SPAN_KIND_CLIENT, StartTimeUnixNano: t0 + uint64(i)*1000, EndTimeUnixNano: t0 + uint64(i)*1000 + 500,
			Attributes: []*commonpb.KeyValue{strAttr("gen_ai.operation.name", "chat"), strAttr("gen_ai.provider.name", "openai"),
				strAttr("gen_ai.request.model", "gpt-4o"), intAttr("gen_ai.usage.input_tokens", 120), intAttr("gen_ai.usage.output_tokens", 30)}})
	}
	spans = append(spans, &tracepb.Span{TraceId: tid, SpanId: sid(0), Name: "invoke_agent planner",
		StartTimeUnixNano: t0, EndTimeUnixNano: t0 + uint64(n)*1000,
		Attributes: []*commonpb.KeyValue{strAttr("gen_ai.operation.name", "invoke_agent"), strAttr("gen_ai.agent.name", "planner")}})
	b, _ := proto.Marshal(&collectortrace.ExportTraceServiceRequest{ResourceSpans: []*tracepb.ResourceSpans{{
		ScopeSpans: []*tracepb.ScopeSpans{{Spans: spans}},
	}}})
	return b
}

var (
	bodiesOnce sync.Once
	bodies     [][]byte
)

// BenchmarkReceiver handles export requests of one 100-span GenAI trace
// each (protobuf, uncompressed) into a tracer whose exporter discards:
// the decoding, conversion and mapping cost per span.
//
//	go test ./bridge/otel/otlpreceiver/ -run '^$' -bench Receiver -benchmem
func BenchmarkReceiver(b *testing.B) {
	tr, err := agenttrace.New(agenttrace.WithExporter(discard{}))
	require.NoError(b, err)
	rcv := otlpreceiver.New(tr)
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		require.NoError(b, rcv.Shutdown(ctx))
		require.NoError(b, tr.Shutdown(ctx))
	})
	const n = 100
	bodiesOnce.Do(func() {
		// Distinct traces: more than the processor remembers as recorded
		// (1024), so that a body sent again counts as a new trace.
		bodies = make([][]byte, 2048)
		for i := range bodies {
			bodies[i] = traceRequest(uint64(i+1), n)
		}
	})
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		req := httptest.NewRequest(http.MethodPost, "/v1/traces", bytes.NewReader(bodies[i%len(bodies)]))
		req.Header.Set("Content-Type", "application/x-protobuf")
		w := httptest.NewRecorder()
		rcv.ServeHTTP(w, req)
		if w.Code != http.StatusOK {
			b.Fatalf("status %d", w.Code)
		}
	}
	b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "spans/s")
	b.StopTimer()
	require.Zero(b, rcv.Stats().Dropped, "every span was recorded")
}

package benchmarks

import (
	"context"
	"encoding/json"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/agenttrace/agenttrace"
	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// The operation measured on both sides: start and end one LLM span carrying
// three small fields, through each library's default batching pipeline into
// an exporter that counts and discards.

var llmPayload = agenttrace.LLMRequest{Operation: "chat", Provider: "openai", Model: "gpt-4o"}

var otelAttrs = []attribute.KeyValue{
	attribute.String("gen_ai.operation.name", "chat"),
	attribute.String("gen_ai.provider.name", "openai"),
	attribute.String("gen_ai.request.model", "gpt-4o"),
}

// countingExporter counts spans delivered in their final state.
type countingExporter struct{ spans atomic.Int64 }

func (e *countingExporter) Export(_ context.Context, recs []agenttrace.Record) error {
	n := 0
	for i := range recs {
		if recs[i].Span.Status.Finished() {
			n++
		}
	}
	e.spans.Add(int64(n))
	return nil
}

func (e *countingExporter) Shutdown(context.Context) error { return nil }

// otelCounter counts the spans the OTel BatchSpanProcessor delivers.
type otelCounter struct{ spans atomic.Int64 }

func (e *otelCounter) ExportSpans(_ context.Context, spans []sdktrace.ReadOnlySpan) error {
	e.spans.Add(int64(len(spans)))
	return nil
}

func (e *otelCounter) Shutdown(context.Context) error { return nil }

func newAgenttrace(b *testing.B, exp agenttrace.Exporter, opts ...agenttrace.Option) *agenttrace.Tracer {
	b.Helper()
	tr, err := agenttrace.New(append([]agenttrace.Option{agenttrace.WithExporter(exp)}, opts...)...)
	if err != nil {
		b.Fatal(err)
	}
	return tr
}

func newOTel(exp sdktrace.SpanExporter) (*sdktrace.TracerProvider, trace.Tracer) {
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp))
	return tp, tp.Tracer("bench")
}

func BenchmarkStartEnd(b *testing.B) {
	b.Run("agenttrace", func(b *testing.B) {
		exp := &countingExporter{}
		tr := newAgenttrace(b, exp)
		ctx := context.Background()
		b.ReportAllocs()
		for b.Loop() {
			_, span := tr.Start(ctx, "llm", llmPayload)
			span.End()
		}
		finishAgenttrace(b, tr, exp)
	})
	b.Run("otel", func(b *testing.B) {
		exp := &otelCounter{}
		tp, tracer := newOTel(exp)
		ctx := context.Background()
		b.ReportAllocs()
		for b.Loop() {
			_, span := tracer.Start(ctx, "chat gpt-4o", trace.WithAttributes(otelAttrs...))
			span.End()
		}
		finishOTel(b, tp, exp)
	})
}

func BenchmarkStartEndParallel(b *testing.B) {
	b.Run("agenttrace", func(b *testing.B) {
		exp := &countingExporter{}
		tr := newAgenttrace(b, exp)
		b.ReportAllocs()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			ctx := context.Background()
			for pb.Next() {
				_, span := tr.Start(ctx, "llm", llmPayload)
				span.End()
			}
		})
		b.StopTimer()
		finishAgenttrace(b, tr, exp)
	})
	b.Run("otel", func(b *testing.B) {
		exp := &otelCounter{}
		tp, tracer := newOTel(exp)
		b.ReportAllocs()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			ctx := context.Background()
			for pb.Next() {
				_, span := tracer.Start(ctx, "chat gpt-4o", trace.WithAttributes(otelAttrs...))
				span.End()
			}
		})
		b.StopTimer()
		finishOTel(b, tp, exp)
	})
}

func finishAgenttrace(b *testing.B, tr *agenttrace.Tracer, exp *countingExporter) {
	b.StopTimer()
	if err := tr.Shutdown(context.Background()); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(exp.spans.Load())/float64(b.N), "exported/op")
}

func finishOTel(b *testing.B, tp *sdktrace.TracerProvider, exp *otelCounter) {
	b.StopTimer()
	if err := tp.Shutdown(context.Background()); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(exp.spans.Load())/float64(b.N), "exported/op")
}

// stalledExporter blocks every Export until the benchmark ends.
type stalledExporter struct {
	release chan struct{}
	once    sync.Once
}

func (e *stalledExporter) Export(ctx context.Context, _ []agenttrace.Record) error {
	select {
	case <-e.release:
	case <-ctx.Done():
	}
	return nil
}

func (e *stalledExporter) Shutdown(context.Context) error { return nil }
func (e *stalledExporter) unblock()                       { e.once.Do(func() { close(e.release) }) }

// BenchmarkStartEndStalled measures Start+End while the exporter never
// returns: the cost must stay that of BenchmarkStartEnd and the heap must
// stay bounded by the queue's byte cap (reported as heap-MB, the live heap
// after the loop).
func BenchmarkStartEndStalled(b *testing.B) {
	exp := &stalledExporter{release: make(chan struct{})}
	const maxBytes = 8 << 20
	tr := newAgenttrace(b, exp, agenttrace.WithQueueLimits(agenttrace.DefaultMaxQueueRecords, maxBytes))
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		_, span := tr.Start(ctx, "llm", llmPayload)
		span.End()
	}
	b.StopTimer()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	st := tr.Stats()
	b.ReportMetric(float64(ms.HeapAlloc)/(1<<20), "heap-MB")
	b.ReportMetric(float64(st.Dropped.Total())/float64(st.Recorded), "dropped-frac")
	exp.unblock()
	if err := tr.Shutdown(ctx); err != nil {
		b.Fatal(err)
	}
}

// largeRequest is a realistic llm span payload: a system prompt and a
// conversation of about 6 KB, with a tool offered.
var largeRequest = func() agenttrace.LLMRequest {
	para := "The customer asked about the status of their order and whether the delivery " +
		"address can still be changed; the assistant looked the order up and explained the options. "
	msgs := []agenttrace.Message{{Role: "system", Content: "You are a helpful support agent. Answer briefly and cite the order id.\n" + para}}
	for i := range 16 {
		role := "user"
		if i%2 == 1 {
			role = "assistant"
		}
		msgs = append(msgs, agenttrace.Message{Role: role, Content: para + "\"quoted\" line " + strconv.Itoa(i)})
	}
	return agenttrace.LLMRequest{Operation: "chat", Provider: "openai", Model: "gpt-4o", Messages: msgs,
		Tools: []agenttrace.ToolDefinition{{Name: "lookup_order", Description: "Look an order up by id",
			Parameters: json.RawMessage(`{"type":"object","properties":{"id":{"type":"string"}},"required":["id"]}`)}}}
}()

var largeResponse = agenttrace.LLMResponse{ID: "chatcmpl-1", Model: "gpt-4o-2024-08-06", FinishReason: "stop",
	Text:  "Your order A1 shipped yesterday and arrives on Friday; the address can no longer be changed, but you can redirect it at the carrier's site.",
	Usage: &agenttrace.Usage{PromptTokens: 1520, CompletionTokens: 42}}

// BenchmarkStartEndLarge is BenchmarkStartEnd with a realistic llm span:
// about 6 KB of messages, a result and usage. The OTel side records the
// same content the GenAI way: the messages JSON-encoded into
// gen_ai.input.messages and gen_ai.output.messages, usage and response
// attributes.
//
//	go test ./benchmarks -run '^$' -bench 'BenchmarkStartEndLarge' -benchmem -count 6
func BenchmarkStartEndLarge(b *testing.B) {
	b.Run("agenttrace", func(b *testing.B) {
		exp := &countingExporter{}
		tr := newAgenttrace(b, exp)
		ctx := context.Background()
		b.ReportAllocs()
		for b.Loop() {
			_, span := tr.Start(ctx, "llm", largeRequest)
			span.SetResult(largeResponse)
			span.End()
		}
		finishAgenttrace(b, tr, exp)
	})
	b.Run("otel", func(b *testing.B) {
		exp := &otelCounter{}
		tp, tracer := newOTel(exp)
		ctx := context.Background()
		b.ReportAllocs()
		for b.Loop() {
			_, span := tracer.Start(ctx, "chat gpt-4o", trace.WithAttributes(otelAttrs...))
			in, _ := json.Marshal(largeRequest.Messages)
			tools, _ := json.Marshal(largeRequest.Tools)
			out, _ := json.Marshal([]agenttrace.Message{{Role: "assistant", Content: largeResponse.Text}})
			span.SetAttributes(
				attribute.String("gen_ai.input.messages", string(in)),
				attribute.String("gen_ai.tool.definitions", string(tools)),
				attribute.String("gen_ai.output.messages", string(out)),
				attribute.String("gen_ai.response.id", largeResponse.ID),
				attribute.String("gen_ai.response.model", largeResponse.Model),
				attribute.StringSlice("gen_ai.response.finish_reasons", []string{largeResponse.FinishReason}),
				attribute.Int64("gen_ai.usage.input_tokens", largeResponse.Usage.PromptTokens),
				attribute.Int64("gen_ai.usage.output_tokens", largeResponse.Usage.CompletionTokens),
			)
			span.End()
		}
		finishOTel(b, tp, exp)
	})
}

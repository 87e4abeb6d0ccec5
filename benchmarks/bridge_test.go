package benchmarks

import (
	"context"
	"testing"
	"time"

	"github.com/agenttrace/agenttrace"
	otelbridge "github.com/agenttrace/agenttrace/bridge/otel"
	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// BenchmarkBridge measures the cost per span of an LLM call exported to an
// OpenTelemetry SDK provider (batching into an exporter that counts and
// discards), two ways in the same run:
//
//   - bridge: recorded with agenttrace and re-emitted by the OTel bridge;
//   - native: created directly with the OTel SDK, with the same name, kind
//     and GenAI attributes.
//
// The timer runs until both pipelines have delivered every span (Shutdown),
// so the background work (the agenttrace batcher, the bridge, the SDK's
// batch processor) is counted; the agenttrace queue blocks rather than
// drops, so exported/op stays 1.
//
//	go test ./benchmarks -run '^$' -bench BenchmarkBridge -benchmem
func BenchmarkBridge(b *testing.B) {
	req := agenttrace.LLMRequest{Provider: "openai", Model: "gpt-4o"}
	resp := agenttrace.LLMResponse{Model: "gpt-4o-2024-08-06", FinishReason: "stop",
		Usage: &agenttrace.Usage{PromptTokens: 120, CompletionTokens: 30}}

	b.Run("bridge", func(b *testing.B) {
		exp := &otelCounter{}
		tp := sdktrace.NewTracerProvider(sdktrace.WithIDGenerator(otelbridge.IDGenerator()), sdktrace.WithBatcher(exp, sdktrace.WithBlocking()))
		tr := newAgenttrace(b, otelbridge.NewExporter(tp), agenttrace.WithBlockOnFull(time.Minute))
		ctx := context.Background()
		b.ReportAllocs()
		for b.Loop() {
			_, span := tr.Start(ctx, "llm", req)
			span.SetResult(resp)
			span.End()
		}
		if err := tr.Shutdown(ctx); err != nil {
			b.Fatal(err)
		}
		if err := tp.Shutdown(ctx); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		// The default instance's root span is one more.
		b.ReportMetric(float64(exp.spans.Load()-1)/float64(b.N), "exported/op")
	})

	b.Run("native", func(b *testing.B) {
		exp := &otelCounter{}
		tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp, sdktrace.WithBlocking()))
		tracer := tp.Tracer("bench")
		ctx := context.Background()
		b.ReportAllocs()
		for b.Loop() {
			_, span := tracer.Start(ctx, "chat gpt-4o", trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(
				otelbridge.KeyOperationName.String("chat"),
				otelbridge.KeyProviderName.String("openai"),
				otelbridge.KeyRequestModel.String("gpt-4o"),
			))
			span.SetAttributes(
				otelbridge.KeyResponseModel.String("gpt-4o-2024-08-06"),
				otelbridge.KeyResponseFinishReasons.StringSlice([]string{"stop"}),
				otelbridge.KeyUsageInputTokens.Int(120),
				otelbridge.KeyUsageOutputTokens.Int(30),
				attribute.Int("agenttrace.usage.total_tokens", 150),
			)
			span.End()
		}
		if err := tp.Shutdown(ctx); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		b.ReportMetric(float64(exp.spans.Load())/float64(b.N), "exported/op")
	})
}

// BenchmarkCaptureParent measures what otelbridge.CaptureParent adds to
// Start+End of an LLM span (through the default pipeline into an exporter
// that counts and discards). Sub-benchmarks: off (no extractor, inside an
// OTel span: nothing runs but one nil check), no-otel-span (CaptureParent,
// no OTel span in the context: nothing allocated) and captured
// (CaptureParent inside an OTel span: the TraceParent is recorded, one
// 32-byte allocation).
//
//	go test ./benchmarks -run '^$' -bench BenchmarkCaptureParent -benchmem
func BenchmarkCaptureParent(b *testing.B) {
	sc := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: trace.TraceID{1, 2, 3}, SpanID: trace.SpanID{4, 5, 6}, TraceFlags: trace.FlagsSampled,
	})
	inSpan := trace.ContextWithSpanContext(context.Background(), sc)
	for _, bc := range []struct {
		name string
		ctx  context.Context
		opts []agenttrace.Option
	}{
		{"off", inSpan, nil},
		{"no-otel-span", context.Background(), []agenttrace.Option{otelbridge.CaptureParent()}},
		{"captured", inSpan, []agenttrace.Option{otelbridge.CaptureParent()}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			exp := &countingExporter{}
			tr := newAgenttrace(b, exp, bc.opts...)
			b.ReportAllocs()
			for b.Loop() {
				_, span := tr.Start(bc.ctx, "llm", llmPayload)
				span.End()
			}
			finishAgenttrace(b, tr, exp)
		})
	}
}

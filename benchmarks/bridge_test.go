package benchmarks

import (
	"bytes"
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
//   - bridge-large: the same with the realistic payloads of
//     BenchmarkStartEndLarge (about 6 KB of messages), content capture off
//     as by default, so that the OTel span has the same attributes;
//   - recording: the agenttrace half alone, into an exporter that counts
//     and discards;
//   - native: created directly with the OTel SDK, with the same name, kind
//     and GenAI attributes.
//
// The timer runs until both pipelines have delivered every span (Shutdown),
// so the background work (the agenttrace batcher, the bridge, the SDK's
// batch processor) is counted, and so are its allocations; cpu-ns/op is the
// process's CPU time per span, which a busy machine disturbs less than the
// wall time of work spread over goroutines; the agenttrace
// queue blocks rather than drops, so exported/op stays 1. (The loop is a
// b.N loop: b.Loop would stop the timer before Shutdown and leave the
// background work still queued at the end out of the measurement.)
//
//	go test ./benchmarks -run '^$' -bench BenchmarkBridge -benchmem
func BenchmarkBridge(b *testing.B) {
	req := agenttrace.LLMRequest{Provider: "openai", Model: "gpt-4o"}
	resp := agenttrace.LLMResponse{Model: "gpt-4o-2024-08-06", FinishReason: "stop",
		Usage: &agenttrace.Usage{PromptTokens: 120, CompletionTokens: 30}}

	// record records b.N LLM spans with tr and shuts it down, then stop
	// (the OTel provider's Shutdown, if any); exported counts the spans
	// that reached the end of the pipeline, less extra.
	record := func(b *testing.B, tr *agenttrace.Tracer, req agenttrace.LLMRequest, resp agenttrace.LLMResponse,
		stop func(context.Context) error, exported func() int64, extra int64) {
		ctx := context.Background()
		b.ReportAllocs()
		b.ResetTimer()
		cpu0 := cpuTime()
		for range b.N {
			_, span := tr.Start(ctx, "llm", req)
			span.SetResult(resp)
			span.End()
		}
		if err := tr.Shutdown(ctx); err != nil {
			b.Fatal(err)
		}
		if err := stop(ctx); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		b.ReportMetric(float64((cpuTime()-cpu0).Nanoseconds())/float64(b.N), "cpu-ns/op")
		b.ReportMetric(float64(exported()-extra)/float64(b.N), "exported/op")
	}
	bridge := func(b *testing.B, req agenttrace.LLMRequest, resp agenttrace.LLMResponse, opts ...otelbridge.Option) {
		exp := &otelCounter{}
		tp := sdktrace.NewTracerProvider(sdktrace.WithIDGenerator(otelbridge.IDGenerator()), sdktrace.WithBatcher(exp, sdktrace.WithBlocking()))
		tr := newAgenttrace(b, otelbridge.NewExporter(tp, opts...), agenttrace.WithBlockOnFull(time.Minute))
		// The default instance's root span is one more.
		record(b, tr, req, resp, tp.Shutdown, exp.spans.Load, 1)
	}
	b.Run("bridge", func(b *testing.B) { bridge(b, req, resp) })
	// bridge-implied adds the 4 attributes the OTel span already says
	// (otelbridge.WithImpliedAttributes): 12 in all.
	b.Run("bridge-implied", func(b *testing.B) { bridge(b, req, resp, otelbridge.WithImpliedAttributes()) })
	// bridge-large is the realistic LLM span of BenchmarkStartEndLarge
	// (about 6 KB of messages): with content capture off, as by default,
	// its OTel span has the same attributes as native's, and the bridge
	// reads the mapped fields past the messages.
	b.Run("bridge-large", func(b *testing.B) { bridge(b, largeRequest, largeResponse) })

	// recording is the agenttrace half of bridge alone: the same spans,
	// recorded the same way, into an exporter that counts and discards.
	// bridge costs about recording + native + the conversion between them.
	b.Run("recording", func(b *testing.B) {
		exp := &countingExporter{}
		tr := newAgenttrace(b, exp, agenttrace.WithBlockOnFull(time.Minute))
		record(b, tr, req, resp, func(context.Context) error { return nil }, exp.spans.Load, 0)
	})

	b.Run("native", func(b *testing.B) {
		exp := &otelCounter{}
		tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp, sdktrace.WithBlocking()))
		tracer := tp.Tracer("bench")
		ctx := context.Background()
		b.ReportAllocs()
		b.ResetTimer()
		cpu0 := cpuTime()
		for range b.N {
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
		b.ReportMetric(float64((cpuTime()-cpu0).Nanoseconds())/float64(b.N), "cpu-ns/op")
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

// recordCapture keeps copies of the records it is given.
type recordCapture struct{ recs []agenttrace.Record }

func (c *recordCapture) Export(_ context.Context, recs []agenttrace.Record) error {
	for _, r := range recs {
		r.Span.Payload = bytes.Clone(r.Span.Payload)
		r.Span.Result = bytes.Clone(r.Span.Result)
		if r.Instance != nil {
			inst := *r.Instance
			r.Instance = &inst
		}
		c.recs = append(c.recs, r)
	}
	return nil
}

func (c *recordCapture) Shutdown(context.Context) error { return nil }

// BenchmarkBridgeExport measures the bridge's own share of BenchmarkBridge:
// the conversion of one finished llm record (as the agenttrace pipeline
// delivers it) into an OTel span, against the native span of
// BenchmarkBridge, both on the caller's goroutine into a synchronous
// (sdktrace.WithSyncer) discarding exporter, so that no queue or goroutine
// hand-off blurs the comparison.
//
//	go test ./benchmarks -run '^$' -bench BenchmarkBridgeExport -benchmem
func BenchmarkBridgeExport(b *testing.B) {
	ctx := context.Background()
	capture := &recordCapture{}
	tr := newAgenttrace(b, capture)
	_, span := tr.Start(ctx, "llm", agenttrace.LLMRequest{Provider: "openai", Model: "gpt-4o"})
	span.SetResult(agenttrace.LLMResponse{Model: "gpt-4o-2024-08-06", FinishReason: "stop",
		Usage: &agenttrace.Usage{PromptTokens: 120, CompletionTokens: 30}})
	span.End()
	if err := tr.Shutdown(ctx); err != nil {
		b.Fatal(err)
	}
	var start, llm []agenttrace.Record
	for _, r := range capture.recs {
		switch {
		case r.Kind == agenttrace.InstanceStarted:
			start = append(start, r)
		case r.Span.Type == agenttrace.TypeLLM && r.Span.Status.Finished():
			r.Kind = agenttrace.SpanStarted // delivered finished, as coalesced
			llm = append(llm, r)
		}
	}
	if len(start) != 1 || len(llm) != 1 {
		b.Fatalf("captured %d instance starts and %d finished llm spans, want 1 and 1", len(start), len(llm))
	}

	bridgeExport := func(b *testing.B, opts ...otelbridge.Option) {
		exp := &otelCounter{}
		tp := sdktrace.NewTracerProvider(sdktrace.WithIDGenerator(otelbridge.IDGenerator()), sdktrace.WithSyncer(exp))
		bridge := otelbridge.NewExporter(tp, opts...)
		if err := bridge.Export(ctx, start); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			if err := bridge.Export(ctx, llm); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(exp.spans.Load())/float64(b.N), "exported/op")
	}
	b.Run("bridge", func(b *testing.B) { bridgeExport(b) })
	b.Run("bridge-implied", func(b *testing.B) { bridgeExport(b, otelbridge.WithImpliedAttributes()) })

	b.Run("native", func(b *testing.B) {
		exp := &otelCounter{}
		tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
		tracer := tp.Tracer("bench")
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
		b.ReportMetric(float64(exp.spans.Load())/float64(b.N), "exported/op")
	})

	// native-same is the span the bridge emits, made directly: the same
	// name, kind, 8 attributes, all given at start, and both timestamps.
	// bridge minus native-same is the bridge's own work; native-same minus
	// native is what the SDK charges for the recorded timestamps and for
	// agenttrace.span.id in place of agenttrace.usage.total_tokens.
	b.Run("native-same", func(b *testing.B) {
		exp := &otelCounter{}
		tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
		tracer := tp.Tracer("bench")
		d := &llm[0].Span
		spanID := d.ID.String()
		b.ReportAllocs()
		for b.Loop() {
			_, span := tracer.Start(ctx, "chat gpt-4o", trace.WithSpanKind(trace.SpanKindClient),
				trace.WithTimestamp(d.CreatedAt), trace.WithAttributes(
					otelbridge.KeySpanID.String(spanID),
					otelbridge.KeyOperationName.String("chat"),
					otelbridge.KeyProviderName.String("openai"),
					otelbridge.KeyRequestModel.String("gpt-4o"),
					otelbridge.KeyResponseModel.String("gpt-4o-2024-08-06"),
					otelbridge.KeyResponseFinishReasons.StringSlice([]string{"stop"}),
					otelbridge.KeyUsageInputTokens.Int(120),
					otelbridge.KeyUsageOutputTokens.Int(30),
				))
			span.End(trace.WithTimestamp(d.EndedAt))
		}
		b.ReportMetric(float64(exp.spans.Load())/float64(b.N), "exported/op")
	})
}

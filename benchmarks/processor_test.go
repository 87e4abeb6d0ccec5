package benchmarks

import (
	"context"
	"testing"
	"time"

	"github.com/agenttrace/agenttrace"
	otelbridge "github.com/agenttrace/agenttrace/bridge/otel"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// BenchmarkSpanProcessor measures what otelbridge.NewSpanProcessor costs per
// OTel trace of three GenAI spans (invoke_agent > chat, execute_tool), ended
// children first as real instrumentation does, in the same run:
//
//   - otel: the provider with a no-op span processor (the baseline);
//   - processor: with the bridge's processor, each trace replayed as an
//     instance of its own;
//   - joined: with the processor, the trace started inside an agenttrace
//     span (as an SDK call inside a traced run), replayed into it.
//
// The agenttrace tracer exports to a counter that discards and blocks
// rather than drops; the timer includes its Shutdown.
//
//	go test ./benchmarks -run '^$' -bench BenchmarkSpanProcessor -benchmem
func BenchmarkSpanProcessor(b *testing.B) {
	trace3 := func(ctx context.Context, tr trace.Tracer) {
		ctx, agent := tr.Start(ctx, "invoke_agent a", trace.WithAttributes(otelbridge.KeyOperationName.String("invoke_agent")))
		_, chat := tr.Start(ctx, "chat m", trace.WithAttributes(otelbridge.KeyOperationName.String("chat"),
			otelbridge.KeyRequestModel.String("m"), otelbridge.KeyUsageInputTokens.Int(120), otelbridge.KeyUsageOutputTokens.Int(30)))
		chat.End()
		_, tool := tr.Start(ctx, "execute_tool t", trace.WithAttributes(otelbridge.KeyOperationName.String("execute_tool"), otelbridge.KeyToolName.String("t")))
		tool.End()
		agent.End()
	}
	for _, mode := range []string{"otel", "processor", "joined"} {
		b.Run(mode, func(b *testing.B) {
			rec := &countingExporter{}
			at := newAgenttrace(b, rec, agenttrace.WithBlockOnFull(time.Minute))
			var opts []sdktrace.TracerProviderOption
			if mode != "otel" {
				opts = append(opts, sdktrace.WithSpanProcessor(otelbridge.NewSpanProcessor(at)))
			}
			tp := sdktrace.NewTracerProvider(opts...)
			tr := tp.Tracer("bench")
			ctx := context.Background()
			var inst *agenttrace.Instance
			if mode == "joined" {
				var span *agenttrace.Span
				ctx, inst = at.StartInstance(ctx)
				ctx, span = at.Start(ctx, agenttrace.TypeAgent, nil)
				defer span.End()
			}
			b.ReportAllocs()
			for b.Loop() {
				trace3(ctx, tr)
			}
			if inst != nil {
				inst.End()
			}
			if err := tp.Shutdown(ctx); err != nil {
				b.Fatal(err)
			}
			if err := at.Shutdown(ctx); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			b.ReportMetric(float64(rec.spans.Load())/float64(b.N), "spans/op")
		})
	}
}

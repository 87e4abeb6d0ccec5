package otelbridge_test

import (
	"context"
	"fmt"
	"slices"

	"github.com/agenttrace/agenttrace"
	otelbridge "github.com/agenttrace/agenttrace/bridge/otel"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

// An agent run exported through an OpenTelemetry SDK provider. The
// provider would normally batch to an OTLP exporter; here an in-memory one
// shows what arrives.
func ExampleNewExporter() {
	spans := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithIDGenerator(otelbridge.IDGenerator()), // deterministic IDs
		sdktrace.WithSyncer(spans),
	)
	tracer, _ := agenttrace.New(
		agenttrace.WithAgent("support-bot", "1.0.0"),
		agenttrace.WithExporter(otelbridge.NewExporter(tp, otelbridge.WithContentCapture(false))),
	)

	ctx, run := tracer.StartInstance(context.Background(), agenttrace.WithUserID("u-42"))
	_, llm := tracer.Start(ctx, "llm", agenttrace.LLMRequest{Provider: "openai", Model: "gpt-4o"})
	llm.SetResult(agenttrace.LLMResponse{FinishReason: "stop", Usage: &agenttrace.Usage{PromptTokens: 10, CompletionTokens: 3}})
	llm.End()
	_, tool := tracer.Start(ctx, "tool", agenttrace.ToolInput{Name: "search", CallID: "call_1"})
	tool.End()
	run.End()
	_ = tracer.Shutdown(context.Background()) // also flushes tp

	var lines []string
	for _, s := range spans.GetSpans() {
		lines = append(lines, fmt.Sprintf("%-24s kind=%-8s same trace as run: %v",
			s.Name, s.SpanKind, s.SpanContext.TraceID() == otelbridge.TraceID(run.ID())))
	}
	slices.Sort(lines)
	for _, l := range lines {
		fmt.Println(l)
	}
	_ = tp.Shutdown(context.Background())
	// Output:
	// chat gpt-4o              kind=client   same trace as run: true
	// execute_tool search      kind=internal same trace as run: true
	// invoke_agent support-bot kind=internal same trace as run: true
}

// Reading back, from the OTel spans a run became, which agenttrace span
// each one is: the attributes the OTel span already implies are left out,
// and IdentityOf puts them back.
func ExampleIdentityOf() {
	spans := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithIDGenerator(otelbridge.IDGenerator()),
		sdktrace.WithSpanProcessor(spans),
	)
	tracer, _ := agenttrace.New(agenttrace.WithExporter(otelbridge.NewExporter(tp)))

	ctx, run := tracer.StartInstance(context.Background())
	_, llm := tracer.Start(ctx, "llm", agenttrace.LLMRequest{Model: "gpt-4o"})
	llm.End()
	_, tool := tracer.StartPending(ctx, "tool", agenttrace.ToolInput{Name: "search"})
	tool.Cancel("not needed")
	run.End()
	_ = tracer.Shutdown(context.Background())

	var lines []string
	for _, s := range spans.Ended() {
		if id, ok := otelbridge.IdentityOf(s); ok {
			lines = append(lines, fmt.Sprintf("%-19s type=%-4s status=%-9s run=%v span=%v", s.Name(),
				id.Type, id.Status, id.InstanceID == run.ID(), id.SpanID == llm.ID() || id.SpanID == tool.ID()))
		}
	}
	slices.Sort(lines)
	for _, l := range lines {
		fmt.Println(l)
	}
	_ = tp.Shutdown(context.Background())
	// Output:
	// chat gpt-4o         type=llm  status=complete  run=true span=true
	// execute_tool search type=tool status=cancelled run=true span=true
}

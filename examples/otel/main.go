// Command otel traces a simulated support agent with agenttrace and exports
// it through the OpenTelemetry SDK, with the GenAI semantic conventions: an
// HTTP request span of the application's own, the agent run inside it
// (invoke_agent), two LLM calls (chat) and a tool call (execute_tool) whose
// outgoing HTTP call is an OTel span nested under it.
//
//	go run ./examples/otel
//	OTEL_EXPORTER_OTLP_ENDPOINT=http://localhost:4318 go run ./examples/otel
//
// Spans go to standard output (stdouttrace) unless OTEL_EXPORTER_OTLP_ENDPOINT
// or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is set, then to that OTLP/HTTP
// endpoint (otlptracehttp reads the other OTEL_EXPORTER_OTLP_* variables
// too). Message content is recorded only when
// OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"time"

	"github.com/agenttrace/agenttrace"
	otelbridge "github.com/agenttrace/agenttrace/bridge/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/exporters/stdout/stdouttrace"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

func main() {
	if err := run(context.Background(), os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "otel:", err)
		os.Exit(1)
	}
}

// newSpanExporter picks the OTel exporter from the environment.
func newSpanExporter(ctx context.Context, w io.Writer) (sdktrace.SpanExporter, string, error) {
	for _, env := range []string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT"} {
		if url := os.Getenv(env); url != "" {
			exp, err := otlptracehttp.New(ctx)
			return exp, "OTLP/HTTP at " + url, err
		}
	}
	exp, err := stdouttrace.New(stdouttrace.WithWriter(w), stdouttrace.WithPrettyPrint())
	return exp, "stdout", err
}

// run traces one agent run through an OTel SDK provider and writes a
// summary line (and, by default, the spans) to w.
func run(ctx context.Context, w io.Writer) error {
	spanExp, desc, err := newSpanExporter(ctx, w)
	if err != nil {
		return err
	}
	// The application's provider: never the global one. IDGenerator gives
	// the bridged spans IDs derived from their agenttrace IDs.
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithIDGenerator(otelbridge.IDGenerator()),
		sdktrace.WithBatcher(spanExp),
		sdktrace.WithResource(resource.NewSchemaless(attribute.String("service.name", "support-service"))),
	)
	defer func() { _ = tp.Shutdown(context.WithoutCancel(ctx)) }()

	content, _ := strconv.ParseBool(os.Getenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"))
	tracer, err := agenttrace.New(
		otelbridge.CaptureParent(), // runs started inside an OTel span join its trace
		agenttrace.WithAgent("support-bot", "1.4.0"),
		agenttrace.WithExporter(otelbridge.NewExporter(tp, otelbridge.WithContentCapture(content))),
	)
	if err != nil {
		return err
	}

	// The request the agent serves, traced by the application with OTel.
	app := tp.Tracer("example/app")
	reqCtx, req := app.Start(ctx, "POST /support", trace.WithSpanKind(trace.SpanKindServer))
	ctx, inst := tracer.StartInstance(reqCtx, agenttrace.WithUserID("u-42"), agenttrace.WithChannel("web"))
	answer, runErr := supportAgent(ctx, tracer, app)
	if runErr != nil {
		inst.Fail(runErr)
	} else {
		inst.End()
	}
	req.End()

	// Shutdown exports what is queued; the bridge then flushes tp.
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := tracer.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := tp.Shutdown(sctx); err != nil {
		return fmt.Errorf("provider shutdown: %w", err)
	}
	sum := inst.Summary()
	fmt.Fprintf(w, "\notel: exported to %s: trace %s, %d agent spans, %d tokens; answer: %s\n",
		desc, req.SpanContext().TraceID(), sum.Spans.Total, sum.Usage.TotalTokens, answer)
	return runErr
}

// supportAgent is the simulated agent: plan, look the order up, answer.
func supportAgent(ctx context.Context, tracer *agenttrace.Tracer, app trace.Tracer) (string, error) {
	ctx, agent := tracer.Start(ctx, "agent", agenttrace.AgentInput{Name: "support-bot", Input: "Where is order A1?"})
	defer agent.End()
	msgs := []agenttrace.Message{{Role: "user", Content: "Where is order A1?"}}

	_, plan := tracer.Start(ctx, "llm", agenttrace.LLMRequest{Provider: "openai", Model: "gpt-4o", System: "You are a support agent.", Messages: msgs})
	call := agenttrace.ToolCall{ID: "call_1", Name: "lookup_order", Arguments: json.RawMessage(`{"order":"A1"}`)}
	plan.SetResult(agenttrace.LLMResponse{
		ID: "chatcmpl-1", Model: "gpt-4o-2024-08-06", ToolCalls: []agenttrace.ToolCall{call}, FinishReason: "tool_calls",
		Usage: &agenttrace.Usage{PromptTokens: 120, CompletionTokens: 18}, Cost: &agenttrace.Cost{Total: 0.0005},
	})
	plan.End()

	tctx, tool := tracer.Start(ctx, "tool", agenttrace.ToolInput{Name: call.Name, CallID: call.ID, Arguments: call.Arguments})
	status := lookupOrder(otelbridge.ContextWithSpan(tctx), app)
	tool.SetResult(agenttrace.ToolOutput{Output: map[string]string{"status": status}})
	tool.End()

	msgs = append(msgs,
		agenttrace.Message{Role: "assistant", ToolCalls: []agenttrace.ToolCall{call}},
		agenttrace.Message{Role: "tool", ToolCallID: call.ID, Content: `{"status":"` + status + `"}`})
	_, answer := tracer.Start(ctx, "llm", agenttrace.LLMRequest{Provider: "openai", Model: "gpt-4o", Messages: msgs, Stream: true})
	answer.MarkFirstToken()
	text := "Order A1 has " + status + "."
	answer.SetResult(agenttrace.LLMResponse{Model: "gpt-4o-2024-08-06", Text: text, FinishReason: "stop",
		Usage: &agenttrace.Usage{PromptTokens: 160, CompletionTokens: 9}})
	answer.End()
	agent.SetResult(agenttrace.AgentOutput{Output: text, Turns: 2})
	return text, nil
}

// lookupOrder stands for a call to an order service, traced by OTel
// instrumentation: its span nests under the tool span through ctx.
func lookupOrder(ctx context.Context, app trace.Tracer) string {
	_, span := app.Start(ctx, "GET /orders/A1", trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(attribute.Int("http.response.status_code", 200)))
	defer span.End()
	return "shipped"
}

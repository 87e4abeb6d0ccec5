package agenttrace_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/agenttrace/agenttrace"
)

// incomingKey is where a (made-up) middleware keeps the trace context of
// the request being served.
type incomingKey struct{}

// A parent extractor captures the caller's trace context at every start,
// so that exporters can place the run inside the caller's trace. The
// OpenTelemetry bridge provides one (otelbridge.CaptureParent); any other
// tracing system can provide its own.
func ExampleWithParentExtractor() {
	extract := func(ctx context.Context) (agenttrace.TraceParent, bool) {
		tp, ok := ctx.Value(incomingKey{}).(agenttrace.TraceParent)
		return tp, ok
	}
	tracer, _ := agenttrace.New(agenttrace.WithParentExtractor(extract))
	defer tracer.Shutdown(context.Background())

	req := agenttrace.TraceParent{
		TraceID: [16]byte{0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36},
		SpanID:  [8]byte{0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7},
		Flags:   1,
	}
	ctx := context.WithValue(context.Background(), incomingKey{}, req)
	ctx, run := tracer.StartInstance(ctx)
	_, span := tracer.Start(ctx, "llm", nil)
	span.End()
	run.End()
	fmt.Println(run.Data().TraceParent)
	fmt.Println(span.Data().TraceParent)
	// Output:
	// 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01
	// 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01
}

// Work recorded elsewhere (a log, another tracing system) is replayed with
// its own times: WithStartTime at the start, then ActivateAt,
// MarkFirstTokenAt, EndAt and FailAt. Replay span ends before their
// instance's end: ordering follows the recording order.
func ExampleSpan_EndAt() {
	tracer, _ := agenttrace.New()
	defer tracer.Shutdown(context.Background())

	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	ctx, run := tracer.StartInstance(context.Background(), agenttrace.WithInstanceStartTime(t0))

	_, llm := tracer.Start(ctx, "llm", agenttrace.LLMRequest{Model: "gpt-4o", Stream: true},
		agenttrace.WithStartTime(t0.Add(100*time.Millisecond)))
	llm.MarkFirstTokenAt(t0.Add(350 * time.Millisecond))
	llm.EndAt(t0.Add(2 * time.Second))

	_, tool := tracer.StartPending(ctx, "tool", agenttrace.ToolInput{Name: "search"},
		agenttrace.WithStartTime(t0.Add(2*time.Second)))
	tool.ActivateAt(t0.Add(2500 * time.Millisecond))
	tool.FailAt(errors.New("timeout"), t0.Add(4*time.Second))

	run.EndAt(t0.Add(4 * time.Second))

	d, td := llm.Data(), tool.Data()
	fmt.Println("llm:", d.Duration(), "to first token:", d.TimeToFirstToken())
	fmt.Println("tool:", td.Status, td.Duration())
	fmt.Println("run:", run.Summary().Duration(time.Time{}), "to first token:", run.Summary().TimeToFirstToken)
	// Output:
	// llm: 1.9s to first token: 250ms
	// tool: failed 1.5s
	// run: 4s to first token: 250ms
}

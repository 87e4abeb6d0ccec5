package stdout_test

import (
	"context"
	"os"
	"time"

	"github.com/agenttrace/agenttrace"
	"github.com/agenttrace/agenttrace/exporter/stdout"
)

func Example() {
	clock := time.Date(2026, 1, 1, 9, 0, 0, 0, time.UTC)
	tick := func() time.Time { clock = clock.Add(50 * time.Millisecond); return clock }

	tracer, _ := agenttrace.New(
		agenttrace.WithAgent("support-bot", "1.4.0"),
		agenttrace.WithExporter(stdout.New(stdout.WithWriter(os.Stdout), stdout.WithoutIDs())),
		agenttrace.WithClock(tick), // deterministic durations for this example
	)
	ctx, run := tracer.StartInstance(context.Background(), agenttrace.WithChannel("email"))
	ctx, llm := tracer.Start(ctx, "llm", agenttrace.LLMRequest{Provider: "anthropic", Model: "claude-sonnet-4"})
	_, tool := tracer.Start(ctx, "tool", agenttrace.ToolInput{Name: "lookup_order", CallID: "toolu_1"})
	tool.SetResult(agenttrace.ToolOutput{Output: "shipped"})
	tool.End()
	llm.SetResult(agenttrace.LLMResponse{Text: "Your order shipped.", FinishReason: "end_turn",
		Usage: &agenttrace.Usage{PromptTokens: 300, CompletionTokens: 12}})
	llm.End()
	run.End()
	_ = tracer.Shutdown(context.Background())
	// Output:
	// ● support-bot 1.4.0  complete  250ms  spans 2 (2 complete)  tokens 312 (300 in, 12 out)  channel=email
	// └─ llm claude-sonnet-4  complete 150ms  provider=anthropic  tokens 300/12  finish=end_turn
	//    └─ tool lookup_order  complete 50ms  call=toolu_1
}

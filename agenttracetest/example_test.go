package agenttracetest_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/agenttrace/agenttrace"
	"github.com/agenttrace/agenttrace/agenttracetest"
)

func ExampleRecorder() {
	rec := agenttracetest.NewRecorder()
	tracer, _ := agenttrace.New(agenttrace.WithExporter(rec))

	ctx, run := tracer.StartInstance(context.Background())
	ctx, agent := tracer.Start(ctx, "agent", agenttrace.AgentInput{Name: "helper"}, agenttrace.WithName("helper"))
	_, search := tracer.Start(ctx, "tool", agenttrace.ToolInput{Name: "search"}, agenttrace.WithName("search"))
	search.Fail(errors.New("timeout"))
	_, llm := tracer.Start(ctx, "llm", agenttrace.LLMRequest{Model: "gpt-4o"})
	llm.End()
	agent.End()
	run.End()
	_ = tracer.Shutdown(context.Background())

	fmt.Print(rec.Tree(run.ID()))
	fmt.Println("ordering:", rec.CheckOrdering())
	fmt.Println("failed tools:", len(rec.FindSpans(func(s agenttrace.SpanData) bool {
		return s.Type == "tool" && s.Status == agenttrace.StatusFailed
	})))
	// Output:
	// agent helper complete
	//   tool search failed
	//   llm complete
	// ordering: <nil>
	// failed tools: 1
}

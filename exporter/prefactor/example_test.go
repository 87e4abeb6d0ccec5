package prefactor_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/agenttrace/agenttrace"
	"github.com/agenttrace/agenttrace/exporter/prefactor"
	"github.com/agenttrace/agenttrace/exporter/prefactor/prefactortest"
)

// Export an agent run to the Prefactor API; here a fake one from
// prefactortest, as in a test.
func Example() {
	srv := prefactortest.NewServer()
	defer srv.Close()

	exp, err := prefactor.New(prefactor.WithURL(srv.URL), prefactor.WithToken(srv.Token()),
		prefactor.WithAgentID(srv.AgentID()), prefactor.WithEnvironmentID(srv.EnvironmentID()))
	if err != nil {
		fmt.Println(err)
		return
	}
	tracer, err := agenttrace.New(agenttrace.WithExporter(exp), agenttrace.WithAgent("support-bot", "1.4.0"))
	if err != nil {
		fmt.Println(err)
		return
	}

	ctx, run := tracer.StartInstance(context.Background())
	_, span := tracer.Start(ctx, "llm", agenttrace.LLMRequest{Provider: "openai", Model: "gpt-4o"})
	span.SetResult(agenttrace.LLMResponse{Text: "Hello!", Usage: &agenttrace.Usage{PromptTokens: 12, CompletionTokens: 3}})
	span.End()
	run.End()
	if err := tracer.Shutdown(context.Background()); err != nil {
		fmt.Println(err)
	}

	for _, in := range srv.Instances() {
		fmt.Println("instance", in.Status)
		for _, s := range srv.Spans(in.ID) {
			fmt.Println("span", s.SchemaName, s.Status)
		}
	}
	// Output:
	// instance complete
	// span llm complete
}

// Termination: when the API terminates a run, its context is cancelled
// with a cause that says why.
func Example_termination() {
	srv := prefactortest.NewServer()
	defer srv.Close()
	exp, _ := prefactor.New(prefactor.WithURL(srv.URL), prefactor.WithToken(srv.Token()),
		prefactor.WithAgentID(srv.AgentID()), prefactor.WithEnvironmentID(srv.EnvironmentID()))
	tracer, _ := agenttrace.New(agenttrace.WithExporter(exp))
	defer tracer.Shutdown(context.Background())

	ctx, run := tracer.StartInstance(context.Background())
	_ = tracer.Flush(ctx) // the instance is registered
	p, _ := prefactor.PFIDPartition(srv.AgentID())
	_ = srv.Terminate(prefactor.PFID(run.ID(), p), "budget exceeded") // an operator stops the run

	_, span := tracer.Start(ctx, "tool", agenttrace.ToolInput{Name: "search"})
	span.End()
	_ = tracer.Flush(context.Background()) // the span's answer carries the signal

	<-ctx.Done()
	var te *agenttrace.TerminatedError
	if errors.As(context.Cause(ctx), &te) {
		fmt.Println("terminated:", te.Reason)
	}
	run.Fail(context.Cause(ctx))
	// Output:
	// terminated: budget exceeded
}

package einotrace_test

import (
	"context"
	"fmt"
	"strings"

	"github.com/agenttrace/agenttrace"
	"github.com/agenttrace/agenttrace/agenttracetest"
	einotrace "github.com/agenttrace/agenttrace/instrument/eino"
	"github.com/cloudwego/eino/compose"
)

// A chain of two lambdas run with the handler: the chain is the agent span,
// each lambda a chain span under it.
func Example() {
	ctx := context.Background()
	rec := agenttracetest.NewRecorder()
	tracer, _ := agenttrace.New(agenttrace.WithExporter(rec))
	defer tracer.Shutdown(ctx)

	chain := compose.NewChain[string, string]()
	chain.AppendLambda(compose.InvokableLambda(func(_ context.Context, s string) (string, error) {
		return strings.TrimSpace(s), nil
	}), compose.WithNodeName("trim"))
	chain.AppendLambda(compose.InvokableLambda(func(_ context.Context, s string) (string, error) {
		return strings.ToUpper(s), nil
	}), compose.WithNodeName("upper"))
	run, _ := chain.Compile(ctx, compose.WithGraphName("shout"))

	ctx, inst := tracer.StartInstance(ctx)
	out, _ := run.Invoke(ctx, "  hello ", compose.WithCallbacks(einotrace.NewHandler(tracer)))
	inst.End()
	_ = tracer.Flush(ctx)

	fmt.Println(out)
	fmt.Print(rec.Tree(inst.ID()))
	// Output:
	// HELLO
	// agent shout complete
	//   chain trim complete
	//   chain upper complete
}

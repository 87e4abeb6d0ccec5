package langchaingotrace_test

import (
	"context"
	"fmt"

	"github.com/agenttrace/agenttrace"
	"github.com/agenttrace/agenttrace/agenttracetest"
	langchaingotrace "github.com/agenttrace/agenttrace/instrument/langchaingo"
	"github.com/tmc/langchaingo/tools"
)

// A tool that reports its own callbacks (langchaingo's calculator) called
// in an instance: one tool span with its input and output.
func Example() {
	ctx := context.Background()
	rec := agenttracetest.NewRecorder()
	tracer, _ := agenttrace.New(agenttrace.WithExporter(rec))
	defer tracer.Shutdown(ctx)
	h := langchaingotrace.NewHandler(tracer, langchaingotrace.WithContent(true))

	ctx, inst := tracer.StartInstance(ctx)
	out, _ := tools.Calculator{CallbacksHandler: h}.Call(ctx, "6*7")
	inst.End()
	_ = tracer.Flush(ctx)

	fmt.Println(out)
	fmt.Print(rec.Tree(inst.ID()))
	fmt.Println(string(rec.Spans()[0].Result))
	// Output:
	// 42
	// tool complete
	// {"output":42}
}

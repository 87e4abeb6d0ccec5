package mcptrace_test

import (
	"context"
	"fmt"

	"github.com/agenttrace/agenttrace"
	"github.com/agenttrace/agenttrace/agenttracetest"
	mcptrace "github.com/agenttrace/agenttrace/instrument/mcp"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// A client and a server, each with its middleware, over in-memory
// transports: the client's call is a tool span in the caller's instance,
// the server's handling of it a tool span in an instance of its own whose
// trace parent is the client's span (sent in params._meta).
func Example() {
	ctx := context.Background()
	rec := agenttracetest.NewRecorder()
	tracer, _ := agenttrace.New(agenttrace.WithExporter(rec))
	defer tracer.Shutdown(ctx)

	server := mcp.NewServer(&mcp.Implementation{Name: "echo", Version: "1"}, nil)
	mcp.AddTool(server, &mcp.Tool{Name: "echo"}, func(_ context.Context, _ *mcp.CallToolRequest, in map[string]any) (*mcp.CallToolResult, map[string]any, error) {
		return nil, in, nil
	})
	server.AddReceivingMiddleware(mcptrace.ServerMiddleware(tracer))
	client := mcp.NewClient(&mcp.Implementation{Name: "agent", Version: "1"}, nil)
	client.AddSendingMiddleware(mcptrace.ClientMiddleware(tracer))

	st, ct := mcp.NewInMemoryTransports()
	ss, _ := server.Connect(ctx, st, nil)
	cs, _ := client.Connect(ctx, ct, nil)
	ctx, inst := tracer.StartInstance(ctx)
	_, _ = cs.CallTool(ctx, &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"say": "hi"}})
	inst.End()
	_ = cs.Close()
	_ = ss.Wait()
	_ = tracer.Flush(ctx)

	for _, i := range rec.Instances() {
		fmt.Printf("%s(trace parent set: %v)\n", rec.Tree(i.ID), i.TraceParent != nil)
	}
	// Output:
	// tool tools/call echo complete
	// (trace parent set: false)
	// tool tools/call echo complete
	// (trace parent set: true)
}

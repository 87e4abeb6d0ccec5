package anthropictrace_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/agenttrace/agenttrace"
	"github.com/agenttrace/agenttrace/agenttracetest"
	anthropictrace "github.com/agenttrace/agenttrace/instrument/anthropic"
	"github.com/anthropics/anthropic-sdk-go/v2"
	"github.com/anthropics/anthropic-sdk-go/v2/option"
)

// One option on the client traces every call; here against a local fake of
// the Messages API.
func Example() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, answerJSON)
	}))
	defer srv.Close()
	ctx := context.Background()
	rec := agenttracetest.NewRecorder()
	tracer, _ := agenttrace.New(agenttrace.WithExporter(rec))
	defer tracer.Shutdown(ctx)

	client := anthropic.NewClient(option.WithBaseURL(srv.URL), option.WithAPIKey("sk-ant-example"),
		option.WithoutOpenTelemetry(), option.WithMiddleware(anthropictrace.Middleware(tracer)))
	ctx, inst := tracer.StartInstance(ctx)
	msg, _ := client.Messages.New(ctx, anthropic.MessageNewParams{
		Model: "claude-sonnet-4-5", MaxTokens: 256,
		Messages: []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("Weather in Paris?"))},
	})
	inst.End()
	_ = tracer.Flush(ctx)

	u := rec.Spans()[0].Usage
	fmt.Println(msg.Content[0].Text)
	fmt.Print(rec.Tree(inst.ID()))
	fmt.Println(u.PromptTokens, u.CompletionTokens, u.Details[agenttrace.UsageCacheRead])
	// Output:
	// Sunny in Paris.
	// llm chat claude-sonnet-4-5 complete
	// 1160 6 1100
}

package goopenai_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"

	openai "github.com/sashabaranov/go-openai"

	"github.com/agenttrace/agenttrace"
	"github.com/agenttrace/agenttrace/agenttracetest"
	"github.com/agenttrace/agenttrace/instrument/llmhttp"
)

// Tracing go-openai: give the client llmhttp's transport.
func Example() {
	rec := agenttracetest.NewRecorder()
	tracer, _ := agenttrace.New(agenttrace.WithExporter(rec))
	defer tracer.Shutdown(context.Background())
	body, _ := os.ReadFile(filepath.Join("..", "llmhttp", "testdata", "openai_chat.json"))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write(body) }))
	defer srv.Close()

	cfg := openai.DefaultConfig(os.Getenv("OPENAI_API_KEY"))
	cfg.BaseURL = srv.URL + "/v1" // a fake provider
	cfg.HTTPClient = &http.Client{Transport: llmhttp.NewTransport(tracer, nil)}
	client := openai.NewClientWithConfig(cfg)

	resp, err := client.CreateChatCompletion(context.Background(), openai.ChatCompletionRequest{
		Model:    openai.GPT4Dot1,
		Messages: []openai.ChatCompletionMessage{{Role: openai.ChatMessageRoleUser, Content: "Hello!"}},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	_ = tracer.Flush(context.Background())
	span := rec.SpansOfType(agenttrace.TypeLLM)[0]
	fmt.Println(resp.Choices[0].Message.Content)
	fmt.Println(span.Name, span.Status, span.Usage.TotalTokens, "tokens")
	// Output:
	// Hello! How can I assist you today?
	// chat gpt-4.1 complete 29 tokens
}

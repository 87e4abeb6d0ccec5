package llmhttp_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"time"

	"github.com/agenttrace/agenttrace"
	"github.com/agenttrace/agenttrace/agenttracetest"
	"github.com/agenttrace/agenttrace/instrument/llmhttp"
)

// Any HTTP client calling an LLM API is traced by its transport; here a raw
// Anthropic Messages call against a fake server.
func ExampleNewTransport() {
	body, _ := os.ReadFile("testdata/anthropic_message.json")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	}))
	defer srv.Close()
	rec := agenttracetest.NewRecorder()
	tracer, _ := agenttrace.New(agenttrace.WithExporter(rec))
	defer tracer.Shutdown(context.Background())

	client := &http.Client{Transport: llmhttp.NewTransport(tracer, nil)}
	res, err := client.Post(srv.URL+"/v1/messages", "application/json",
		strings.NewReader(`{"model":"claude-sonnet-4-5","max_tokens":1024,"messages":[{"role":"user","content":"Hello"}]}`))
	if err != nil {
		fmt.Println(err)
		return
	}
	_, _ = io.Copy(io.Discard, res.Body)
	_ = res.Body.Close()

	_ = tracer.Flush(context.Background())
	s := rec.SpansOfType(agenttrace.TypeLLM)[0]
	fmt.Println(s.Name, s.Status)
	fmt.Println("tokens:", s.Usage.PromptTokens, "in,", s.Usage.CompletionTokens, "out,", s.Usage.Details[agenttrace.UsageCacheRead], "read from the cache")
	fmt.Printf("cost: $%.6f\n", s.Cost.Total)
	// Output:
	// chat claude-sonnet-4-5 complete
	// tokens: 6197 in, 503 out, 2051 read from the cache
	// cost: $0.026637
}

// Prices can be overridden, per model pattern and from a date on.
func ExamplePriceTable_With() {
	prices, err := llmhttp.DefaultPrices().With(llmhttp.ModelPrice{
		Pattern: `gpt-4o(-mini)?`, // our negotiated rate
		Price:   llmhttp.Price{Input: 1, CachedInput: 0.5, Output: 4},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	c, _ := prices.Cost("openai", "gpt-4o-mini-2024-07-18", agenttrace.Usage{PromptTokens: 1_000_000, CompletionTokens: 500_000}, time.Now())
	fmt.Printf("$%.2f\n", c.Total)
	_ = llmhttp.WithPrices(prices) // pass to NewTransport or Middleware
	// Output: $3.00
}

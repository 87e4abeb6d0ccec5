// Package goopenai shows and tests tracing github.com/sashabaranov/go-openai
// with llmhttp: the client's HTTPClient gets llmhttp's transport, and every
// chat completion, streamed or not, records one llm span.
//
//	cfg := openai.DefaultConfig(apiKey)
//	cfg.HTTPClient = &http.Client{Transport: llmhttp.NewTransport(tracer, nil)}
//	client := openai.NewClientWithConfig(cfg)
//
// go-openai does not retry, so a call the caller repeats is a new span.
// Streamed calls report usage only with StreamOptions{IncludeUsage: true}
// (or llmhttp.WithIncludeUsage).
package goopenai

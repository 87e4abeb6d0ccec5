// Package openaitrace traces openai-go (github.com/openai/openai-go/v3)
// calls as agenttrace llm spans, in one line per client:
//
//	client := openai.NewClient(option.WithMiddleware(openaitrace.Middleware(tracer)))
//
// Every Chat Completions and Responses call of the client, streamed or
// not, then records one span (retries included) as a child of the span in
// the call's context; see package llmhttp for what is recorded and the
// options.
package openaitrace

import (
	"net/http"

	"github.com/openai/openai-go/v3/option"

	"github.com/agenttrace/agenttrace"
	"github.com/agenttrace/agenttrace/instrument/llmhttp"
)

// Middleware returns openai-go's option.Middleware recording each LLM call
// the client makes. opts are llmhttp's options (capture mode, prices,
// include_usage, ...).
func Middleware(tracer *agenttrace.Tracer, opts ...llmhttp.Option) option.Middleware {
	mw := llmhttp.Middleware(tracer, opts...)
	return func(req *http.Request, next option.MiddlewareNext) (*http.Response, error) {
		return mw(req, next)
	}
}

// WithTracing is option.WithMiddleware(Middleware(tracer, opts...)).
func WithTracing(tracer *agenttrace.Tracer, opts ...llmhttp.Option) option.RequestOption {
	return option.WithMiddleware(Middleware(tracer, opts...))
}

// Package anthropictrace records anthropic-sdk-go (v2) calls as agenttrace
// llm spans, with one option per client and no code per call:
//
//	client := anthropic.NewClient(option.WithMiddleware(anthropictrace.Middleware(tracer)))
//
// Each Messages call (streamed or not) becomes one llm span, a child of the
// span in the call's context, in its instance: model, messages, tools and
// settings (by the capture mode), output text, tool calls reassembled from
// the stream, thinking, finish reason, token usage (Anthropic's
// input_tokens excludes cache tokens; the span's PromptTokens is the
// inclusive sum, with agenttrace.UsageCacheRead, UsageCacheWrite and its
// 5m and 1h parts as details), cost from a dated price table and, for a
// stream, the time to first token. The SDK's retries of one call are
// attempts of one span. It is a thin layer over llmhttp, whose options it
// takes.
//
// # Choosing a route
//
// anthropic-sdk-go also emits OpenTelemetry GenAI spans natively (on by
// default, through the global TracerProvider or option.WithTracerProvider).
// Those reach agenttrace through otelbridge.NewSpanProcessor registered on
// that provider: a call made inside an agenttrace span (its context, with
// or without otelbridge.ContextWithSpan) joins that span and its instance.
// Prefer this middleware: it records output text, tool calls and thinking
// whatever the SDK's content mode, cost, and the attempts of a retried call,
// and it needs no OTel SDK. Take the OTel route when the application
// already exports the SDK's spans with OTel and wants agenttrace to read the
// same spans. Not both for one client: that records every call twice; with
// the middleware, turn the SDK's spans off (option.WithoutOpenTelemetry())
// or keep the processor off the provider they go to.
package anthropictrace

import (
	"net/http"

	"github.com/agenttrace/agenttrace"
	"github.com/agenttrace/agenttrace/instrument/llmhttp"
	"github.com/anthropics/anthropic-sdk-go/v2/option"
)

// Option configures the middleware: any llmhttp option (capture mode,
// content cap, prices, retry wait).
type Option = llmhttp.Option

// Middleware returns anthropic-sdk-go middleware recording each call into
// tracer (install it with option.WithMiddleware). The provider is
// "anthropic" unless an option says otherwise.
func Middleware(tracer *agenttrace.Tracer, opts ...Option) option.Middleware {
	mw := llmhttp.Middleware(tracer, append([]Option{llmhttp.WithProvider("anthropic")}, opts...)...)
	return func(req *http.Request, next option.MiddlewareNext) (*http.Response, error) {
		return mw(req, next)
	}
}

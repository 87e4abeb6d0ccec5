package llmhttp

import (
	"os"
	"strings"
	"time"
)

// CaptureMode says how much of the messages, instructions, outputs and
// tool arguments of a call is recorded.
type CaptureMode uint8

const (
	// CaptureDefault follows OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT
	// and falls back to CaptureMetadata, as the OpenTelemetry GenAI
	// conventions do (content is opt-in).
	CaptureDefault CaptureMode = iota
	// CaptureOff records no content and no message structure: model,
	// provider, settings, tool names, usage, cost, finish reason and errors
	// only.
	CaptureOff
	// CaptureMetadata records the messages' structure (roles, tool call
	// names and ids, part types and sizes) but none of their text.
	CaptureMetadata
	// CaptureFull records everything, capped per call (WithMaxContentBytes).
	CaptureFull
)

// String returns "default", "off", "metadata" or "full".
func (m CaptureMode) String() string {
	switch m {
	case CaptureOff:
		return "off"
	case CaptureMetadata:
		return "metadata"
	case CaptureFull:
		return "full"
	}
	return "default"
}

// EnvCaptureContent is the OpenTelemetry variable that turns content
// capture on: "true", "SPAN_ONLY", "EVENT_ONLY" or "SPAN_AND_EVENT" mean
// CaptureFull; "false" and "NO_CONTENT" mean CaptureMetadata.
const EnvCaptureContent = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"

// captureFromEnv resolves CaptureDefault.
func captureFromEnv(v string) CaptureMode {
	switch strings.ToUpper(strings.TrimSpace(v)) {
	case "TRUE", "1", "SPAN_ONLY", "EVENT_ONLY", "SPAN_AND_EVENT":
		return CaptureFull
	}
	return CaptureMetadata
}

// DefaultMaxContentBytes is the default cap on the content captured per call
// (the Anthropic SDK's OpenTelemetry default).
const DefaultMaxContentBytes = 750_000

// DefaultRetryWait is how long a failed attempt that the SDK may retry waits
// for the retry before its span ends as failed.
const DefaultRetryWait = 2 * time.Minute

// Option configures NewTransport and Middleware.
type Option interface{ apply(*config) }

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

type config struct {
	capture      CaptureMode
	maxContent   int
	includeUsage bool
	prices       *PriceTable
	provider     string
	retryWait    time.Duration
	maxResponse  int
}

func newConfig(opts []Option) *config {
	c := &config{maxContent: DefaultMaxContentBytes, retryWait: DefaultRetryWait, maxResponse: 16 << 20}
	for _, o := range opts {
		if o != nil {
			o.apply(c)
		}
	}
	if c.capture == CaptureDefault {
		c.capture = captureFromEnv(os.Getenv(EnvCaptureContent))
	}
	if c.prices == nil {
		c.prices = DefaultPrices()
	}
	return c
}

// WithCapture sets the content capture mode; it overrides
// OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT.
func WithCapture(m CaptureMode) Option {
	return optionFunc(func(c *config) { c.capture = m })
}

// WithMaxContentBytes caps the content (text, arguments, instructions)
// captured per call, request and response together; what is cut is marked
// on the span and counted. n <= 0 keeps the default.
func WithMaxContentBytes(n int) Option {
	return optionFunc(func(c *config) {
		if n > 0 {
			c.maxContent = n
		}
	})
}

// WithIncludeUsage turns on stream_options.include_usage for streamed
// OpenAI Chat Completions requests that do not set it, by rewriting the
// request body, so that streamed calls report their token usage. The SDK
// then also receives the final usage chunk (choices: []), which OpenAI's
// own SDKs handle.
func WithIncludeUsage() Option {
	return optionFunc(func(c *config) { c.includeUsage = true })
}

// WithPrices sets the price table used for cost (DefaultPrices when not
// set; see PriceTable.With and LoadPrices for overrides).
func WithPrices(p *PriceTable) Option {
	return optionFunc(func(c *config) { c.prices = p })
}

// WithProvider names the provider recorded on the spans (gen_ai.provider.name),
// for an OpenAI-compatible server the host does not identify.
func WithProvider(name string) Option {
	return optionFunc(func(c *config) { c.provider = name })
}

// WithRetryWait sets how long a failed attempt the SDK may retry waits for
// the SDK's next attempt before its span ends as failed: an error response
// with a retryable status (408, 409, 429, 5xx) whose body the SDK closed
// unread, as openai-go, anthropic-sdk-go and genai do before retrying, or a
// transport error of a request marked X-Stainless-Retry-Count. An error
// body read to its end ends the span at once. Once the failed attempt's
// context is done (its caller gave up, or the SDK released the attempt's
// own deadline before retrying), the wait is cut to 5 s (or d if shorter);
// the span's end is stamped at the failed attempt either way. d <= 0 keeps
// the default.
func WithRetryWait(d time.Duration) Option {
	return optionFunc(func(c *config) {
		if d > 0 {
			c.retryWait = d
		}
	})
}

package otelbridge

import "time"

// Defaults of the bridge's limits.
const (
	// DefaultMaxAttributes bounds the attributes flattened from one span's
	// payload and result together.
	DefaultMaxAttributes = 64
	// DefaultMaxValueLength bounds the length in bytes of one string
	// attribute value (JSON strings included).
	DefaultMaxValueLength = 16 << 10
	// DefaultMaxOpenSpans bounds the spans the Exporter keeps open, waiting
	// for their end.
	DefaultMaxOpenSpans = 65536
	// DefaultMaxTraces bounds the traces the SpanProcessor buffers.
	DefaultMaxTraces = 4096
	// DefaultMaxSpansPerTrace bounds the spans the SpanProcessor buffers for
	// one trace.
	DefaultMaxSpansPerTrace = 4096
	// DefaultTraceTimeout is how long the SpanProcessor waits for a trace's
	// local root to end before it replays what it has.
	DefaultTraceTimeout = 30 * time.Second
)

type config struct {
	content       bool
	maxAttrs      int
	maxValueLen   int
	maxOpen       int
	maxTraces     int
	maxTraceSpans int
	traceTimeout  time.Duration
	genericType   string
	noFlush       bool
	implied       bool
}

func newConfig(opts []Option) config {
	c := config{
		maxAttrs:      DefaultMaxAttributes,
		maxValueLen:   DefaultMaxValueLength,
		maxOpen:       DefaultMaxOpenSpans,
		maxTraces:     DefaultMaxTraces,
		maxTraceSpans: DefaultMaxSpansPerTrace,
		traceTimeout:  DefaultTraceTimeout,
	}
	for _, o := range opts {
		if o != nil {
			c = o.apply(c)
		}
	}
	if c.maxAttrs < 0 {
		c.maxAttrs = 0
	}
	if c.maxValueLen < 64 {
		c.maxValueLen = 64
	}
	c.maxOpen = max(c.maxOpen, 1)
	c.maxTraces = max(c.maxTraces, 1)
	c.maxTraceSpans = max(c.maxTraceSpans, 1)
	if c.traceTimeout <= 0 {
		c.traceTimeout = DefaultTraceTimeout
	}
	return c
}

// Option configures an Exporter or a SpanProcessor. Options that concern
// only one of them are ignored by the other.
type Option interface {
	apply(config) config
}

type optionFunc func(config) config

func (f optionFunc) apply(c config) config { return f(c) }

// WithContentCapture turns the capture of message content on or off
// (default off, as the GenAI conventions ask). When on, the Exporter emits
// gen_ai.input.messages, gen_ai.output.messages, gen_ai.system_instructions
// and gen_ai.tool.definitions on LLM spans, gen_ai.tool.call.arguments and
// gen_ai.tool.call.result on tool spans, the input and output of agent spans,
// and the payloads of spans marked sensitive; the SpanProcessor copies those
// attributes back into agenttrace payloads. When off, both leave them out.
func WithContentCapture(on bool) Option {
	return optionFunc(func(c config) config { c.content = on; return c })
}

// WithAttributeLimits bounds what the Exporter derives from one span:
// maxAttributes caps the attributes flattened from the payload and result
// of span types without a GenAI mapping (default DefaultMaxAttributes), and
// maxValueLength caps the bytes of any string value (default
// DefaultMaxValueLength, at least 64), cut on a UTF-8 boundary. Cut values
// and left-out attributes are listed in agenttrace.truncated. The
// provider's own span limits apply on top.
func WithAttributeLimits(maxAttributes, maxValueLength int) Option {
	return optionFunc(func(c config) config {
		c.maxAttrs, c.maxValueLen = maxAttributes, maxValueLength
		return c
	})
}

// WithMaxOpenSpans bounds the spans the Exporter keeps open while it waits
// for their end (default DefaultMaxOpenSpans). A span that would exceed it
// is ended at once, marked agenttrace.unfinished, and its later end is
// ignored.
func WithMaxOpenSpans(n int) Option {
	return optionFunc(func(c config) config { c.maxOpen = n; return c })
}

// WithoutFlushOnShutdown stops the Exporter from calling the provider's
// ForceFlush (when it has one) at Shutdown. The Exporter never shuts the
// provider down: it belongs to the caller.
func WithoutFlushOnShutdown() Option {
	return optionFunc(func(c config) config { c.noFlush = true; return c })
}

// WithImpliedAttributes makes the Exporter emit, on every span, the
// agenttrace attributes it leaves out by default because the OTel span
// already says them: agenttrace.instance.id when the trace ID is the
// instance ULID, agenttrace.span.type when gen_ai.operation.name names the
// type, agenttrace.span.status when the OTel status says it (complete or
// failed), and agenttrace.usage.total_tokens when it is the sum of the input
// and output tokens. Use it for a backend queried by those attributes. It
// costs: the OTel SDK de-duplicates the attributes of a span with more than
// 8 through a map on the heap, and an llm span then has 12.
func WithImpliedAttributes() Option {
	return optionFunc(func(c config) config { c.implied = true; return c })
}

// WithTraceLimits bounds the SpanProcessor's buffer: at most maxTraces traces
// waiting for their local root, each with at most maxSpans spans (defaults
// DefaultMaxTraces and DefaultMaxSpansPerTrace). A trace beyond the limit is
// replayed at once with what it has; a span beyond it is dropped and
// counted.
func WithTraceLimits(maxTraces, maxSpans int) Option {
	return optionFunc(func(c config) config {
		c.maxTraces, c.maxTraceSpans = maxTraces, maxSpans
		return c
	})
}

// WithTraceTimeout sets how long the SpanProcessor waits for a trace's local
// root to end before it replays the spans it has (default
// DefaultTraceTimeout).
func WithTraceTimeout(d time.Duration) Option {
	return optionFunc(func(c config) config { c.traceTimeout = d; return c })
}

// WithGenericSpans makes the SpanProcessor turn OTel spans without a GenAI
// operation into agenttrace spans of spanType (for example "chain"), with
// their attributes as the payload. By default they are skipped, and their
// GenAI descendants attach to the nearest ancestor that is kept.
func WithGenericSpans(spanType string) Option {
	return optionFunc(func(c config) config { c.genericType = spanType; return c })
}

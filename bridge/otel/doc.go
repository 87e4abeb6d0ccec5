// Package otelbridge connects agenttrace and OpenTelemetry, in both
// directions, without touching the global TracerProvider.
//
// # agenttrace to OpenTelemetry
//
// Exporter is an agenttrace.Exporter that re-emits instances and spans
// through a trace.TracerProvider of the caller's, named and attributed by
// the OpenTelemetry GenAI semantic conventions (the gen_ai.* keys are
// defined in this package: the Go semconv packages dropped them):
//
//	tp := sdktrace.NewTracerProvider(
//		sdktrace.WithIDGenerator(otelbridge.IDGenerator()),
//		sdktrace.WithBatcher(otlpExporter),
//	)
//	tracer, err := agenttrace.New(agenttrace.WithExporter(otelbridge.NewExporter(tp)))
//
// # IDs
//
// An instance maps to a trace whose ID is the instance ULID (16 bytes), a
// span to an OTel span whose ID is the last 8 bytes of its ULID, and the
// instance's root span to the last 8 bytes of the instance ULID. A
// TracerProvider chooses span IDs itself, and neither the trace API nor the
// SDK lets a caller hand it finished spans, so the Exporter asks for its IDs
// through the start context, and IDGenerator (an sdktrace.IDGenerator to
// install on the provider) gives them. Spans from any other source get random
// IDs from it, as from the SDK's default. On a provider without IDGenerator
// the Exporter still keeps every parent link by remembering the IDs the
// provider chose, and every span carries its ULIDs as agenttrace.instance.id
// and agenttrace.span.id. (With IDGenerator the trace ID is the instance
// ULID, and agenttrace.instance.id is left out of all but the root; see
// IdentityOf.)
//
// # Context interop
//
// With CaptureParent() among the tracer's options, every Start,
// StartPending and StartInstance records the OTel span current in its
// context (agenttrace.WithParentExtractor, SpanData.TraceParent and
// InstanceData.TraceParent), and the Exporter places the record under it:
// an instance started while serving an OTel-traced request (an otelhttp
// server span, say) is emitted inside that request's trace, its root a
// child of the request's span, with its spans below; an agenttrace span
// started inside an OTel span (itself inside an agenttrace span) becomes
// that OTel span's child. In the other direction, ContextWithSpan(ctx) puts
// the deterministic OTel span context of the agenttrace span in ctx into
// the context as a remote parent, so OTel instrumentation (an HTTP client,
// a database driver) called from agent code nests under the agenttrace
// span.
//
// # OpenTelemetry to agenttrace
//
// SpanProcessor is an sdktrace.SpanProcessor that turns ended OTel spans
// (GenAI spans from other instrumentation, for example) into agenttrace
// spans of a Tracer: chat and other inference spans become llm spans with
// LLMRequest and LLMResponse payloads and token usage, execute_tool spans
// become tool spans, invoke_agent spans agent spans, and, with
// WithGenericSpans, other spans a generic type. Each trace becomes an
// instance. OTel spans end children first, so the processor buffers a trace
// until its local root ends (bounded, with a timeout) and replays it parents
// first, with the original start, end and first-token times and the
// spans' error.type.
package otelbridge

package otelbridge

import (
	"context"
	"encoding/hex"

	"github.com/agenttrace/agenttrace"
	"go.opentelemetry.io/otel/trace"
)

// traceparentKey is the instance metadata key WithParent records the OTel
// parent under, in W3C traceparent form.
const traceparentKey = "traceparent"

// CaptureParent returns a tracer option that captures the OTel span
// current in the context of every Start, StartPending and StartInstance
// (agenttrace.WithParentExtractor): the Exporter then emits an instance
// started inside an OTel-traced request inside that request's trace, its
// root a child of the request's span, and an agenttrace span started inside
// an OTel span (itself inside an agenttrace span) as that OTel span's
// child. It is the way to get context interop for every span:
//
//	tracer, err := agenttrace.New(otelbridge.CaptureParent(),
//		agenttrace.WithExporter(otelbridge.NewExporter(tp)))
func CaptureParent() agenttrace.Option {
	return agenttrace.WithParentExtractor(extractParent)
}

func extractParent(ctx context.Context) (agenttrace.TraceParent, bool) {
	sc := trace.SpanContextFromContext(ctx)
	if !sc.IsValid() {
		return agenttrace.TraceParent{}, false
	}
	return agenttrace.TraceParent{TraceID: sc.TraceID(), SpanID: sc.SpanID(), Flags: byte(sc.TraceFlags())}, true
}

// fromTraceParent turns a captured trace context back into a remote OTel
// span context (invalid for nil).
func fromTraceParent(tp *agenttrace.TraceParent) trace.SpanContext {
	if tp == nil {
		return trace.SpanContext{}
	}
	return trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: tp.TraceID, SpanID: tp.SpanID, TraceFlags: trace.TraceFlags(tp.Flags), Remote: true,
	})
}

// WithParent returns an agenttrace.InstanceOption that records the OTel span
// current in ctx (if any) as the parent of the instance: the Exporter then
// emits the instance's root span as a child of that span, in its trace, so
// that an agent run started while serving an OTel-traced request appears
// inside that request's trace:
//
//	ctx, inst := tracer.StartInstance(ctx, otelbridge.WithParent(ctx))
//
// The parent travels in the instance metadata under "traceparent" (W3C
// form), so other exporters see it too. With no valid span context in ctx
// it returns nil, which StartInstance ignores.
func WithParent(ctx context.Context) agenttrace.InstanceOption {
	sc := trace.SpanContextFromContext(ctx)
	if !sc.IsValid() {
		return nil
	}
	return agenttrace.WithMetadata(map[string]string{traceparentKey: formatTraceparent(sc)})
}

// SpanContext returns the OTel span context the Exporter gives the
// agenttrace span in ctx, or, when ctx holds an instance but no span, that
// of the instance's root span. It is valid only when the provider the
// Exporter writes to uses IDGenerator; it is the zero SpanContext when ctx
// holds neither. The span context is sampled and remote.
func SpanContext(ctx context.Context) trace.SpanContext {
	span := agenttrace.SpanFromContext(ctx)
	inst := agenttrace.InstanceFromContext(ctx)
	if inst == nil {
		return trace.SpanContext{}
	}
	id := inst.ID()
	if span != nil {
		id = span.ID()
	}
	return trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: instanceTrace(inst), SpanID: SpanID(id), TraceFlags: trace.FlagsSampled, Remote: true,
	})
}

// ContextWithSpan returns a copy of ctx whose OTel parent is the agenttrace
// span (or instance) in ctx, as SpanContext computes it: OTel spans started
// from the returned context nest under the agenttrace span in the trace the
// Exporter emits. It returns ctx unchanged when ctx holds no agenttrace span
// or instance. It needs IDGenerator on the Exporter's provider.
func ContextWithSpan(ctx context.Context) context.Context {
	sc := SpanContext(ctx)
	if !sc.IsValid() {
		return ctx
	}
	return trace.ContextWithRemoteSpanContext(ctx, sc)
}

// instanceTrace returns the OTel trace ID of an instance: that of the OTel
// parent captured at its start (CaptureParent) or recorded by WithParent,
// or the instance ULID.
func instanceTrace(inst *agenttrace.Instance) trace.TraceID {
	d := inst.Data()
	if sc := fromTraceParent(d.TraceParent); sc.IsValid() {
		return sc.TraceID()
	}
	if tp := d.Metadata[traceparentKey]; tp != "" {
		if sc := parseTraceparent(tp); sc.IsValid() {
			return sc.TraceID()
		}
	}
	return TraceID(inst.ID())
}

// Start starts an agenttrace span like tr.Start and records the OTel span
// current in ctx, so that the Exporter emits the new span as a child of that
// OTel span when it is nearer than the span's agenttrace parent (an
// agenttrace span started inside an OTel span started inside an agenttrace
// span). The returned context also carries the new span's OTel span context
// (as ContextWithSpan does), so OTel spans started from it nest under it.
//
// With CaptureParent on the tracer every span follows its OTel parent
// without this method; Start still returns a context carrying the new
// span's OTel span context. It needs IDGenerator on the Exporter's
// provider.
func (e *Exporter) Start(ctx context.Context, tr *agenttrace.Tracer, spanType string, payload any, opts ...agenttrace.SpanOption) (context.Context, *agenttrace.Span) {
	if ctx == nil {
		ctx = context.Background()
	}
	ext := trace.SpanContextFromContext(ctx)
	ctx, span := tr.Start(ctx, spanType, payload, opts...)
	if span == nil {
		return ctx, nil
	}
	tid := ext.TraceID()
	if ext.IsValid() {
		e.capture(span.ID(), ext)
	} else {
		tid = instanceTrace(span.Instance())
	}
	sc := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: tid, SpanID: SpanID(span.ID()), TraceFlags: trace.FlagsSampled, Remote: true,
	})
	return trace.ContextWithRemoteSpanContext(ctx, sc), span
}

func (e *Exporter) capture(id agenttrace.ID, sc trace.SpanContext) {
	e.capturedMu.Lock()
	defer e.capturedMu.Unlock()
	if len(e.captured) >= e.cfg.maxOpen {
		// Entries whose start record never came (dropped by the pipeline,
		// or another tracer's span): start afresh rather than grow.
		clear(e.captured)
	}
	e.captured[id] = sc
}

func (e *Exporter) takeCapture(id agenttrace.ID) (trace.SpanContext, bool) {
	e.capturedMu.Lock()
	defer e.capturedMu.Unlock()
	if len(e.captured) == 0 {
		return trace.SpanContext{}, false
	}
	sc, ok := e.captured[id]
	if ok {
		delete(e.captured, id)
	}
	return sc, ok
}

// formatTraceparent returns sc in W3C traceparent form.
func formatTraceparent(sc trace.SpanContext) string {
	tid, sid := sc.TraceID(), sc.SpanID()
	b := make([]byte, 0, 55)
	b = append(b, "00-"...)
	b = hex.AppendEncode(b, tid[:])
	b = append(b, '-')
	b = hex.AppendEncode(b, sid[:])
	b = append(b, '-')
	b = hex.AppendEncode(b, []byte{byte(sc.TraceFlags())})
	return string(b)
}

// parseTraceparent parses the W3C traceparent form; the zero SpanContext
// means it was empty or malformed. The result is remote.
func parseTraceparent(s string) trace.SpanContext {
	if len(s) != 55 || s[:3] != "00-" || s[35] != '-' || s[52] != '-' {
		return trace.SpanContext{}
	}
	var cfg trace.SpanContextConfig
	var flags [1]byte
	if _, err := hex.Decode(cfg.TraceID[:], []byte(s[3:35])); err != nil {
		return trace.SpanContext{}
	}
	if _, err := hex.Decode(cfg.SpanID[:], []byte(s[36:52])); err != nil {
		return trace.SpanContext{}
	}
	if _, err := hex.Decode(flags[:], []byte(s[53:55])); err != nil {
		return trace.SpanContext{}
	}
	cfg.TraceFlags = trace.TraceFlags(flags[0])
	cfg.Remote = true
	return trace.NewSpanContext(cfg)
}

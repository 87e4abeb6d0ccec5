package otelbridge

import (
	"context"

	"github.com/agenttrace/agenttrace"
	"go.opentelemetry.io/otel/trace"
)

// CaptureParent returns a tracer option that captures the OTel span
// current in the context of every Start, StartPending and StartInstance
// (agenttrace.WithParentExtractor, reading trace.SpanContextFromContext)
// into SpanData.TraceParent and InstanceData.TraceParent. The Exporter
// then emits an instance started inside an OTel-traced request (an
// otelhttp server span, say) inside that request's trace, its root a child
// of the request's span, and an agenttrace span started inside an OTel
// span (itself inside an agenttrace span) as that OTel span's child. Other
// exporters see the captured context too. It is the one way to get context
// interop from OTel into agenttrace:
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

// SpanContext returns the OTel span context the Exporter gives the
// agenttrace span in ctx, or, when ctx holds an instance but no span, that
// of the instance's root span. Its trace is that of the OTel span captured
// when the span started (CaptureParent), else that of its instance: the
// trace of the OTel span the instance started in, or the instance ULID. It
// is valid only when the provider the Exporter writes to uses IDGenerator;
// it is the zero SpanContext when ctx holds neither. The span context is
// sampled and remote.
func SpanContext(ctx context.Context) trace.SpanContext {
	span := agenttrace.SpanFromContext(ctx)
	inst := agenttrace.InstanceFromContext(ctx)
	if inst == nil {
		return trace.SpanContext{}
	}
	id := inst.ID()
	var tid trace.TraceID
	if span != nil {
		id = span.ID()
		if tp := span.Data().TraceParent; tp != nil {
			tid = tp.TraceID
		}
	}
	if !tid.IsValid() {
		tid = instanceTrace(inst)
	}
	return trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: tid, SpanID: SpanID(id), TraceFlags: trace.FlagsSampled, Remote: true,
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
// parent captured at its start (CaptureParent) or given with
// agenttrace.WithTraceParent, or the instance ULID.
func instanceTrace(inst *agenttrace.Instance) trace.TraceID {
	if tp := inst.Data().TraceParent; tp != nil && tp.IsValid() {
		return tp.TraceID
	}
	return TraceID(inst.ID())
}

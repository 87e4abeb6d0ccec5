package otelbridge

import (
	"context"
	"encoding/binary"
	"math/rand/v2"

	"github.com/agenttrace/agenttrace"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// TraceID returns the OpenTelemetry trace ID of an instance: its 16-byte
// ULID as is.
func TraceID(instanceID agenttrace.ID) trace.TraceID { return trace.TraceID(instanceID) }

// SpanID returns the OpenTelemetry span ID of a span: the last 8 bytes of its
// ULID (the random part). The root span of an instance gets SpanID of the
// instance ID. In the (2^-64) case of 8 zero bytes, the first 8 bytes (the
// timestamp) are used, so the result is always valid for a non-zero ID.
func SpanID(id agenttrace.ID) trace.SpanID {
	var s trace.SpanID
	copy(s[:], id[8:])
	if !s.IsValid() {
		copy(s[:], id[:8])
	}
	return s
}

// wantIDs carries the IDs the exporter wants for the span it is starting;
// the IDGenerator reads them from the start context.
type wantIDs struct {
	trace trace.TraceID
	span  trace.SpanID
}

// startCtx is the context the exporter starts a span with: its parent plus
// the wanted IDs, in one allocation.
type startCtx struct {
	context.Context
	ids wantIDs
}

type wantIDsKey struct{}

// Value implements context.Context.
func (c *startCtx) Value(key any) any {
	if _, ok := key.(wantIDsKey); ok {
		return &c.ids
	}
	return c.Context.Value(key)
}

// IDGenerator returns an sdktrace.IDGenerator that gives spans emitted by the
// Exporter their deterministic IDs (the instance ULID as trace ID, the last 8
// bytes of a span ULID as span ID; see TraceID and SpanID) and random IDs to
// every other span, like the SDK's default generator. Install it on the
// provider the Exporter writes to:
//
//	tp := sdktrace.NewTracerProvider(sdktrace.WithIDGenerator(otelbridge.IDGenerator()), ...)
//
// Without it the provider chooses the IDs: parent links are still kept (the
// Exporter maps IDs as it goes), every span still carries its ULIDs as
// agenttrace.instance.id and agenttrace.span.id (see IdentityOf), but the
// OTel IDs cannot be derived from the agenttrace ones and ContextWithSpan
// cannot be used.
func IDGenerator() sdktrace.IDGenerator { return idGenerator{} }

type idGenerator struct{}

// NewIDs implements sdktrace.IDGenerator.
func (idGenerator) NewIDs(ctx context.Context) (trace.TraceID, trace.SpanID) {
	if w, ok := ctx.Value(wantIDsKey{}).(*wantIDs); ok && w.trace.IsValid() && w.span.IsValid() {
		return w.trace, w.span
	}
	var tid trace.TraceID
	for !tid.IsValid() {
		binary.NativeEndian.PutUint64(tid[:8], rand.Uint64())
		binary.NativeEndian.PutUint64(tid[8:], rand.Uint64())
	}
	return tid, randomSpanID()
}

// NewSpanID implements sdktrace.IDGenerator.
func (idGenerator) NewSpanID(ctx context.Context, _ trace.TraceID) trace.SpanID {
	if w, ok := ctx.Value(wantIDsKey{}).(*wantIDs); ok && w.span.IsValid() {
		return w.span
	}
	return randomSpanID()
}

func randomSpanID() trace.SpanID {
	var sid trace.SpanID
	for !sid.IsValid() {
		binary.NativeEndian.PutUint64(sid[:], rand.Uint64())
	}
	return sid
}

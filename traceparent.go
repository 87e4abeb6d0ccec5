package agenttrace

import (
	"context"
	"encoding/hex"
)

// TraceParent is a W3C trace context (an OpenTelemetry span context, for
// instance) captured from the caller's context when a span or an instance
// starts, so that exporters can place agenttrace's records inside the
// caller's trace. The root package reads it only through the extractor
// set with WithParentExtractor (the OpenTelemetry bridge provides one), or
// as given to WithTraceParent.
type TraceParent struct {
	TraceID [16]byte
	SpanID  [8]byte
	Flags   byte
}

// IsValid reports whether both IDs are non-zero.
func (p TraceParent) IsValid() bool { return p.TraceID != [16]byte{} && p.SpanID != [8]byte{} }

// String returns the W3C traceparent form: "00-<trace id>-<span id>-<flags>".
func (p TraceParent) String() string {
	b := make([]byte, 0, 55)
	b = append(b, "00-"...)
	b = hex.AppendEncode(b, p.TraceID[:])
	b = append(b, '-')
	b = hex.AppendEncode(b, p.SpanID[:])
	b = append(b, '-')
	b = hex.AppendEncode(b, []byte{p.Flags})
	return string(b)
}

// MarshalText implements encoding.TextMarshaler (the W3C form).
func (p TraceParent) MarshalText() ([]byte, error) { return []byte(p.String()), nil }

// WithParentExtractor sets a function that Start, StartPending and
// StartInstance call with the caller's context to capture its trace context
// (SpanData.TraceParent, InstanceData.TraceParent). It runs on the
// recording path, so it must be cheap and safe for concurrent use; a panic
// in it is recovered and counted (Stats.HookPanics), and nothing is
// captured. An invalid trace context (a zero ID) is not captured either.
// Without an extractor nothing runs and nothing is captured.
func WithParentExtractor(f func(ctx context.Context) (TraceParent, bool)) Option {
	return optionFunc(func(c config) config { c.parentExtractor = f; return c })
}

// WithTraceParent records p as the instance's trace parent
// (InstanceData.TraceParent) in place of what the extractor captures: for
// runs replayed from another source, whose trace context is known but not
// in the context StartInstance is called with. An invalid p is ignored.
func WithTraceParent(p TraceParent) InstanceOption {
	return instanceOptionFunc(func(d *InstanceData) {
		if p.IsValid() {
			d.TraceParent = &p
		}
	})
}

// extractParent runs the extractor, if any. Without one it costs a nil
// check (it is inlined into the start path).
func (t *Tracer) extractParent(ctx context.Context) *TraceParent {
	if t.cfg.parentExtractor == nil {
		return nil
	}
	return t.runExtractor(ctx)
}

// runExtractor calls the extractor, recovering and counting a panic.
func (t *Tracer) runExtractor(ctx context.Context) (tp *TraceParent) {
	defer func() {
		if recover() != nil {
			t.stats.hookPanics.Add(1)
			tp = nil
		}
	}()
	p, ok := t.cfg.parentExtractor(ctx)
	if !ok || !p.IsValid() {
		return nil
	}
	captured := p // allocated here only: p itself stays on the stack
	return &captured
}

package agenttrace

import (
	"context"
	"encoding/hex"
)

// TraceParent is a W3C trace context (an OpenTelemetry span context, for
// instance) captured from the caller's context when a span or an instance
// starts, so that exporters can place agenttrace's records inside the
// caller's trace. The root package reads it only through the extractor
// set with WithParentExtractor (the OpenTelemetry bridge provides one).
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
// recording path, so it must be cheap; a panic in it is recovered and
// counted (Stats.HookPanics), and nothing is captured.
func WithParentExtractor(f func(ctx context.Context) (TraceParent, bool)) Option {
	return optionFunc(func(c config) config { c.parentExtractor = f; return c })
}

// extractParent runs the extractor, if any.
func (t *Tracer) extractParent(ctx context.Context) (tp *TraceParent) {
	f := t.cfg.parentExtractor
	if f == nil {
		return nil
	}
	defer func() {
		if recover() != nil {
			t.stats.hookPanics.Add(1)
			tp = nil
		}
	}()
	p, ok := f(ctx)
	if !ok || !p.IsValid() {
		return nil
	}
	return &p
}

package agenttrace

import (
	"context"
	"fmt"
)

type ctxKey struct{}

// SpanFromContext returns the span in ctx, or nil. A nil *Span is a usable
// no-op.
func SpanFromContext(ctx context.Context) *Span {
	if ctx == nil {
		return nil
	}
	s, _ := ctx.Value(ctxKey{}).(*Span)
	return s
}

// InstanceFromContext returns the instance ctx belongs to: the nearest one
// started with StartInstance, or the instance of the span in ctx. It
// returns nil when there is none (spans started from such a context join the
// tracer's default instance).
func InstanceFromContext(ctx context.Context) *Instance {
	if ctx == nil {
		return nil
	}
	switch v := ctx.Value(ctxKey{}).(type) {
	case *Span:
		return v.inst
	case *Instance:
		return v
	}
	return nil
}

// ContextWithSpan returns a copy of ctx carrying span, so that spans started
// from it become its children. Use it to carry a span across an API that
// does not pass contexts along.
func ContextWithSpan(ctx context.Context, span *Span) context.Context {
	if ctx == nil {
		ctx = context.Background()
	}
	if span == nil {
		return ctx
	}
	return context.WithValue(ctx, ctxKey{}, span)
}

// ContextWithInstance returns a copy of ctx carrying inst, so that spans
// started from it join inst as roots.
func ContextWithInstance(ctx context.Context, inst *Instance) context.Context {
	if ctx == nil {
		ctx = context.Background()
	}
	if inst == nil {
		return ctx
	}
	return context.WithValue(ctx, ctxKey{}, inst)
}

// fromContext returns the parent span and the instance for a new span.
func fromContext(ctx context.Context) (*Span, *Instance) {
	switch v := ctx.Value(ctxKey{}).(type) {
	case *Span:
		return v, v.inst
	case *Instance:
		return nil, v
	}
	return nil, nil
}

// spanCtx is the context Start returns: the caller's context carrying the
// new span. It is a field of the Span, so that Start allocates one object
// for both; it behaves as context.WithValue would, and cancellation of the
// caller's context propagates through it as through any value context.
type spanCtx struct {
	context.Context
	s *Span
}

// Value returns the span for the package's key and defers to the caller's
// context for every other key.
func (c *spanCtx) Value(key any) any {
	if _, ok := key.(ctxKey); ok {
		return c.s
	}
	return c.Context.Value(key)
}

// String describes the context, as the standard library's contexts do.
func (c *spanCtx) String() string {
	return fmt.Sprintf("%v.WithValue(agenttrace span %s)", c.Context, c.s.id)
}

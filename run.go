package agenttrace

import (
	"context"
	"errors"
	"fmt"
)

var errGoexit = errors.New("agenttrace: goroutine exited inside Run")

// PanicError is the error a span records when the function Run traces
// panics.
type PanicError struct {
	Value any
}

// Error implements error.
func (e *PanicError) Error() string { return fmt.Sprintf("panic: %v", e.Value) }

// Run runs fn inside a span of type spanType and returns what fn returns. A
// returned error fails the span; a panic fails it and is re-raised; on
// success the returned value becomes the span's result unless fn set one
// (a non-object value is wrapped as {"value": v}). fn receives the span's
// context and the span.
func Run[T any](ctx context.Context, t *Tracer, spanType string, payload any,
	fn func(ctx context.Context, span *Span) (T, error), opts ...SpanOption) (T, error) {
	ctx, span := t.Start(ctx, spanType, payload, opts...)
	done := false
	defer func() {
		if done {
			return
		}
		r := recover()
		if r == nil {
			// runtime.Goexit (t.FailNow in a test, say).
			span.Fail(errGoexit)
			return
		}
		span.Fail(&PanicError{Value: r})
		panic(r)
	}()
	res, err := fn(ctx, span)
	done = true
	if err != nil {
		span.Fail(err)
		return res, err
	}
	if span != nil && !span.hasResult() {
		span.SetResult(res)
	}
	span.End()
	return res, nil
}

func (s *Span) hasResult() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.result != nil
}

package agenttrace_test

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/agenttrace/agenttrace"
)

func TestLegalTransitions(t *testing.T) {
	tr, rec := newTracer(t)
	ctx := context.Background()

	_, a := tr.Start(ctx, "tool", nil) // active -> complete
	require.Equal(t, agenttrace.StatusActive, a.Status())
	a.End()
	require.Equal(t, agenttrace.StatusComplete, a.Status())

	_, b := tr.Start(ctx, "tool", nil) // active -> failed
	b.Fail(errors.New("boom"))
	require.Equal(t, agenttrace.StatusFailed, b.Status())
	require.Equal(t, &agenttrace.ErrorInfo{Type: "error", Message: "boom"}, b.Data().Error)

	_, c := tr.StartPending(ctx, "tool", nil) // pending -> active -> complete
	require.Equal(t, agenttrace.StatusPending, c.Status())
	require.True(t, c.Data().StartedAt.IsZero())
	c.Activate()
	require.Equal(t, agenttrace.StatusActive, c.Status())
	require.False(t, c.Data().StartedAt.IsZero())
	c.End()

	_, d := tr.StartPending(ctx, "tool", nil) // pending -> cancelled
	d.Cancel("not needed")
	require.Equal(t, agenttrace.StatusCancelled, d.Status())
	require.Equal(t, "not needed", d.Data().Error.Message)

	_, e := tr.StartPending(ctx, "tool", nil) // End on pending cancels
	e.End()
	require.Equal(t, agenttrace.StatusCancelled, e.Status())

	_, f := tr.StartPending(ctx, "tool", nil) // Fail on pending cancels with the error
	f.Fail(context.Canceled)
	require.Equal(t, agenttrace.StatusCancelled, f.Status())
	require.Equal(t, "context.Canceled", f.Data().Error.Type)

	_, g := tr.Start(ctx, "tool", nil) // an active span's cancellation is a failure
	g.Fail(context.DeadlineExceeded)
	require.Equal(t, agenttrace.StatusFailed, g.Status())
	require.Equal(t, "context.DeadlineExceeded", g.Data().Error.Type)

	flush(t, tr)
	require.Zero(t, tr.Stats().IllegalTransitions)
	require.Equal(t, []string{"instance_started",
		"span_started:tool:complete", "span_started:tool:failed", "span_started:tool:complete",
		"span_started:tool:cancelled", "span_started:tool:cancelled", "span_started:tool:cancelled",
		"span_started:tool:failed"}, kinds(rec.Records()))
}

func TestIllegalTransitionsAreCountedNoOps(t *testing.T) {
	tr, rec := newTracer(t)
	ctx := context.Background()
	illegal := func() uint64 { return tr.Stats().IllegalTransitions }

	_, s := tr.Start(ctx, "tool", nil)
	s.Activate() // already active
	require.EqualValues(t, 1, illegal())
	s.Cancel("too late") // active cannot be cancelled
	require.EqualValues(t, 2, illegal())
	require.Equal(t, agenttrace.StatusActive, s.Status())
	s.End()
	s.End() // idempotent, not counted
	require.EqualValues(t, 2, illegal())

	before := s.Data()
	s.Fail(errors.New("after end"))
	s.Activate()
	s.Cancel("x")
	s.SetResult(map[string]int{"a": 1})
	s.SetUsage(agenttrace.Usage{PromptTokens: 1})
	s.SetCost(agenttrace.Cost{Total: 1})
	s.MarkFirstToken()
	require.EqualValues(t, 9, illegal())
	require.Equal(t, before, s.Data(), "methods after End change nothing")

	_, p := tr.StartPending(ctx, "tool", nil)
	p.MarkFirstToken() // not active
	require.EqualValues(t, 10, illegal())
	p.Cancel("skip")

	_, inst := tr.StartInstance(ctx)
	inst.End()
	inst.End() // silent
	require.EqualValues(t, 10, illegal())
	inst.Fail(errors.New("late"))
	require.EqualValues(t, 11, illegal())
	require.Equal(t, agenttrace.StatusComplete, inst.Status())

	flush(t, tr)
	// One record per span: nothing after the end reached the exporter.
	require.Equal(t, []string{"instance_started", "span_started:tool:complete", "span_started:tool:cancelled",
		"instance_started", "instance_ended"}, kinds(rec.Records()))
}

func TestNilReceivers(t *testing.T) {
	var tr *agenttrace.Tracer
	ctx := context.Background()
	c2, s := tr.Start(ctx, "llm", nil)
	require.Equal(t, ctx, c2)
	require.Nil(t, s)
	_, s = tr.StartPending(ctx, "llm", nil)
	require.Nil(t, s)
	_, inst := tr.StartInstance(ctx)
	require.Nil(t, inst)
	require.NoError(t, tr.Flush(ctx))
	require.NoError(t, tr.Shutdown(ctx))
	require.Equal(t, agenttrace.Stats{}, tr.Stats())
	require.Nil(t, tr.DefaultInstance())
	require.Equal(t, agenttrace.SchemaVersion{}, tr.SchemaVersion())
	require.Equal(t, agenttrace.Agent{}, tr.Agent())

	s.Activate()
	s.End()
	s.Fail(errors.New("x"))
	s.Cancel("x")
	s.SetResult(1)
	s.SetUsage(agenttrace.Usage{})
	s.SetCost(agenttrace.Cost{})
	s.MarkFirstToken()
	require.True(t, s.ID().IsZero())
	require.True(t, s.ParentID().IsZero())
	require.Nil(t, s.Instance())
	require.Empty(t, s.Type())
	require.Zero(t, s.Status())
	require.Equal(t, agenttrace.SpanData{}, s.Data())

	inst.End()
	inst.Fail(errors.New("x"))
	require.True(t, inst.ID().IsZero())
	require.Zero(t, inst.Status())
	require.Equal(t, agenttrace.Summary{}, inst.Summary())
	require.Equal(t, agenttrace.InstanceData{}, inst.Data())

	got, err := agenttrace.Run(ctx, tr, "tool", nil, func(context.Context, *agenttrace.Span) (int, error) { return 7, nil })
	require.NoError(t, err)
	require.Equal(t, 7, got)

	require.Nil(t, agenttrace.SpanFromContext(nil)) //nolint:staticcheck // nil ctx is tolerated
	require.Nil(t, agenttrace.InstanceFromContext(ctx))
	require.Equal(t, ctx, agenttrace.ContextWithSpan(ctx, nil))
	require.Equal(t, ctx, agenttrace.ContextWithInstance(ctx, nil))
}

func TestAfterShutdown(t *testing.T) {
	tr, err := agenttrace.New()
	require.NoError(t, err)
	ctx := context.Background()
	_, early := tr.Start(ctx, "tool", nil)
	first := tr.Shutdown(ctx)
	require.NoError(t, first)
	require.Equal(t, first, tr.Shutdown(ctx))

	_, s := tr.Start(ctx, "tool", nil)
	require.Nil(t, s)
	_, s = tr.StartPending(ctx, "tool", nil)
	require.Nil(t, s)
	_, inst := tr.StartInstance(ctx)
	require.Nil(t, inst)
	require.EqualValues(t, 3, tr.Stats().AfterShutdown)
	require.ErrorIs(t, tr.Flush(ctx), agenttrace.ErrShutdown)
	require.Nil(t, tr.DefaultInstance())
	// Shutdown ended the default instance, and with it the span still open.
	early.End() // harmless
	require.Equal(t, agenttrace.StatusFailed, early.Status())
	require.Equal(t, agenttrace.ErrorTypeInstanceEnded, early.Data().Error.Type)
}

func TestContextParentage(t *testing.T) {
	tr, rec := newTracer(t)
	ctx, inst := tr.StartInstance(context.Background())
	require.Equal(t, inst, agenttrace.InstanceFromContext(ctx))
	require.Nil(t, agenttrace.SpanFromContext(ctx))

	ctx1, root := tr.Start(ctx, "agent", nil)
	require.Equal(t, root, agenttrace.SpanFromContext(ctx1))
	require.Equal(t, inst, agenttrace.InstanceFromContext(ctx1))
	_, child := tr.Start(ctx1, "llm", nil)
	require.Equal(t, root.ID(), child.ParentID())
	require.Equal(t, inst, child.Instance())

	// ContextWithSpan carries a span across an API without contexts.
	_, other := tr.Start(agenttrace.ContextWithSpan(context.Background(), root), "tool", nil)
	require.Equal(t, root.ID(), other.ParentID())
	_, top := tr.Start(agenttrace.ContextWithInstance(context.Background(), inst), "tool", nil)
	require.True(t, top.ParentID().IsZero())
	require.Equal(t, inst, top.Instance())

	// A new instance inside a span's context: its spans are roots there.
	ctx2, nested := tr.StartInstance(ctx1)
	_, n := tr.Start(ctx2, "tool", nil)
	require.True(t, n.ParentID().IsZero())
	require.Equal(t, nested, n.Instance())

	// No instance in the context: the default instance.
	_, d := tr.Start(context.Background(), "tool", nil)
	def := d.Instance()
	require.Equal(t, tr.DefaultInstance(), def)
	require.True(t, def.Data().Default)

	for _, s := range []*agenttrace.Span{n, top, other, child, root, d} {
		s.End()
	}
	nested.End()
	inst.End()

	// A span in an ended instance is a counted no-op.
	_, late := tr.Start(ctx1, "tool", nil)
	require.Nil(t, late)
	require.EqualValues(t, 1, tr.Stats().IllegalTransitions)

	require.NoError(t, tr.Shutdown(context.Background()))
	require.Equal(t, agenttrace.StatusComplete, def.Status(), "Shutdown ends the default instance")
	require.NoError(t, rec.CheckOrdering())
	require.NoError(t, rec.CheckComplete())
}

func TestSpansOfAnotherTracerAreNotParents(t *testing.T) {
	a, _ := newTracer(t)
	b, _ := newTracer(t)
	ctx, sa := a.Start(context.Background(), "agent", nil)
	_, sb := b.Start(ctx, "llm", nil)
	require.True(t, sb.ParentID().IsZero())
	require.Equal(t, b.DefaultInstance(), sb.Instance())
	sb.End()
	sa.End()
}

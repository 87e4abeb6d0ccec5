package agenttrace_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/agenttrace/agenttrace"
)

func TestExplicitTimestamps(t *testing.T) {
	tr, rec := newTracer(t)
	t0 := time.Date(2026, 5, 6, 7, 8, 9, 0, time.UTC)
	ctx, inst := tr.StartInstance(context.Background(), agenttrace.WithInstanceStartTime(t0))

	_, s := tr.Start(ctx, "llm", nil, agenttrace.WithStartTime(t0.Add(time.Second)))
	s.MarkFirstTokenAt(t0.Add(1500 * time.Millisecond))
	s.MarkFirstTokenAt(t0.Add(1700 * time.Millisecond)) // the first one stays
	s.EndAt(t0.Add(3 * time.Second))
	d := s.Data()
	require.Equal(t, t0.Add(time.Second), d.StartedAt)
	require.Equal(t, t0.Add(3*time.Second), d.EndedAt)
	require.Equal(t, 500*time.Millisecond, d.TimeToFirstToken())
	s.EndAt(t0.Add(time.Hour)) // a second end does nothing
	require.Equal(t, t0.Add(3*time.Second), s.Data().EndedAt)

	_, p := tr.StartPending(ctx, "tool", nil, agenttrace.WithStartTime(t0.Add(time.Second)))
	p.ActivateAt(t0.Add(2 * time.Second))
	p.FailAt(errors.New("boom"), t0.Add(4*time.Second))
	d = p.Data()
	require.Equal(t, t0.Add(2*time.Second), d.StartedAt)
	require.Equal(t, t0.Add(4*time.Second), d.EndedAt)
	require.Equal(t, agenttrace.StatusFailed, d.Status)

	// Times before the start are clamped to it.
	_, c := tr.Start(ctx, "tool", nil, agenttrace.WithStartTime(t0.Add(5*time.Second)))
	c.MarkFirstTokenAt(t0)
	c.EndAt(t0)
	cd := c.Data()
	require.Equal(t, t0.Add(5*time.Second), cd.EndedAt)
	require.Zero(t, cd.TimeToFirstToken())
	_, q := tr.StartPending(ctx, "tool", nil, agenttrace.WithStartTime(t0.Add(5*time.Second)))
	q.ActivateAt(t0)
	require.Equal(t, t0.Add(5*time.Second), q.Data().StartedAt)
	q.End()

	// Zero means now.
	_, z := tr.Start(ctx, "tool", nil)
	z.EndAt(time.Time{})
	require.False(t, z.Data().EndedAt.IsZero())

	inst.FailAt(errors.New("late"), t0.Add(10*time.Second))
	require.Equal(t, t0.Add(10*time.Second), inst.Data().EndedAt)
	inst.EndAt(t0) // already ended: nothing
	require.Equal(t, agenttrace.StatusFailed, inst.Status())

	_, inst2 := tr.StartInstance(context.Background(), agenttrace.WithInstanceStartTime(t0))
	inst2.EndAt(t0.Add(-time.Hour))
	require.Equal(t, t0, inst2.Data().EndedAt, "clamped to the start")

	var nilSpan *agenttrace.Span
	nilSpan.EndAt(t0)
	nilSpan.FailAt(errors.New("x"), t0)
	nilSpan.ActivateAt(t0)
	nilSpan.MarkFirstTokenAt(t0)
	var nilInst *agenttrace.Instance
	nilInst.EndAt(t0)
	nilInst.FailAt(errors.New("x"), t0)

	flush(t, tr)
	require.NoError(t, rec.CheckOrdering())
	require.NoError(t, rec.CheckComplete())
}

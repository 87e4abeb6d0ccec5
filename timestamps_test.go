package agenttrace_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/agenttrace/agenttrace"
	"github.com/agenttrace/agenttrace/agenttracetest"
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

// The explicit-time methods keep the state machine: forbidden transitions
// are counted no-ops.
func TestExplicitTimestampsIllegal(t *testing.T) {
	tr, _ := newTracer(t)
	t0 := time.Date(2026, 5, 6, 7, 8, 9, 0, time.UTC)
	illegal := func() uint64 { return tr.Stats().IllegalTransitions }

	_, p := tr.StartPending(context.Background(), "tool", nil, agenttrace.WithStartTime(t0))
	p.MarkFirstTokenAt(t0.Add(time.Second))
	require.EqualValues(t, 1, illegal(), "first token on a pending span")
	p.ActivateAt(t0.Add(time.Second))
	p.ActivateAt(t0.Add(2 * time.Second))
	require.EqualValues(t, 2, illegal(), "activate twice")
	require.Equal(t, t0.Add(time.Second), p.Data().StartedAt)
	p.EndAt(t0.Add(3 * time.Second))
	p.FailAt(errors.New("late"), t0.Add(4*time.Second))
	require.EqualValues(t, 3, illegal(), "fail after end")
	p.EndAt(t0.Add(5 * time.Second))
	require.EqualValues(t, 3, illegal(), "a second end is not counted, as with End")
	require.Equal(t, agenttrace.StatusComplete, p.Status())
	require.Equal(t, t0.Add(3*time.Second), p.Data().EndedAt)

	// Ending a pending span cancels it at t; failing one keeps the reason.
	_, q := tr.StartPending(context.Background(), "tool", nil, agenttrace.WithStartTime(t0))
	q.FailAt(errors.New("never ran"), t0.Add(time.Second))
	d := q.Data()
	require.Equal(t, agenttrace.StatusCancelled, d.Status)
	require.Equal(t, t0.Add(time.Second), d.EndedAt)
	require.Equal(t, "never ran", d.Error.Message)
	require.Zero(t, d.StartedAt)

	ctx, inst := tr.StartInstance(context.Background(), agenttrace.WithInstanceStartTime(t0))
	inst.EndAt(t0.Add(time.Second))
	inst.FailAt(errors.New("late"), t0.Add(2*time.Second))
	require.EqualValues(t, 4, illegal(), "fail after end")
	_, late := tr.Start(ctx, "tool", nil)
	require.Nil(t, late, "no span joins an ended instance")
}

// With explicit times, "ended before its instance" is judged by recording
// order: a span end recorded before the instance's end is delivered before
// it even when its time is later, and a span still open when the instance
// ends is ended by it (at the instance's time), whatever time its own
// later EndAt gives.
func TestExplicitTimestampsRecordingOrder(t *testing.T) {
	tr, rec := newUncheckedTracer(t)
	t0 := time.Date(2026, 5, 6, 7, 8, 9, 0, time.UTC)
	ctx, inst := tr.StartInstance(context.Background(), agenttrace.WithInstanceStartTime(t0))
	_, before := tr.Start(ctx, "tool", nil, agenttrace.WithName("before"), agenttrace.WithStartTime(t0))
	_, after := tr.Start(ctx, "tool", nil, agenttrace.WithName("after"), agenttrace.WithStartTime(t0))
	flush(t, tr) // both start records out first, so the ends are separate records

	before.EndAt(t0.Add(20 * time.Second)) // recorded first, later time
	inst.EndAt(t0.Add(10 * time.Second))
	after.EndAt(t0.Add(5 * time.Second)) // recorded last, earlier time
	flush(t, tr)

	var order []string
	for _, r := range rec.Records() {
		switch {
		case r.Kind == agenttrace.InstanceEnded:
			order = append(order, "instance")
		case r.Kind == agenttrace.SpanEnded:
			order = append(order, r.Span.Name)
		}
	}
	require.Equal(t, []string{"before", "after", "instance"}, order)
	require.Equal(t, t0.Add(10*time.Second), after.Data().EndedAt, "ended with its instance")
	require.Equal(t, agenttrace.ErrorTypeInstanceEnded, after.Data().Error.Type)
}

// Concurrent explicit ends against an instance end: every span whose end
// was recorded before the instance's end is delivered before it.
func TestExplicitTimestampsConcurrentOrdering(t *testing.T) {
	tr, rec := newUncheckedTracer(t)
	t0 := time.Date(2026, 5, 6, 7, 8, 9, 0, time.UTC)
	ctx, inst := tr.StartInstance(context.Background(), agenttrace.WithInstanceStartTime(t0))
	const n = 64
	spans := make([]*agenttrace.Span, n)
	for i := range spans {
		_, spans[i] = tr.Start(ctx, "tool", nil, agenttrace.WithStartTime(t0))
	}
	flush(t, tr) // the ends are records of their own
	var wg sync.WaitGroup
	for i, s := range spans {
		wg.Go(func() { s.EndAt(t0.Add(time.Duration(i) * time.Millisecond)) })
	}
	inst.EndAt(t0.Add(time.Hour))
	wg.Wait()
	flush(t, tr)
	// The span ends delivered before the instance's end are exactly those
	// its rollup counts (taken when it ended).
	endedBefore := 0
	for _, r := range rec.Records() {
		if r.Kind == agenttrace.InstanceEnded {
			break
		}
		if r.Kind == agenttrace.SpanEnded {
			endedBefore++
		}
	}
	require.EqualValues(t, endedBefore, rec.Instances()[0].Summary.Spans.Finished,
		"the instance's rollup counts exactly the spans delivered before its end")
}

// newUncheckedTracer is newTracer without the recorder's end-of-test
// CheckOrdering, which judges "ended before its instance" by timestamps:
// with explicit times, recording order decides.
func newUncheckedTracer(t *testing.T) (*agenttrace.Tracer, *agenttracetest.Recorder) {
	t.Helper()
	rec := agenttracetest.NewRecorder()
	tr, err := agenttrace.New(agenttrace.WithExporter(rec), agenttrace.WithFlushInterval(time.Hour))
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, tr.Shutdown(context.Background())) })
	return tr, rec
}

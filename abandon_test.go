package agenttrace_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/agenttrace/agenttrace"
)

// TestInstanceEndEndsOpenSpans: spans whose End was forgotten end with
// their instance, failed (or cancelled if pending) with a clear cause,
// counted, and delivered before the instance's end.
func TestInstanceEndEndsOpenSpans(t *testing.T) {
	tr, rec := newTracer(t)
	ctx, inst := tr.StartInstance(context.Background())
	actx, agent := tr.Start(ctx, "agent", nil)
	_, tool := tr.Start(actx, "tool", nil)
	_, queued := tr.StartPending(actx, "tool", nil)
	_, done := tr.Start(ctx, "llm", nil)
	done.End()

	inst.End()
	for _, s := range []*agenttrace.Span{agent, tool} {
		d := s.Data()
		require.Equal(t, agenttrace.StatusFailed, d.Status)
		require.Equal(t, agenttrace.ErrorTypeInstanceEnded, d.Error.Type)
		require.Contains(t, d.Error.Message, "instance ended first")
		require.Equal(t, inst.Data().EndedAt, d.EndedAt)
	}
	require.Equal(t, agenttrace.StatusCancelled, queued.Status())
	require.Equal(t, agenttrace.ErrorTypeInstanceEnded, queued.Data().Error.Type)
	require.Equal(t, agenttrace.StatusComplete, done.Status())

	sum := inst.Summary()
	require.EqualValues(t, 3, sum.SpansAbandoned)
	require.EqualValues(t, 2, sum.Spans.Failed)
	require.EqualValues(t, 1, sum.Spans.Cancelled)
	require.EqualValues(t, 0, sum.Spans.Active+sum.Spans.Pending)

	illegal := tr.Stats().IllegalTransitions
	tool.End() // the forgotten End, late: a no-op
	require.Equal(t, agenttrace.StatusFailed, tool.Status())
	require.Equal(t, illegal, tr.Stats().IllegalTransitions, "a late End is not an error")

	flush(t, tr)
	require.NoError(t, rec.CheckComplete())
	recs := rec.Records()
	last := recs[len(recs)-1]
	require.Equal(t, agenttrace.InstanceEnded, last.Kind)
	require.EqualValues(t, 3, last.Instance.Summary.SpansAbandoned)
}

// TestShutdownEndsOpenInstances: Shutdown fails the instances still
// running, after ending their open spans.
func TestShutdownEndsOpenInstances(t *testing.T) {
	tr, rec := newTracer(t)
	ctx, inst := tr.StartInstance(context.Background())
	_, s := tr.Start(ctx, "tool", nil)
	_, def := tr.Start(context.Background(), "tool", nil) // the default instance's
	require.NoError(t, tr.Shutdown(context.Background()))

	require.Equal(t, agenttrace.StatusFailed, inst.Status())
	require.Equal(t, agenttrace.ErrorTypeShutdown, inst.Data().Error.Type)
	require.Equal(t, agenttrace.StatusFailed, s.Status())
	require.Equal(t, agenttrace.ErrorTypeInstanceEnded, s.Data().Error.Type)
	require.Equal(t, agenttrace.StatusFailed, def.Status())
	require.NoError(t, rec.CheckComplete())
	require.NoError(t, rec.CheckOrdering())
}

// TestStartRacesInstanceEndConcurrentSafe: spans started while their
// instance ends either belong to it (their records come before its end)
// or are not started at all (a nil span, counted); no span record of an
// instance follows its end.
func TestStartRacesInstanceEndConcurrentSafe(t *testing.T) {
	tr, rec := newTracer(t)
	const rounds, starters = 200, 4
	var refused int
	for range rounds {
		ctx, inst := tr.StartInstance(context.Background())
		var wg sync.WaitGroup
		start := make(chan struct{})
		results := make([][]*agenttrace.Span, starters)
		for g := range starters {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				for range 20 {
					_, s := tr.Start(ctx, "tool", nil)
					results[g] = append(results[g], s)
					s.Fail(errors.New("done"))
				}
			}()
		}
		close(start)
		inst.End()
		wg.Wait()
		for _, ss := range results {
			for _, s := range ss {
				if s == nil {
					refused++
					continue
				}
				require.True(t, s.Status().Finished())
			}
		}
	}
	flush(t, tr)
	ended := map[agenttrace.ID]bool{}
	for i, r := range rec.Records() {
		switch {
		case r.Kind == agenttrace.InstanceEnded:
			ended[r.Instance.ID] = true
		case r.Instance == nil:
			require.False(t, ended[r.Span.InstanceID], "record %d: %s of span %s after its instance ended", i, r.Kind, r.Span.ID)
		}
	}
	require.GreaterOrEqual(t, tr.Stats().IllegalTransitions, uint64(refused), "refused starts are counted")
	t.Logf("%d of %d starts refused", refused, rounds*starters*20)
}

// slowPayload's encoding waits until released, holding a Start in the
// middle of its work.
type slowPayload struct{ entered, release chan struct{} }

func (p slowPayload) MarshalJSON() ([]byte, error) {
	p.entered <- struct{}{}
	<-p.release
	return []byte(`{"slow":true}`), nil
}

// TestStartDuringInstanceEnd: a Start still encoding its payload when its
// instance ends does not join the ended instance.
func TestStartDuringInstanceEnd(t *testing.T) {
	tr, rec := newTracer(t)
	ctx, inst := tr.StartInstance(context.Background())
	p := slowPayload{entered: make(chan struct{}), release: make(chan struct{})}
	got := make(chan *agenttrace.Span)
	go func() {
		_, s := tr.Start(ctx, "tool", p)
		got <- s
	}()
	<-p.entered
	inst.End()
	close(p.release)
	s := <-got
	require.Nil(t, s, "the span cannot join an instance that ended")
	flush(t, tr)
	for _, r := range rec.Records() {
		require.NotEqual(t, agenttrace.SpanStarted, r.Kind)
	}
	require.NotZero(t, tr.Stats().IllegalTransitions)
}

package agenttracetest_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/agenttrace/agenttrace"
	"github.com/agenttrace/agenttrace/agenttracetest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestHelpers(t *testing.T) {
	tr, rec := agenttracetest.New(t)
	ctx, inst := tr.StartInstance(context.Background())
	ctx2, agent := tr.Start(ctx, "agent", agenttrace.AgentInput{Name: "a"}, agenttrace.WithName("root"))
	_, llm := tr.Start(ctx2, "llm", agenttrace.LLMRequest{Model: "m"})
	llm.End()
	_, tool := tr.Start(ctx2, "tool", agenttrace.ToolInput{Name: "t"})
	tool.Fail(errors.New("x"))
	agent.End()
	inst.End()
	require.NoError(t, tr.Flush(context.Background()))

	require.Equal(t, "agent root complete\n  llm complete\n  tool failed\n", rec.Tree(inst.ID()))
	require.Len(t, rec.Spans(), 3)
	require.Len(t, rec.SpansOfType("tool"), 1)
	require.Len(t, rec.Children(agent.ID()), 2)
	require.Len(t, rec.Roots(inst.ID()), 1)
	s, ok := rec.Span(tool.ID())
	require.True(t, ok)
	require.Equal(t, agenttrace.StatusFailed, s.Status)
	require.Len(t, rec.Instances(), 1)
	require.NoError(t, rec.CheckOrdering())
	require.NoError(t, rec.CheckComplete())
	rec.Reset()
	require.Empty(t, rec.Records())
}

func TestWaitFor(t *testing.T) {
	tr, rec := agenttracetest.New(t, agenttrace.WithFlushInterval(5*time.Millisecond))
	_, s := tr.Start(context.Background(), "tool", nil)
	s.End()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	require.NoError(t, rec.WaitFor(ctx, func(r *agenttracetest.Recorder) bool { return len(r.Spans()) == 1 }))

	short, cancel2 := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel2()
	require.ErrorIs(t, rec.WaitFor(short, func(*agenttracetest.Recorder) bool { return false }), context.DeadlineExceeded)
}

func TestExportHook(t *testing.T) {
	tr, rec := agenttracetest.New(t)
	rec.SetExportHook(func(context.Context, []agenttrace.Record) error { return errors.New("refused") })
	_, s := tr.Start(context.Background(), "tool", nil)
	s.End()
	require.ErrorContains(t, tr.Flush(context.Background()), "refused")
	require.Empty(t, rec.Records())
	rec.SetExportHook(nil)
}

// Hand-built records for the ordering tests: instance 1 and 9, spans by
// one-byte IDs.
var (
	inst1 = agenttrace.ID{1}
	inst9 = agenttrace.ID{9}
	t0    = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
)

func spanRec(kind agenttrace.RecordKind, id, parent byte, st agenttrace.Status) agenttrace.Record {
	d := agenttrace.SpanData{ID: agenttrace.ID{id}, InstanceID: inst1, Type: "tool", Status: st}
	if parent != 0 {
		d.ParentID = agenttrace.ID{parent}
	}
	if st.Finished() {
		d.EndedAt = t0.Add(time.Second)
	}
	return agenttrace.Record{Kind: kind, Span: d}
}

func instRec(kind agenttrace.RecordKind, id agenttrace.ID, st agenttrace.Status) agenttrace.Record {
	d := &agenttrace.InstanceData{ID: id, Status: st, StartedAt: t0}
	if st.Finished() {
		d.EndedAt = t0.Add(2 * time.Second)
	}
	return agenttrace.Record{Kind: kind, Instance: d}
}

// TestCheckOrderingCatches feeds hand-built bad streams to the recorder.
func TestCheckOrderingCatches(t *testing.T) {
	const (
		started   = agenttrace.SpanStarted
		activated = agenttrace.SpanActivated
		ended     = agenttrace.SpanEnded
		active    = agenttrace.StatusActive
		pending   = agenttrace.StatusPending
		complete  = agenttrace.StatusComplete
	)
	start := instRec(agenttrace.InstanceStarted, inst1, active)
	end := instRec(agenttrace.InstanceEnded, inst1, complete)
	otherParent := spanRec(started, 2, 0, active)
	otherParent.Span.InstanceID = inst9
	lateEnd := spanRec(ended, 2, 0, complete) // ended at t0+1s, before the instance's t0+2s
	for name, tc := range map[string]struct {
		recs []agenttrace.Record
		want string
	}{
		"span before instance":   {[]agenttrace.Record{spanRec(started, 2, 0, active)}, "before its instance"},
		"child before parent":    {[]agenttrace.Record{start, spanRec(started, 3, 2, active)}, "before its parent"},
		"parent in other inst":   {[]agenttrace.Record{start, instRec(agenttrace.InstanceStarted, inst9, active), otherParent, spanRec(started, 3, 2, active)}, "parent in another instance"},
		"activated before start": {[]agenttrace.Record{start, spanRec(activated, 2, 0, active)}, "span_activated before its start"},
		"end before start":       {[]agenttrace.Record{start, spanRec(ended, 2, 0, complete)}, "span_ended before its start"},
		"after final end": {[]agenttrace.Record{start, spanRec(started, 2, 0, active),
			spanRec(ended, 2, 0, complete), spanRec(ended, 2, 0, complete)}, "after its final record"},
		"after coalesced start": {[]agenttrace.Record{start, spanRec(started, 2, 0, complete),
			spanRec(activated, 2, 0, active)}, "after its final record"},
		"started twice": {[]agenttrace.Record{start, spanRec(started, 2, 0, pending),
			spanRec(started, 2, 0, active)}, "started twice"},
		"end not final": {[]agenttrace.Record{start, spanRec(started, 2, 0, active),
			spanRec(ended, 2, 0, active)}, "ended with status active"},
		"instance ended twice":      {[]agenttrace.Record{start, end, end}, "ended twice"},
		"instance end before start": {[]agenttrace.Record{end}, "ended before it started"},
		"span end after instance end": {[]agenttrace.Record{start, spanRec(started, 2, 0, active), end, lateEnd},
			"arrived after the instance end"},
		"coalesced span after instance end": {[]agenttrace.Record{start, end, spanRec(started, 2, 0, complete)},
			"arrived after the instance end"},
		"instance record without data": {[]agenttrace.Record{{Kind: agenttrace.InstanceStarted}}, "without instance data"},
	} {
		t.Run(name, func(t *testing.T) {
			rec := agenttracetest.NewRecorder()
			require.NoError(t, rec.Export(context.Background(), tc.recs))
			require.ErrorContains(t, rec.CheckOrdering(), tc.want)
		})
	}
}

func TestCheckOrderingAccepts(t *testing.T) {
	rec := agenttracetest.NewRecorder()
	laterEnd := spanRec(agenttrace.SpanEnded, 3, 0, agenttrace.StatusComplete)
	laterEnd.Span.EndedAt = t0.Add(3 * time.Second) // ended after the instance: may follow its end
	require.NoError(t, rec.Export(context.Background(), []agenttrace.Record{
		instRec(agenttrace.InstanceStarted, inst1, agenttrace.StatusActive),
		spanRec(agenttrace.SpanStarted, 2, 0, agenttrace.StatusPending),
		spanRec(agenttrace.SpanStarted, 3, 0, agenttrace.StatusActive),
		spanRec(agenttrace.SpanStarted, 4, 2, agenttrace.StatusComplete),
		spanRec(agenttrace.SpanActivated, 2, 0, agenttrace.StatusActive),
		spanRec(agenttrace.SpanEnded, 2, 0, agenttrace.StatusFailed),
		instRec(agenttrace.InstanceEnded, inst1, agenttrace.StatusComplete),
		laterEnd,
	}))
	require.NoError(t, rec.CheckOrdering())
	require.NoError(t, rec.CheckComplete())
}

func TestCheckOrderingReportsEveryViolation(t *testing.T) {
	rec := agenttracetest.NewRecorder()
	require.NoError(t, rec.Export(context.Background(), []agenttrace.Record{
		spanRec(agenttrace.SpanStarted, 2, 0, agenttrace.StatusActive), // before its instance
		spanRec(agenttrace.SpanEnded, 5, 0, agenttrace.StatusComplete), // before its instance and its start
		instRec(agenttrace.InstanceEnded, inst1, agenttrace.StatusComplete),
	}))
	err := rec.CheckOrdering()
	require.Error(t, err)
	require.Len(t, err.(interface{ Unwrap() []error }).Unwrap(), 4, "%v", err)
}

func TestCheckComplete(t *testing.T) {
	tr, rec := agenttracetest.New(t)
	ctx, inst := tr.StartInstance(context.Background())
	_, s := tr.Start(ctx, "tool", nil)
	require.NoError(t, tr.Flush(context.Background()))
	err := rec.CheckComplete()
	require.ErrorContains(t, err, "is still active")
	require.Len(t, err.(interface{ Unwrap() []error }).Unwrap(), 2) // the span and the instance
	s.End()
	inst.End()
	require.NoError(t, tr.Flush(context.Background()))
	require.NoError(t, rec.CheckComplete())
	require.Equal(t, agenttrace.StatusComplete, rec.Instances()[0].Status, "Instances reports the latest state")
}

// fakeT records what New's cleanup reports.
type fakeT struct {
	errs     []string
	cleanups []func()
}

func (f *fakeT) Helper() {}
func (f *fakeT) Errorf(format string, args ...any) {
	f.errs = append(f.errs, fmt.Sprintf(format, args...))
}
func (f *fakeT) Cleanup(fn func()) { f.cleanups = append(f.cleanups, fn) }

func (f *fakeT) runCleanups() {
	for i := len(f.cleanups) - 1; i >= 0; i-- {
		f.cleanups[i]()
	}
}

func TestNewCleanup(t *testing.T) {
	ft := &fakeT{}
	tr, rec := agenttracetest.New(ft)
	_, s := tr.Start(context.Background(), "tool", nil)
	s.End()
	ft.runCleanups()
	require.Empty(t, ft.errs)
	require.Len(t, rec.Spans(), 1, "the cleanup flushes by shutting the tracer down")
	require.Len(t, rec.Instances(), 1)
	require.True(t, rec.Instances()[0].Default)
	require.Equal(t, agenttrace.StatusComplete, rec.Instances()[0].Status)
	_, s = tr.Start(context.Background(), "tool", nil)
	require.Nil(t, s, "the tracer is shut down")

	ft = &fakeT{}
	_, rec = agenttracetest.New(ft)
	require.NoError(t, rec.Export(context.Background(), []agenttrace.Record{spanRec(agenttrace.SpanStarted, 2, 0, agenttrace.StatusActive)}))
	ft.runCleanups()
	require.Len(t, ft.errs, 1)
	require.Contains(t, ft.errs[0], "before its instance")

	ft = &fakeT{}
	tr, _ = agenttracetest.New(ft, agenttrace.WithQueueLimits(-1, -1))
	if tr == nil {
		require.NotEmpty(t, ft.errs, "a bad option is reported")
	}
	ft.runCleanups()
}

func TestTreeOrder(t *testing.T) {
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tr, rec := agenttracetest.New(t, agenttrace.WithClock(func() time.Time { return base }))
	ctx, inst := tr.StartInstance(context.Background())
	ctx2, agent := tr.Start(ctx, "agent", nil, agenttrace.WithName("planner"))
	// Started last but created first: listed first.
	_, late := tr.Start(ctx2, "tool", nil, agenttrace.WithName("late"), agenttrace.WithStartTime(base.Add(2*time.Second)))
	_, b := tr.Start(ctx2, "tool", nil, agenttrace.WithName("b"), agenttrace.WithStartTime(base.Add(time.Second)))
	// Same creation time: first-seen order.
	_, c1 := tr.StartPending(ctx2, "llm", nil, agenttrace.WithName("c1"), agenttrace.WithStartTime(base.Add(time.Second)))
	_, early := tr.Start(ctx2, "chain", nil, agenttrace.WithStartTime(base.Add(-time.Second)))
	late.End()
	b.Fail(errors.New("no"))
	c1.Cancel("skipped")
	agent.End()
	_, second := tr.Start(ctx, "agent", nil) // a second root, still running
	require.NoError(t, tr.Flush(context.Background()))

	want := "agent planner complete\n" +
		"  chain active\n" +
		"  tool b failed\n" +
		"  llm c1 cancelled\n" +
		"  tool late complete\n" +
		"agent active\n"
	require.Equal(t, want, rec.Tree(inst.ID()))
	kids := rec.Children(agent.ID())
	require.Len(t, kids, 4)
	require.Equal(t, early.ID(), kids[0].ID)
	require.Equal(t, late.ID(), kids[3].ID)
	require.Empty(t, rec.Children(agenttrace.ID{}))
	require.Empty(t, rec.Children(late.ID()))
	roots := rec.Roots(inst.ID())
	require.Len(t, roots, 2)
	require.Equal(t, second.ID(), roots[1].ID)
	require.Empty(t, rec.Tree(agenttrace.ID{42}))
	early.End()
	second.End()
	inst.End()
}

func TestFinders(t *testing.T) {
	tr, rec := agenttracetest.New(t)
	ctx, inst := tr.StartInstance(context.Background(), agenttrace.WithUserID("u1"))
	_, p := tr.StartPending(ctx, "tool", agenttrace.ToolInput{Name: "search"})
	require.NoError(t, tr.Flush(context.Background()))
	got, ok := rec.Span(p.ID())
	require.True(t, ok)
	require.Equal(t, agenttrace.StatusPending, got.Status)
	p.Activate()
	require.NoError(t, tr.Flush(context.Background()))
	got, _ = rec.Span(p.ID())
	require.Equal(t, agenttrace.StatusActive, got.Status)
	p.End()
	_, l := tr.Start(ctx, "llm", nil)
	l.End()
	inst.End()
	require.NoError(t, tr.Flush(context.Background()))

	got, _ = rec.Span(p.ID())
	require.Equal(t, agenttrace.StatusComplete, got.Status, "Span reports the latest state")
	_, ok = rec.Span(agenttrace.ID{7})
	require.False(t, ok)
	spans := rec.Spans()
	require.Len(t, spans, 2)
	require.Equal(t, p.ID(), spans[0].ID, "first-seen order")
	require.Equal(t, l.ID(), spans[1].ID)
	require.Len(t, rec.SpansOfType("llm"), 1)
	require.Empty(t, rec.SpansOfType("agent"))
	require.Len(t, rec.FindSpans(func(s agenttrace.SpanData) bool { return s.Status == agenttrace.StatusComplete }), 2)
	insts := rec.Instances()
	require.Len(t, insts, 1)
	require.Equal(t, "u1", insts[0].UserID)
	require.Equal(t, agenttrace.StatusComplete, insts[0].Status)
	require.NotNil(t, insts[0].Summary)

	recs := rec.Records()
	n := len(recs)
	recs[0] = agenttrace.Record{}
	require.NotEqual(t, agenttrace.Record{}, rec.Records()[0], "Records returns a copy")
	require.Len(t, rec.Records(), n)
}

func TestExportHookStall(t *testing.T) {
	tr, rec := agenttracetest.New(t, agenttrace.WithFlushInterval(time.Millisecond))
	release := make(chan struct{})
	rec.SetExportHook(func(ctx context.Context, _ []agenttrace.Record) error {
		select {
		case <-release:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	})
	_, s := tr.Start(context.Background(), "tool", nil)
	s.End()
	short, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	hasSpan := func(r *agenttracetest.Recorder) bool { return len(r.Spans()) == 1 }
	require.ErrorIs(t, rec.WaitFor(short, hasSpan), context.DeadlineExceeded, "the stalled batch is not stored")
	close(release)
	long, cancel2 := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel2()
	require.NoError(t, rec.WaitFor(long, hasSpan))
}

// buildTree records a random span tree under ctx.
func buildTree(ctx context.Context, tr *agenttrace.Tracer, rng *rand.Rand, depth int) {
	types := []string{"agent", "llm", "tool", "chain"}
	typ := types[rng.IntN(len(types))]
	var span *agenttrace.Span
	pending := rng.IntN(5) == 0
	if pending {
		ctx, span = tr.StartPending(ctx, typ, agenttrace.ChainInput{Name: "pending"})
		switch rng.IntN(6) {
		case 0, 1:
			span.Cancel("not needed")
			return
		case 2:
			span.End() // ending a pending span cancels it
			return
		}
		span.Activate()
	} else {
		ctx, span = tr.Start(ctx, typ, agenttrace.ChainInput{Name: "step", Inputs: rng.IntN(100)})
	}
	if depth < 4 {
		var wg sync.WaitGroup
		for range rng.IntN(4) {
			seed := rng.Uint64()
			if rng.IntN(2) == 0 {
				wg.Go(func() { buildTree(ctx, tr, rand.New(rand.NewPCG(seed, 1)), depth+1) })
			} else {
				buildTree(ctx, tr, rand.New(rand.NewPCG(seed, 2)), depth+1)
			}
		}
		wg.Wait()
	}
	if rng.IntN(4) == 0 {
		span.Fail(errors.New("boom"))
	} else {
		span.SetResult(map[string]int{"n": depth})
		span.End()
	}
}

func runForest(t *testing.T, tr *agenttrace.Tracer) {
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(g), 7))
			for range 6 {
				if rng.IntN(3) == 0 {
					buildTree(context.Background(), tr, rng, 0) // default instance
					continue
				}
				ctx, inst := tr.StartInstance(context.Background())
				for range 1 + rng.IntN(3) {
					buildTree(ctx, tr, rng, 0)
				}
				inst.End()
			}
		})
	}
	wg.Wait()
}

func TestOrderingConcurrentSafe(t *testing.T) {
	rec := agenttracetest.NewRecorder()
	tr, err := agenttrace.New(agenttrace.WithExporter(rec),
		agenttrace.WithFlushInterval(time.Millisecond), agenttrace.WithBatchLimits(7, 1<<20))
	require.NoError(t, err)
	runForest(t, tr)
	require.NoError(t, tr.Shutdown(context.Background()))

	require.NoError(t, rec.CheckOrdering())
	require.NoError(t, rec.CheckComplete())
	st := tr.Stats()
	require.Zero(t, st.Dropped.Total())
	require.EqualValues(t, st.SpansStarted, len(rec.Spans()))
	require.Equal(t, st.SpansStarted, st.SpansEnded)
	e := st.Exporters[0]
	require.Equal(t, e.Recorded, e.Exported+e.Coalesced+e.Failed+e.Dropped.Total())
	require.EqualValues(t, len(rec.Records()), e.Exported)
}

// With a tiny queue and a slow exporter, records are dropped; what arrives
// must still be in order, and every record is accounted for.
func TestOrderingWithDropsConcurrentSafe(t *testing.T) {
	rec := agenttracetest.NewRecorder()
	rec.SetExportHook(func(ctx context.Context, _ []agenttrace.Record) error {
		select {
		case <-time.After(200 * time.Microsecond):
		case <-ctx.Done():
		}
		return nil
	})
	tr, err := agenttrace.New(agenttrace.WithExporter(rec), agenttrace.WithFlushInterval(time.Millisecond),
		agenttrace.WithQueueLimits(64, 1<<20), agenttrace.WithBatchLimits(7, 1<<20), agenttrace.WithPayloadLimit(4096))
	require.NoError(t, err)
	runForest(t, tr)
	var de *agenttrace.DeliveryError
	require.ErrorAs(t, tr.Shutdown(context.Background()), &de, "the drops are reported")

	require.NoError(t, rec.CheckOrdering())
	st := tr.Stats()
	require.NotZero(t, st.Dropped.Total(), "the test should make the queue overflow")
	e := st.Exporters[0]
	require.Equal(t, e.Recorded, e.Exported+e.Coalesced+e.Failed+e.Dropped.Total())
	require.EqualValues(t, len(rec.Records()), e.Exported)
	require.Zero(t, e.Queued)
}

// Spans ending on one goroutine while another ends their instance: a span
// that ended before the instance must be queued before the instance's end.
func TestInstanceEndRacesSpanEnds(t *testing.T) {
	runs := 300
	if testing.Short() {
		runs = 50
	}
	for i := range runs {
		rec := agenttracetest.NewRecorder()
		tr, err := agenttrace.New(agenttrace.WithExporter(rec), agenttrace.WithFlushInterval(time.Hour))
		require.NoError(t, err)
		ctx, inst := tr.StartInstance(context.Background())
		spans := make([]*agenttrace.Span, 50)
		for k := range spans {
			_, spans[k] = tr.Start(ctx, "tool", nil)
		}
		require.NoError(t, tr.Flush(ctx)) // starts delivered, so the ends are not coalesced
		done := make(chan struct{})
		go func() {
			defer close(done)
			for _, s := range spans {
				s.End()
			}
		}()
		for !spans[10].Status().Finished() {
			runtime.Gosched()
		}
		inst.End()
		<-done
		require.NoError(t, tr.Shutdown(context.Background()))
		require.NoError(t, rec.CheckOrdering(), "run %d", i)
	}
}

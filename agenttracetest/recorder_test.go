package agenttracetest_test

import (
	"context"
	"errors"
	"math/rand/v2"
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

// TestCheckOrderingCatches feeds hand-built bad streams to the recorder.
func TestCheckOrderingCatches(t *testing.T) {
	inst := agenttrace.ID{1}
	span := func(kind agenttrace.RecordKind, id, parent byte, st agenttrace.Status) agenttrace.Record {
		d := agenttrace.SpanData{ID: agenttrace.ID{id}, InstanceID: inst, Type: "tool", Status: st}
		if parent != 0 {
			d.ParentID = agenttrace.ID{parent}
		}
		return agenttrace.Record{Kind: kind, Span: d}
	}
	instRec := func(kind agenttrace.RecordKind, st agenttrace.Status) agenttrace.Record {
		return agenttrace.Record{Kind: kind, Instance: &agenttrace.InstanceData{ID: inst, Status: st}}
	}
	start := instRec(agenttrace.InstanceStarted, agenttrace.StatusActive)
	for name, tc := range map[string]struct {
		recs []agenttrace.Record
		want string
	}{
		"span before instance": {[]agenttrace.Record{span(agenttrace.SpanStarted, 2, 0, agenttrace.StatusActive)}, "before its instance"},
		"child before parent":  {[]agenttrace.Record{start, span(agenttrace.SpanStarted, 3, 2, agenttrace.StatusActive)}, "before its parent"},
		"end before start":     {[]agenttrace.Record{start, span(agenttrace.SpanEnded, 2, 0, agenttrace.StatusComplete)}, "before its start"},
		"after final": {[]agenttrace.Record{start, span(agenttrace.SpanStarted, 2, 0, agenttrace.StatusComplete),
			span(agenttrace.SpanEnded, 2, 0, agenttrace.StatusComplete)}, "after its final record"},
		"started twice": {[]agenttrace.Record{start, span(agenttrace.SpanStarted, 2, 0, agenttrace.StatusActive),
			span(agenttrace.SpanStarted, 2, 0, agenttrace.StatusActive)}, "started twice"},
		"end not final": {[]agenttrace.Record{start, span(agenttrace.SpanStarted, 2, 0, agenttrace.StatusActive),
			span(agenttrace.SpanEnded, 2, 0, agenttrace.StatusActive)}, "ended with status active"},
		"instance ended twice": {[]agenttrace.Record{start, instRec(agenttrace.InstanceEnded, agenttrace.StatusComplete),
			instRec(agenttrace.InstanceEnded, agenttrace.StatusComplete)}, "ended twice"},
		"instance end before start": {[]agenttrace.Record{instRec(agenttrace.InstanceEnded, agenttrace.StatusComplete)}, "ended before it started"},
	} {
		t.Run(name, func(t *testing.T) {
			rec := agenttracetest.NewRecorder()
			require.NoError(t, rec.Export(context.Background(), tc.recs))
			require.ErrorContains(t, rec.CheckOrdering(), tc.want)
		})
	}
}

// buildTree records a random span tree under ctx.
func buildTree(ctx context.Context, tr *agenttrace.Tracer, rng *rand.Rand, depth int) {
	types := []string{"agent", "llm", "tool", "chain"}
	typ := types[rng.IntN(len(types))]
	var span *agenttrace.Span
	pending := rng.IntN(5) == 0
	if pending {
		ctx, span = tr.StartPending(ctx, typ, agenttrace.ChainInput{Name: "pending"})
		if rng.IntN(3) == 0 {
			span.Cancel("not needed")
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
		agenttrace.WithQueueLimits(64, 1<<20), agenttrace.WithBatchLimits(8, 1<<20), agenttrace.WithPayloadLimit(4096))
	require.NoError(t, err)
	runForest(t, tr)
	require.NoError(t, tr.Shutdown(context.Background()))

	require.NoError(t, rec.CheckOrdering())
	st := tr.Stats()
	require.NotZero(t, st.Dropped.Total(), "the test should make the queue overflow")
	e := st.Exporters[0]
	require.Equal(t, e.Recorded, e.Exported+e.Coalesced+e.Failed+e.Dropped.Total())
	require.EqualValues(t, len(rec.Records()), e.Exported)
	require.Zero(t, e.Queued)
}

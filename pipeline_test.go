package agenttrace_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/agenttrace/agenttrace"
	"github.com/agenttrace/agenttrace/agenttracetest"
)

func TestCoalescing(t *testing.T) {
	tr, rec := newTracer(t)
	ctx := context.Background()

	_, short := tr.Start(ctx, "tool", agenttrace.ToolInput{Name: "quick"})
	short.SetResult(agenttrace.ToolOutput{Output: "ok"})
	short.End()
	_, long := tr.Start(ctx, "llm", agenttrace.LLMRequest{Model: "m"})
	_, pend := tr.StartPending(ctx, "chain", nil)
	pend.Activate()
	pend.End()
	flush(t, tr) // window 1 ends: long is still running
	long.End()
	flush(t, tr)

	require.Equal(t, []string{"instance_started",
		"span_started:tool:complete", // started and ended in one window: one record
		"span_started:llm:active",
		"span_started:chain:complete", // pending + activate + end: one record
		"span_ended:llm:complete",     // crossed a window: start, then end
	}, kinds(rec.Records()))
	recs := rec.Records()
	require.JSONEq(t, `{"output":"ok"}`, string(recs[1].Span.Result))
	st := tr.Stats()
	require.EqualValues(t, 3, st.Coalesced) // tool end, chain activate, chain end
	require.EqualValues(t, 8, st.Recorded)
	require.EqualValues(t, 5, st.Exported)
}

func TestPendingActivationCrossingWindows(t *testing.T) {
	tr, rec := newTracer(t)
	_, p := tr.StartPending(context.Background(), "tool", nil)
	flush(t, tr)
	p.Activate()
	flush(t, tr)
	p.End()
	flush(t, tr)
	require.Equal(t, []string{"instance_started", "span_started:tool:pending", "span_activated:tool:active",
		"span_ended:tool:complete"}, kinds(rec.Records()))
}

// A stalled exporter: the queue fills, drops are counted by reason, memory
// held stays within the caps, and every record is accounted for.
func TestAccountingWithStalledExporter(t *testing.T) {
	g := newGate()
	const maxRecs, maxBytes = 100, 64 << 10
	tr, err := agenttrace.New(agenttrace.WithExporter(g), agenttrace.WithQueueLimits(maxRecs, maxBytes),
		agenttrace.WithPayloadLimit(4096), agenttrace.WithFlushInterval(time.Millisecond))
	require.NoError(t, err)

	var wg sync.WaitGroup
	stop := make(chan struct{})
	var maxSeenRecs, maxSeenBytes int
	sampler := make(chan struct{})
	go func() {
		defer close(sampler)
		for {
			e := tr.Stats().Exporters[0]
			maxSeenRecs, maxSeenBytes = max(maxSeenRecs, e.Queued), max(maxSeenBytes, e.QueuedBytes)
			select {
			case <-stop:
				return
			default:
				time.Sleep(50 * time.Microsecond)
			}
		}
	}()
	for w := range 4 {
		wg.Go(func() {
			ctx, inst := tr.StartInstance(context.Background())
			for i := range 300 {
				pctx, parent := tr.Start(ctx, "agent", map[string]string{"blob": strings.Repeat("x", (i*37+w)%3000)})
				_, child := tr.Start(pctx, "tool", agenttrace.ToolInput{Name: "t"})
				child.End()
				parent.End()
			}
			inst.End()
		})
	}
	wg.Wait()
	close(stop)
	<-sampler
	require.LessOrEqual(t, maxSeenRecs, maxRecs)
	require.LessOrEqual(t, maxSeenBytes, maxBytes)

	g.open()
	require.NoError(t, tr.Flush(context.Background()))
	st := tr.Stats()
	e := st.Exporters[0]
	require.Equal(t, e.Recorded, e.Exported+e.Coalesced+e.Failed+e.Dropped.Total(), "%+v", e)
	require.NotZero(t, e.Dropped.QueueFull+e.Dropped.QueueBytes)
	require.NotZero(t, e.Dropped.Orphaned, "children and ends of dropped spans are dropped too")
	require.Zero(t, e.Queued)
	require.Zero(t, e.QueuedBytes)

	// What arrived is consistent: no end without its start, no orphan child.
	rec := agenttracetest.NewRecorder()
	require.NoError(t, rec.Export(context.Background(), g.records()))
	require.NoError(t, rec.CheckOrdering())
	requireUndelivered(t, tr)
}

// A batch full by bytes is exported at once, as one full by record count
// is, not at the next flush interval: records large enough to fill the
// batch byte limit long before its record limit would otherwise wait, and
// could fill the queue's byte limit meanwhile. Both ways of queueing bytes
// count: new records, and a span's end that grows its queued start record.
func TestBatchFullByBytesIsExportedAtOnce(t *testing.T) {
	big := strings.Repeat("x", 6<<10)
	for name, record := range map[string]func(ctx context.Context, tr *agenttrace.Tracer){
		"new records": func(ctx context.Context, tr *agenttrace.Tracer) {
			for range 4 {
				_, s := tr.Start(ctx, "tool", agenttrace.ToolInput{Name: "t", Arguments: map[string]any{"q": big}})
				s.End()
			}
		},
		"coalesced end": func(ctx context.Context, tr *agenttrace.Tracer) {
			var spans []*agenttrace.Span
			for range 4 {
				_, s := tr.Start(ctx, "tool", agenttrace.ToolInput{Name: "t"})
				spans = append(spans, s)
			}
			for _, s := range spans {
				s.SetResult(agenttrace.ToolOutput{Output: big})
				s.End()
			}
		},
	} {
		t.Run(name, func(t *testing.T) {
			g := newGate()
			tr, err := agenttrace.New(agenttrace.WithExporter(g), agenttrace.WithFlushInterval(time.Hour),
				agenttrace.WithBatchLimits(1000, 16<<10))
			require.NoError(t, err)
			ctx, inst := tr.StartInstance(context.Background())
			record(ctx, tr)
			select {
			case <-g.entered:
			case <-time.After(30 * time.Second): // a hang, not a speed limit
				t.Fatal("a batch full by bytes waited for the flush interval")
			}
			g.open()
			inst.End()
			require.NoError(t, tr.Shutdown(context.Background()))
			require.Zero(t, tr.Stats().Dropped.Total())
		})
	}
}

func TestBlockOnFull(t *testing.T) {
	g := newGate()
	tr, err := agenttrace.New(agenttrace.WithExporter(g), agenttrace.WithQueueLimits(8, 1<<20),
		agenttrace.WithBatchLimits(4, 1<<20), agenttrace.WithBlockOnFull(time.Minute))
	require.NoError(t, err)
	ctx, inst := tr.StartInstance(context.Background())
	// Fill the queue; the worker takes a batch and stalls in Export.
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 20 {
			_, s := tr.Start(ctx, "tool", nil)
			s.End()
		}
	}()
	<-g.entered
	select {
	case <-done:
		t.Fatal("producer should be blocked on the full queue")
	case <-time.After(20 * time.Millisecond):
	}
	g.open() // room is made: the producer proceeds
	<-done
	inst.End()
	require.NoError(t, tr.Shutdown(context.Background()))
	st := tr.Stats()
	require.Zero(t, st.Dropped.Total())
	require.EqualValues(t, 20, st.SpansEnded)
}

func TestBlockOnFullTimesOut(t *testing.T) {
	g := newGate()
	tr, err := agenttrace.New(agenttrace.WithExporter(g), agenttrace.WithQueueLimits(4, 1<<20),
		agenttrace.WithBatchLimits(2, 1<<20), agenttrace.WithBlockOnFull(5*time.Millisecond))
	require.NoError(t, err)
	for range 20 {
		_, s := tr.Start(context.Background(), "tool", nil)
		s.End()
	}
	require.NotZero(t, tr.Stats().Dropped.BlockTimeout)
	g.open()
	requireUndelivered(t, tr)
	e := tr.Stats().Exporters[0]
	require.Equal(t, e.Recorded, e.Exported+e.Coalesced+e.Failed+e.Dropped.Total())
}

// slowExporter sleeps in Export but honours ctx.
type slowExporter struct{ d time.Duration }

func (s slowExporter) Export(ctx context.Context, _ []agenttrace.Record) error {
	select {
	case <-time.After(s.d):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (slowExporter) Shutdown(ctx context.Context) error { return nil }

func TestFlushAndShutdownHonourDeadlines(t *testing.T) {
	tr, err := agenttrace.New(agenttrace.WithExporter(slowExporter{d: time.Minute}))
	require.NoError(t, err)
	for range 10 {
		_, s := tr.Start(context.Background(), "tool", nil)
		s.End()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	require.ErrorIs(t, tr.Flush(ctx), context.DeadlineExceeded)

	ctx2, cancel2 := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel2()
	err = tr.Shutdown(ctx2)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.Regexp(t, `\d+ records not exported`, err.Error())
	require.Equal(t, err, tr.Shutdown(context.Background()), "Shutdown is idempotent")
	goleak.VerifyNone(t)

	// The records left were dropped and counted, not lost silently.
	e := tr.Stats().Exporters[0]
	require.NotZero(t, e.Dropped.Shutdown+e.Failed)
	require.Equal(t, e.Recorded, e.Exported+e.Coalesced+e.Failed+e.Dropped.Total())
}

func TestFlushWaitsForAcknowledgement(t *testing.T) {
	tr, err := agenttrace.New(agenttrace.WithExporter(slowExporter{d: 20 * time.Millisecond}))
	require.NoError(t, err)
	_, s := tr.Start(context.Background(), "tool", nil)
	s.End()
	require.NoError(t, tr.Flush(context.Background()))
	require.EqualValues(t, 2, tr.Stats().Exported) // the default instance start and the span
	require.NoError(t, tr.Shutdown(context.Background()))
}

type failingExporter struct{ calls int }

func (f *failingExporter) Export(context.Context, []agenttrace.Record) error {
	f.calls++
	return fmt.Errorf("backend said no (call %d)", f.calls)
}
func (f *failingExporter) Shutdown(context.Context) error { return nil }

type panickingExporter struct{}

func (panickingExporter) Export(context.Context, []agenttrace.Record) error { panic("exporter bug") }
func (panickingExporter) Shutdown(context.Context) error                    { return nil }

func TestExportErrorsAreCountedReturnedAndLogged(t *testing.T) {
	var logs bytes.Buffer
	var mu sync.Mutex
	logger := slog.New(slog.NewTextHandler(&lockedWriter{w: &logs, mu: &mu}, nil))
	fe := &failingExporter{}
	tr, err := agenttrace.New(agenttrace.WithExporter(fe, panickingExporter{}), agenttrace.WithLogger(logger),
		agenttrace.WithLogInterval(time.Hour))
	require.NoError(t, err)
	for range 3 {
		_, s := tr.Start(context.Background(), "tool", nil)
		s.End()
		err := tr.Flush(context.Background())
		require.ErrorContains(t, err, "backend said no")
		require.ErrorContains(t, err, "panicked: exporter bug")
	}
	st := tr.Stats()
	require.NotZero(t, st.Failed)
	require.NotEmpty(t, st.LastError)
	require.Contains(t, st.Exporters[0].LastError, "backend said no")
	require.Contains(t, st.Exporters[1].LastError, "exporter bug")
	for _, e := range st.Exporters {
		require.Equal(t, e.Recorded, e.Exported+e.Coalesced+e.Failed+e.Dropped.Total())
	}
	requireUndelivered(t, tr)
	mu.Lock()
	defer mu.Unlock()
	// Rate-limited: one line per exporter within the interval, and one final
	// line at Shutdown with what came after.
	require.LessOrEqual(t, strings.Count(logs.String(), "export failed"), 4, logs.String())
	require.Contains(t, logs.String(), "export failed")
	require.Contains(t, logs.String(), "records dropped", "spans whose start failed are dropped as orphans")
}

type lockedWriter struct {
	w  *bytes.Buffer
	mu *sync.Mutex
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func TestDropsAreLogged(t *testing.T) {
	var logs bytes.Buffer
	var mu sync.Mutex
	g := newGate()
	tr, err := agenttrace.New(agenttrace.WithExporter(g), agenttrace.WithQueueLimits(4, 1<<20),
		agenttrace.WithLogger(slog.New(slog.NewTextHandler(&lockedWriter{w: &logs, mu: &mu}, nil))))
	require.NoError(t, err)
	for range 50 {
		_, s := tr.Start(context.Background(), "tool", nil)
		s.End()
	}
	g.open()
	requireUndelivered(t, tr)
	mu.Lock()
	defer mu.Unlock()
	require.Contains(t, logs.String(), "records dropped")
	require.Contains(t, logs.String(), "queue_full=")
}

func TestExportErrorDoesNotPoisonLaterRecords(t *testing.T) {
	rec := agenttracetest.NewRecorder()
	fail := true
	rec.SetExportHook(func(context.Context, []agenttrace.Record) error {
		if fail {
			return errors.New("once")
		}
		return nil
	})
	tr, err := agenttrace.New(agenttrace.WithExporter(rec), agenttrace.WithFlushInterval(time.Hour))
	require.NoError(t, err)
	_, lost := tr.Start(context.Background(), "tool", nil)
	require.Error(t, tr.Flush(context.Background()))
	fail = false
	lost.End() // its start never arrived: dropped as an orphan
	_, s := tr.Start(context.Background(), "tool", nil)
	s.End()
	requireUndelivered(t, tr)
	require.NoError(t, rec.CheckOrdering())
	require.Len(t, rec.Spans(), 1, "the span started after the failure arrives, in a new default instance")
	require.NotEqual(t, lost.Instance().ID(), rec.Spans()[0].InstanceID)
}

// partialExporter fails the records of spans named "bad".
type partialExporter struct {
	mu   sync.Mutex
	recs []agenttrace.Record
}

func (p *partialExporter) Export(_ context.Context, recs []agenttrace.Record) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	var failed []int
	for i, r := range recs {
		if r.Span.Name == "bad" {
			failed = append(failed, i, i, -1, len(recs)) // duplicates and bad indexes are ignored
			continue
		}
		p.recs = append(p.recs, r)
	}
	if failed == nil {
		return nil
	}
	return &agenttrace.PartialError{Failed: failed, Err: errors.New("rejected")}
}

func (p *partialExporter) Shutdown(context.Context) error { return nil }

func TestPartialExportFailure(t *testing.T) {
	pe := &partialExporter{}
	tr, err := agenttrace.New(agenttrace.WithExporter(pe), agenttrace.WithFlushInterval(time.Hour))
	require.NoError(t, err)
	ctx, inst := tr.StartInstance(context.Background())
	_, good := tr.Start(ctx, "tool", nil)
	badCtx, bad := tr.Start(ctx, "tool", nil, agenttrace.WithName("bad"))
	_, child := tr.Start(badCtx, "tool", nil)
	err = tr.Flush(context.Background())
	var partial *agenttrace.PartialError
	require.ErrorAs(t, err, &partial)
	require.ErrorContains(t, err, "rejected")
	good.End()
	bad.End()
	child.End()
	inst.End()
	requireUndelivered(t, tr)

	st := tr.Stats().Exporters[0]
	require.EqualValues(t, 1, st.Failed, "only the bad span's start failed")
	require.EqualValues(t, 1, st.Dropped.Orphaned, "the bad span's end")
	require.Equal(t, st.Recorded, st.Exported+st.Coalesced+st.Failed+st.Dropped.Total())
	for _, r := range pe.recs {
		require.NotEqual(t, bad.ID(), r.Span.ID)
	}
	// The child's start was accepted with the batch, so its end follows.
	require.Len(t, pe.recs, 6, "instance, good and child: start and end each")
}

// requireUndelivered shuts tr down and checks that the error reports, for
// each exporter that lost records, exactly the counts in its Stats.
func requireUndelivered(t *testing.T, tr *agenttrace.Tracer) {
	t.Helper()
	err := tr.Shutdown(context.Background())
	require.Error(t, err)
	st := tr.Stats()
	require.Zero(t, st.Queued, "every record is settled when Shutdown returns")
	for _, e := range st.Exporters {
		require.Equal(t, e.Recorded, e.Exported+e.Coalesced+e.Failed+e.Dropped.Total(), "%+v", e)
		if e.Failed+e.Dropped.Total() == 0 {
			continue
		}
		var found bool
		for _, one := range unjoin(err) {
			var de *agenttrace.DeliveryError
			if errors.As(one, &de) && de.Exporter == e.Name {
				require.Equal(t, e.Failed, de.Failed)
				require.Equal(t, e.Dropped, de.Dropped)
				require.Equal(t, e.LastError, de.LastError)
				require.Contains(t, de.Error(), fmt.Sprintf("%d records not delivered", e.Failed+e.Dropped.Total()))
				found = true
			}
		}
		require.True(t, found, "Shutdown reports what %s did not deliver: %v", e.Name, err)
	}
}

func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

// scribbler is a synchronous exporter that does what the Exporter contract
// lets it: it keeps copies of the records, and appends to and overwrites
// the slice it was given before returning.
type scribbler struct {
	kept      []agenttrace.Record
	lens      []int
	spareCaps int
}

func (s *scribbler) Export(_ context.Context, recs []agenttrace.Record) error {
	s.kept = append(s.kept, recs...)
	s.lens = append(s.lens, len(recs))
	if cap(recs) != len(recs) {
		s.spareCaps++
	}
	recs = append(recs, agenttrace.Record{Kind: agenttrace.SpanEnded})
	for i := range recs {
		recs[i].Span.Name = "scribbled"
		recs[i].Span.Payload = nil
	}
	return nil
}

func (s *scribbler) Shutdown(context.Context) error { return nil }

// A synchronous exporter gets the queue's records where they lie: each
// batch with no spare capacity, so that appending to it cannot reach the
// next batch, and what it does to the slice reaches no other batch and no
// record it kept.
func TestSyncExporterBatchesAreItsOwn(t *testing.T) {
	exp := &scribbler{}
	tr, err := agenttrace.New(agenttrace.WithExporter(exp), agenttrace.WithFlushInterval(time.Hour),
		agenttrace.WithBatchLimits(4, 1<<20), agenttrace.WithLogger(slog.New(slog.DiscardHandler)))
	require.NoError(t, err)
	ctx, inst := tr.StartInstance(context.Background())
	for round := range 3 {
		for i := range 7 {
			_, s := tr.Start(ctx, "tool", agenttrace.ToolInput{Name: "t"}, agenttrace.WithName(fmt.Sprintf("span %d.%d", round, i)))
			s.End()
		}
		flush(t, tr)
	}
	inst.End()
	require.NoError(t, tr.Shutdown(context.Background()))

	var names []string
	for _, r := range exp.kept {
		if r.Instance == nil {
			require.JSONEq(t, `{"tool_name":"t"}`, string(r.Span.Payload), r.Span.Name)
			if r.Kind == agenttrace.SpanStarted { // a span whose start left before its end has two records
				names = append(names, r.Span.Name)
			}
		}
	}
	var want []string
	for round := range 3 {
		for i := range 7 {
			want = append(want, fmt.Sprintf("span %d.%d", round, i))
		}
	}
	require.Equal(t, want, names)
	require.Zero(t, exp.spareCaps)
	for _, n := range exp.lens {
		require.LessOrEqual(t, n, 4)
	}
	require.Greater(t, len(exp.lens), 6, "batches of at most 4")
}

package agenttrace_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/agenttrace/agenttrace"
	"github.com/agenttrace/agenttrace/agenttracetest"
)

// myErr is an error type whose nil pointer an exporter may return by
// mistake as a non-nil error.
type myErr struct{ msg string }

func (e *myErr) Error() string { return e.msg } // panics on a nil receiver

// typedNilExporter returns a nil *myErr as its error.
type typedNilExporter struct{}

func (typedNilExporter) Export(context.Context, []agenttrace.Record) error {
	var e *myErr
	return e
}
func (typedNilExporter) Shutdown(context.Context) error { return nil }

// nastyErr panics in every method errors and fmt may call.
type nastyErr struct{}

func (nastyErr) Error() string   { panic("Error exploded") }
func (nastyErr) Unwrap() error   { panic("Unwrap exploded") }
func (nastyErr) Is(error) bool   { panic("Is exploded") }
func (nastyErr) As(any) bool     { panic("As exploded") }
func (nastyErr) Timeout() bool   { panic("Timeout exploded") }
func (nastyErr) Temporary() bool { panic("Temporary exploded") }

type nastyExporter struct{}

func (nastyExporter) Export(context.Context, []agenttrace.Record) error { return nastyErr{} }
func (nastyExporter) Shutdown(context.Context) error                    { panic("Shutdown exploded") }

// appendingExporter appends to the batch it was given, which must not
// touch another batch.
type appendingExporter struct {
	rec *agenttracetest.Recorder
}

func (a appendingExporter) Export(ctx context.Context, recs []agenttrace.Record) error {
	if err := a.rec.Export(ctx, recs); err != nil {
		return err
	}
	_ = append(recs, agenttrace.Record{Kind: agenttrace.SpanEnded}, agenttrace.Record{Kind: agenttrace.InstanceEnded})
	return nil
}
func (appendingExporter) Shutdown(context.Context) error { return nil }

// Exporters cannot crash the host: a typed-nil error, an error whose
// methods panic, a panicking Shutdown, an exporter that appends to its
// batch. Each is counted and reported; Stats keeps working.
func TestExportersCannotCrashTheHost(t *testing.T) {
	rec := agenttracetest.NewRecorder()
	tr, err := agenttrace.New(agenttrace.WithExporter(typedNilExporter{}, nastyExporter{}, appendingExporter{rec: rec}),
		agenttrace.WithFlushInterval(time.Hour), agenttrace.WithBatchLimits(3, 1<<20), agenttrace.WithLogger(slog.New(slog.DiscardHandler)))
	require.NoError(t, err)
	ctx, run := tr.StartInstance(context.Background())
	for range 10 {
		c, s := tr.Start(ctx, "agent", nil)
		_, child := tr.Start(c, "tool", nil)
		child.End()
		s.End()
	}
	run.End()
	err = tr.Flush(context.Background())
	require.ErrorContains(t, err, "returned a nil *agenttrace_test.myErr")
	require.ErrorContains(t, err, "Error method panicked")
	st := tr.Stats() // would panic on the typed nil
	require.Contains(t, st.Exporters[0].LastError, "nil *agenttrace_test.myErr")
	require.Contains(t, st.Exporters[1].LastError, "Error exploded")
	require.NotZero(t, st.Exporters[0].Failed)
	require.NotZero(t, st.Exporters[1].Failed)
	require.Zero(t, st.Exporters[2].Failed)

	err = tr.Shutdown(context.Background())
	require.ErrorContains(t, err, "panicked in Shutdown: Shutdown exploded")
	require.NoError(t, rec.CheckOrdering(), "appending to one batch did not corrupt the next")
	require.Len(t, rec.Records(), int(tr.Stats().Exporters[2].Exported))
	for _, e := range tr.Stats().Exporters {
		require.Equal(t, e.Recorded, e.Exported+e.Coalesced+e.Failed+e.Dropped.Total(), "%+v", e)
	}
}

// WithQueueLimits beyond what the packed counter holds is refused at New.
func TestQueueLimitsValidated(t *testing.T) {
	for _, lim := range [][2]int{{agenttrace.MaxQueueRecords + 1, 1 << 20}, {1 << 24, 1 << 20}, {1000, agenttrace.MaxQueueBytes + 1}} {
		tr, err := agenttrace.New(agenttrace.WithQueueLimits(lim[0], lim[1]))
		require.ErrorIs(t, err, agenttrace.ErrInvalidOption, "%v", lim)
		require.Nil(t, tr)
	}
	tr, err := agenttrace.New(agenttrace.WithQueueLimits(agenttrace.MaxQueueRecords, 1<<30), agenttrace.WithExporter(agenttracetest.NewRecorder()))
	require.NoError(t, err)
	_, s := tr.Start(context.Background(), "tool", nil)
	s.End()
	require.NoError(t, tr.Flush(context.Background()))
	require.EqualValues(t, 2, tr.Stats().Exported)
	require.NoError(t, tr.Shutdown(context.Background()))
}

// Losses are logged by default through slog.Default(); WithLogger
// replaces it, and a discard logger silences it.
func TestLossesLoggedByDefault(t *testing.T) {
	var buf bytes.Buffer
	var mu sync.Mutex
	prev := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(&lockedWriter{w: &buf, mu: &mu}, nil)))
	t.Cleanup(func() { slog.SetDefault(prev) })

	run := func(opts ...agenttrace.Option) {
		tr, err := agenttrace.New(append([]agenttrace.Option{agenttrace.WithExporter(&failingExporter{})}, opts...)...)
		require.NoError(t, err)
		_, s := tr.Start(context.Background(), "tool", nil)
		s.End()
		_ = tr.Flush(context.Background())
		_ = tr.Shutdown(context.Background())
	}
	run()
	mu.Lock()
	require.Contains(t, buf.String(), "export failed")
	require.Contains(t, buf.String(), "backend said no")
	buf.Reset()
	mu.Unlock()

	run(agenttrace.WithLogger(slog.New(slog.DiscardHandler)))
	mu.Lock()
	require.Empty(t, buf.String(), "a discard logger silences it")
	mu.Unlock()
}

// An instance that ends is exported at once, not at the next flush tick.
func TestInstanceEndExportsPromptly(t *testing.T) {
	tr, rec := newTracer(t) // an hour between flushes
	ctx, run := tr.StartInstance(context.Background())
	_, s := tr.Start(ctx, "tool", nil)
	s.End()
	run.End()
	require.Eventually(t, func() bool { return len(rec.Records()) == 3 }, 30*time.Second, time.Millisecond,
		"exported without Flush")
}

// asyncExporter reports records later: it holds those whose span is
// pending, delivers the rest from another goroutine, and fails records of
// type "bad".
type asyncExporter struct {
	mu      sync.Mutex
	held    []heldRec
	wg      sync.WaitGroup
	stopped chan struct{}
}

type heldRec struct {
	b *agenttrace.Batch
	i int
}

func (a *asyncExporter) Export(context.Context, []agenttrace.Record) error {
	return errors.New("not called: the pipeline uses ExportAsync")
}

func (a *asyncExporter) ExportAsync(ctx context.Context, b *agenttrace.Batch) {
	a.wg.Go(func() {
		for i := range b.Records {
			r := &b.Records[i]
			switch {
			case r.Kind == agenttrace.SpanStarted && r.Span.Status == agenttrace.StatusPending:
				b.Hold(i)
				a.mu.Lock()
				a.held = append(a.held, heldRec{b, i})
				a.mu.Unlock()
			case r.Span.Type == "bad":
				b.Done(i, errors.New("bad type"))
			default:
				b.Done(i, nil)
			}
		}
	})
}

func (a *asyncExporter) release() {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, h := range a.held {
		h.b.Done(h.i, nil)
	}
	a.held = nil
}

func (a *asyncExporter) Shutdown(ctx context.Context) error {
	a.wg.Wait()
	return nil
}

// The asynchronous contract: Flush waits for every record to be done or
// held; held records count in Held and Queued, not Exported, until done;
// failures reported later count and reach Flush; what is left at Shutdown
// is dropped and counted.
func TestAsyncExporterContract(t *testing.T) {
	a := &asyncExporter{}
	tr, err := agenttrace.New(agenttrace.WithExporter(a), agenttrace.WithFlushInterval(time.Hour),
		agenttrace.WithLogger(slog.New(slog.DiscardHandler)), agenttrace.WithSpanTypes(agenttrace.SpanType{Name: "bad"}))
	require.NoError(t, err)
	ctx, run := tr.StartInstance(context.Background())
	_, p := tr.StartPending(ctx, "tool", nil)
	_, s := tr.Start(ctx, "tool", nil)
	s.End()
	_, bad := tr.Start(ctx, "bad", nil)
	bad.End()
	err = tr.Flush(context.Background())
	var pe *agenttrace.PartialError
	require.ErrorAs(t, err, &pe)
	require.ErrorContains(t, err, "bad type")
	st := tr.Stats()
	require.Equal(t, 1, st.Held)
	require.Equal(t, 1, st.Queued)
	require.EqualValues(t, 2, st.Exported, "instance start and s; not the held one")
	require.EqualValues(t, 1, st.Failed)
	require.Equal(t, st.Recorded, st.Exported+st.Coalesced+st.Failed+st.Dropped.Total()+uint64(st.Queued))

	a.release()
	st = tr.Stats()
	require.Zero(t, st.Held)
	require.EqualValues(t, 3, st.Exported)
	require.NoError(t, tr.Flush(context.Background()), "errors are returned once")

	// Held at Shutdown: dropped, counted, reported.
	p.End() // a pending span's end cancels it
	_, p2 := tr.StartPending(ctx, "tool", nil)
	_ = p2
	run.End()
	err = tr.Shutdown(context.Background())
	var de *agenttrace.DeliveryError
	require.ErrorAs(t, err, &de)
	st = tr.Stats()
	require.Zero(t, st.Queued)
	require.EqualValues(t, 1, st.Dropped.Shutdown, "p2's start, still held")
	require.Equal(t, st.Recorded, st.Exported+st.Coalesced+st.Failed+st.Dropped.Total())
}

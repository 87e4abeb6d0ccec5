package agenttrace_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/agenttrace/agenttrace"
	"github.com/agenttrace/agenttrace/agenttracetest"
)

// newTracer returns a tracer with a recorder and a long flush interval, so
// tests control batch windows with Flush.
func newTracer(t *testing.T, opts ...agenttrace.Option) (*agenttrace.Tracer, *agenttracetest.Recorder) {
	t.Helper()
	return agenttracetest.New(t, append([]agenttrace.Option{agenttrace.WithFlushInterval(time.Hour)}, opts...)...)
}

func flush(t *testing.T, tr *agenttrace.Tracer) {
	t.Helper()
	require.NoError(t, tr.Flush(context.Background()))
}

// kinds lists "kind:type:status" for the span records, in order.
func kinds(recs []agenttrace.Record) []string {
	var out []string
	for _, r := range recs {
		if r.Instance != nil {
			out = append(out, r.Kind.String())
			continue
		}
		out = append(out, r.Kind.String()+":"+r.Span.Type+":"+r.Span.Status.String())
	}
	return out
}

// fakeClock is a clock tests move by hand.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// gate is an exporter whose Export blocks until released (or ctx ends).
type gate struct {
	release chan struct{}
	once    sync.Once
	mu      sync.Mutex
	recs    []agenttrace.Record
	entered chan struct{}
}

func newGate() *gate {
	return &gate{release: make(chan struct{}), entered: make(chan struct{}, 1)}
}

func (g *gate) Export(ctx context.Context, recs []agenttrace.Record) error {
	select {
	case g.entered <- struct{}{}:
	default:
	}
	select {
	case <-g.release:
	case <-ctx.Done():
		return ctx.Err()
	}
	g.mu.Lock()
	g.recs = append(g.recs, recs...)
	g.mu.Unlock()
	return nil
}

func (g *gate) Shutdown(context.Context) error { return nil }
func (g *gate) open()                          { g.once.Do(func() { close(g.release) }) }

func (g *gate) records() []agenttrace.Record {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]agenttrace.Record(nil), g.recs...)
}

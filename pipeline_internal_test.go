package agenttrace

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

type discardExporter struct{}

func (discardExporter) Export(context.Context, []Record) error { return nil }
func (discardExporter) Shutdown(context.Context) error         { return nil }

// slowExporter takes a while over every batch, so queues fill up.
type slowExporter struct{}

func (slowExporter) Export(context.Context, []Record) error {
	time.Sleep(2 * time.Millisecond)
	return nil
}
func (slowExporter) Shutdown(context.Context) error { return nil }

// Under concurrent producers, with coalescing in place and queue-full drops,
// every record is accounted for.
func TestCountsUnderConcurrency(t *testing.T) {
	tr, err := New(WithExporter(slowExporter{}), WithExporter(discardExporter{}), WithQueueLimits(2000, 1<<20), WithBatchLimits(100, 1<<20))
	require.NoError(t, err)
	ctx := context.Background()
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			ictx, inst := tr.StartInstance(ctx)
			for i := range 3000 {
				c, s := tr.Start(ictx, TypeAgent, nil)
				_, p := tr.StartPending(c, TypeTool, nil)
				if (i+g)%3 == 0 {
					p.Activate()
				}
				p.End()
				s.End()
			}
			inst.End()
		})
	}
	wg.Wait()
	var de *DeliveryError
	require.ErrorAs(t, tr.Shutdown(ctx), &de, "the drops are reported")
	require.NotZero(t, de.Dropped.Total())
	st := tr.Stats()
	require.Equal(t, st.Recorded, st.Exported+st.Coalesced+st.Failed+st.Dropped.Total(), "%+v", st)
	require.NotZero(t, st.Dropped.Total(), "the queue filled up at times")
}

// A burst grows the queue's buffers (here while the exporter is stalled);
// once the records are exported and takes are small again, the buffers
// are let go and regrow to what the records need, so that the burst's
// memory is not held for the tracer's life.
func TestBuffersShrinkAfterBurst(t *testing.T) {
	release := make(chan struct{})
	var once sync.Once
	open := func() { once.Do(func() { close(release) }) }
	defer open()
	tr, err := New(WithExporter(gatedExporter(release)), WithBatchLimits(8, 1<<20), WithFlushInterval(time.Hour))
	require.NoError(t, err)
	defer tr.Shutdown(context.Background())
	ctx := context.Background()
	q := tr.queues[0]
	caps := func() (int, int) {
		q.buf.mu.Lock()
		defer q.buf.mu.Unlock()
		return cap(q.buf.recs.recs), cap(q.buf.spare.recs)
	}
	for range 3000 {
		_, s := tr.Start(ctx, TypeTool, nil)
		s.End()
	}
	grown, _ := caps()
	require.GreaterOrEqual(t, grown, 2000, "the burst waits in the buffer")
	open()
	require.NoError(t, tr.Flush(ctx))
	for range 3 {
		for range 4 {
			_, s := tr.Start(ctx, TypeTool, nil)
			s.End()
		}
		require.NoError(t, tr.Flush(ctx))
	}
	recs, spare := caps()
	require.LessOrEqual(t, max(recs, spare), 16, "the buffers regrew to the small takes")
	require.Zero(t, tr.Stats().Dropped.Total())
}

// gatedExporter is an exporter whose Export waits until release is closed
// (or its context ends).
type gatedExporter <-chan struct{}

func (g gatedExporter) Export(ctx context.Context, _ []Record) error {
	select {
	case <-g:
	case <-ctx.Done():
	}
	return nil
}
func (gatedExporter) Shutdown(context.Context) error { return nil }

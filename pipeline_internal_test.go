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

func seqs(recs []Record) []uint64 {
	out := make([]uint64, len(recs))
	for i := range recs {
		out[i] = recs[i].seq
	}
	return out
}

// A take's records carry consecutive sequence numbers and are placed
// directly; anything else is merged by comparison, still in order.
func TestPlace(t *testing.T) {
	q := newQueue(&Tracer{}, 0, discardExporter{})
	mk := func(ns ...uint64) []Record {
		l := make([]Record, len(ns))
		for i, n := range ns {
			l[i] = Record{Kind: SpanStarted, seq: n}
		}
		return l
	}
	out := q.place([][]Record{mk(2, 5), mk(1, 3, 4), nil}, 5)
	require.Equal(t, []uint64{1, 2, 3, 4, 5}, seqs(out))
	require.Equal(t, uint64(6), q.nextSeq)
	require.Zero(t, q.mergeFallbacks)
	clear(out)

	// A gap (7 is missing): the fallback merge keeps the order.
	out = q.place([][]Record{mk(6, 9), mk(8)}, 3)
	require.Equal(t, []uint64{6, 8, 9}, seqs(out))
	require.Equal(t, uint64(10), q.nextSeq)
	require.Equal(t, 1, q.mergeFallbacks)
	clear(out)

	// A duplicate number also falls back.
	out = q.place([][]Record{mk(10, 11), mk(11)}, 3)
	require.Equal(t, []uint64{10, 11, 11}, seqs(out))
	require.Equal(t, 2, q.mergeFallbacks)
}

// Under concurrent producers, with coalescing in place and queue-full drops,
// every take is placed directly: the sequence numbers stay dense.
func TestPlaceDenseUnderConcurrency(t *testing.T) {
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
	for _, q := range tr.queues {
		require.Zero(t, q.mergeFallbacks, q.name)
	}
	st := tr.Stats()
	require.Equal(t, st.Recorded, st.Exported+st.Coalesced+st.Failed+st.Dropped.Total(), "%+v", st)
	require.NotZero(t, st.Dropped.Total(), "the queue filled up at times")
}

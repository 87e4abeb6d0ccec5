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

package agenttracetest_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/agenttrace/agenttrace"
	"github.com/agenttrace/agenttrace/agenttracetest"
)

func TestProbeDrops(t *testing.T) {
	for i := 0; i < 30; i++ {
		rec := agenttracetest.NewRecorder()
		var n atomic.Int64
		rec.SetExportHook(func(ctx context.Context, _ []agenttrace.Record) error {
			time.Sleep(time.Duration(rand.IntN(300)) * time.Microsecond)
			if n.Add(1)%(int64(i%5)+3) == 0 && i%2 == 0 {
				return errors.New("x")
			}
			return nil
		})
		opts := []agenttrace.Option{agenttrace.WithExporter(rec), agenttrace.WithFlushInterval(time.Millisecond),
			agenttrace.WithQueueLimits(64, 1<<20), agenttrace.WithBatchLimits(7, 1<<20)}
		if i%3 == 0 {
			opts = append(opts, agenttrace.WithBlockOnFull(100*time.Microsecond))
		}
		tr, err := agenttrace.New(opts...)
		require.NoError(t, err)
		runForest(t, tr)
		_ = tr.Shutdown(context.Background())
		require.NoError(t, rec.CheckOrdering())
		st := tr.Stats()
		e := st.Exporters[0]
		if i < 3 {
			t.Logf("%+v", e)
		}
		require.Equal(t, e.Recorded, e.Exported+e.Coalesced+e.Failed+e.Dropped.Total())
		require.EqualValues(t, len(rec.Records()), e.Exported)
	}
}

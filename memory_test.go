package agenttrace_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/agenttrace/agenttrace"
)

func liveHeap() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// TestByteCapBoundsErrorMessages: with the exporter stalled, spans failing
// with 64 KiB error messages of their own keep the live heap within the
// queue's byte cap (plus per-record bookkeeping): messages are clipped and
// every byte a record holds is charged.
func TestByteCapBoundsErrorMessages(t *testing.T) {
	const maxBytes = 8 << 20
	g := newGate()
	tr, err := agenttrace.New(agenttrace.WithExporter(g), agenttrace.WithFlushInterval(time.Hour),
		agenttrace.WithQueueLimits(1<<20, maxBytes))
	require.NoError(t, err)
	defer func() {
		g.open()
		require.NoError(t, tr.Shutdown(context.Background()))
	}()
	base := errors.New(strings.Repeat("x", 64<<10))
	before := liveHeap()
	ctx, inst := tr.StartInstance(context.Background())
	const spans = 12000
	for i := range spans {
		_, s := tr.Start(ctx, "tool", nil, agenttrace.WithName(strings.Repeat("n", 1000)+fmt.Sprint(i)))
		s.Fail(fmt.Errorf("call %d: %w", i, base)) // a message of its own
	}
	inst.Fail(fmt.Errorf("run: %w", base))
	grown := int64(liveHeap()) - int64(before)
	st := tr.Stats()
	t.Logf("live heap +%d MiB, queued %d records (%d KiB), dropped %d",
		grown>>20, st.Queued, st.Exporters[0].QueuedBytes>>10, st.Dropped.Total())
	require.LessOrEqual(t, st.Exporters[0].QueuedBytes, maxBytes)
	require.Positive(t, st.Dropped.Total(), "the cap was reached")
	// Generous: the cap plus about 1 KiB of bookkeeping per queued record.
	require.Less(t, grown, int64(maxBytes+st.Queued*1024+8<<20))
}

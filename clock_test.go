package agenttrace

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestFastClock(t *testing.T) {
	c := newFastClock()
	prev := c.now()
	for range 1000 {
		now := c.now()
		require.False(t, now.Before(prev), "monotonic")
		prev = now
	}
	// Close to the wall clock, and re-anchored once resync has passed.
	require.InDelta(t, time.Now().UnixNano(), c.now().UnixNano(), float64(resync))
	old := time.Now().Add(-2 * resync)
	c.ref.Store(&old)
	require.InDelta(t, time.Now().UnixNano(), c.now().UnixNano(), float64(resync))
	require.NotEqual(t, old, *c.ref.Load())
}

package agenttrace

import (
	"context"
	"errors"
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

// TestPanickingClock: a clock given with WithClock that panics does not
// panic any recording call; time.Now stands in and the panics are counted.
func TestPanickingClock(t *testing.T) {
	tr, err := New(WithClock(func() time.Time { panic("clock") }))
	require.NoError(t, err)
	defer func() { require.NoError(t, tr.Shutdown(context.Background())) }()
	before := time.Now()
	require.NotPanics(t, func() {
		ctx, inst := tr.StartInstance(context.Background())
		_, s := tr.Start(ctx, "llm", nil)
		s.MarkFirstToken()
		_, p := tr.StartPending(ctx, "tool", nil)
		p.Activate()
		p.Fail(errors.New("x"))
		s.End()
		inst.End()
		d := s.Data()
		require.False(t, d.StartedAt.Before(before))
		require.False(t, d.EndedAt.Before(d.StartedAt))
	})
	require.Positive(t, tr.Stats().HookPanics)
}

package agenttrace

import (
	"sync/atomic"
	"time"
)

// fastClock reads the time with one monotonic clock read instead of the
// wall and monotonic reads of time.Now: it adds the monotonic time elapsed
// since a reference time.Now taken at most resync ago. Timestamps follow
// steps of the wall clock within resync; they keep time.Now's monotonic
// reading, so durations between them are exact.
type fastClock struct {
	ref atomic.Pointer[time.Time]
}

const resync = time.Second

func newFastClock() *fastClock {
	c := &fastClock{}
	now := time.Now()
	c.ref.Store(&now)
	return c
}

func (c *fastClock) now() time.Time {
	ref := c.ref.Load()
	d := time.Since(*ref) // one monotonic read
	if d >= 0 && d < resync {
		return ref.Add(d)
	}
	now := time.Now()
	c.ref.CompareAndSwap(ref, &now)
	return now
}

// userNow reads a clock given with WithClock, which is the caller's code:
// a panic in it is recovered and counted, and time.Now stands in.
func (t *Tracer) userNow() (now time.Time) {
	defer func() {
		if recover() != nil {
			t.stats.hookPanics.Add(1)
			now = time.Now()
		}
	}()
	if now = t.cfg.clock(); now.IsZero() {
		now = time.Now()
	}
	return now
}

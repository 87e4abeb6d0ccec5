package prefactor

import (
	"context"
	"sync"
	"time"
)

// breaker is a circuit breaker over all requests: after cfg.Failures
// consecutive transient failures it opens; after the cooldown one probe
// goes through (half-open); the probe's success closes it, its failure
// reopens it with twice the cooldown (at most cfg.MaxCooldown). While it is
// open, failed operations wait for it instead of sleeping their own
// backoff, so when the server is back every lane resumes with the probe's
// success, within one cooldown.
type breaker struct {
	cfg   Breaker
	clock clock

	mu       sync.Mutex
	fails    int
	open     bool
	until    time.Time
	cooldown time.Duration
	probing  bool
	changed  chan struct{} // closed and replaced on every change
	opens    uint64
}

// clock is the time source of the breaker and of retries; tests replace it.
type clock interface {
	Now() time.Time
	// After is time.After.
	After(d time.Duration) (<-chan time.Time, func() bool)
}

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

func (realClock) After(d time.Duration) (<-chan time.Time, func() bool) {
	t := time.NewTimer(d)
	return t.C, t.Stop
}

func newBreaker(cfg Breaker, c clock) *breaker {
	return &breaker{cfg: cfg, clock: c, cooldown: cfg.Cooldown, changed: make(chan struct{})}
}

// broadcast wakes waiters; b.mu is held.
func (b *breaker) broadcast() {
	close(b.changed)
	b.changed = make(chan struct{})
}

// wait returns when a request may go; probe reports that it is the
// half-open probe, which must end in success, failure or release.
func (b *breaker) wait(ctx context.Context) (probe bool, err error) {
	for {
		b.mu.Lock()
		if !b.open {
			b.mu.Unlock()
			return false, nil
		}
		now := b.clock.Now()
		if !b.probing && !now.Before(b.until) {
			b.probing = true
			b.mu.Unlock()
			return true, nil
		}
		ch := b.changed
		var timer <-chan time.Time
		stop := func() bool { return false }
		if !b.probing {
			timer, stop = b.clock.After(b.until.Sub(now))
		}
		b.mu.Unlock()
		select {
		case <-ctx.Done():
			stop()
			return false, ctx.Err()
		case <-ch:
		case <-timer:
		}
		stop()
	}
}

// changes returns a channel closed at the breaker's next change.
func (b *breaker) changes() <-chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.changed
}

func (b *breaker) success() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.fails = 0
	if b.open {
		b.open, b.probing, b.cooldown = false, false, b.cfg.Cooldown
		b.broadcast()
	}
}

func (b *breaker) failure(probe bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.fails++
	switch {
	case b.open && probe:
		b.cooldown = min(2*b.cooldown, b.cfg.MaxCooldown)
		b.until, b.probing = b.clock.Now().Add(b.cooldown), false
		b.broadcast()
	case !b.open && b.fails >= b.cfg.Failures:
		b.open, b.until = true, b.clock.Now().Add(b.cooldown)
		b.opens++
		b.broadcast()
	}
}

// release ends a probe that neither succeeded nor failed.
func (b *breaker) release(probe bool) {
	if !probe {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.open && b.probing {
		b.probing = false
		b.broadcast()
	}
}

func (b *breaker) isOpen() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.open
}

func (b *breaker) openCount() uint64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.opens
}

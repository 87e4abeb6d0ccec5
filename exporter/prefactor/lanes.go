package prefactor

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync"

	"github.com/agenttrace/agenttrace"
)

// ExportAsync implements agenttrace.AsyncExporter: it maps the batch to
// operations and hands them to their instances' lanes, then returns. Each
// lane sends its instance's operations in order, on its own goroutine
// (at most WithConcurrency lanes send at once), so one slow instance holds
// up only itself. Every record is reported on the batch when its
// operations are done: delivered, refused (an *APIError), given up (its
// retry deadline passed), or skipped (what it depends on was not
// delivered). Records of spans waiting for a pending ancestor are held.
func (e *Exporter) ExportAsync(ctx context.Context, b *agenttrace.Batch) {
	e.watch(ctx)
	e.submit(b.Records, b)
}

// Export implements agenttrace.Exporter for callers that want to wait: it
// sends recs as ExportAsync does and returns when every record is
// delivered, failed or held, or when ctx ends (the work goes on in the
// lanes). Records not delivered are reported in an
// *agenttrace.PartialError.
func (e *Exporter) Export(ctx context.Context, recs []agenttrace.Record) error {
	s := newSyncSink(len(recs))
	e.submit(slices.Clone(recs), s)
	select {
	case <-s.acked:
	case <-ctx.Done():
		return ctx.Err()
	}
	return s.result()
}

func (e *Exporter) submit(recs []agenttrace.Record, s sink) {
	if len(recs) == 0 {
		return
	}
	err := e.stoppedErr()
	switch {
	case e.shut.Load():
		err = ErrShutdown
	case err != nil:
		e.stats.unauthorized.Add(uint64(len(recs)))
	case e.ctx.Err() != nil:
		return // aborted: the tracer counts what is left
	}
	if err != nil {
		for i := range recs {
			s.Done(i, err)
		}
		return
	}
	e.startPoll()
	e.planMu.Lock()
	e.plan(recs, s)
	e.planMu.Unlock()
}

// watch aborts the lanes when ctx (the tracer's, the same for every batch:
// it ends when Shutdown's context does) ends. A synchronous Export's ctx
// only bounds its own wait.
func (e *Exporter) watch(ctx context.Context) {
	if ctx.Done() == nil {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.watched == ctx {
		return
	}
	e.watched = ctx
	context.AfterFunc(ctx, e.cancel)
}

// lane is one instance's operations, sent in order.
type lane struct {
	inst    agenttrace.ID
	mu      sync.Mutex
	ops     []*op
	running bool
	ended   bool // its instance's finish was queued
	// lost holds the instance and the spans whose creation failed, each
	// with the error that lost it: what depends on them is skipped with
	// that error. Used by the lane's goroutine only.
	lost map[agenttrace.ID]error
}

// enqueue hands an operation to its instance's lane, starting the lane's
// goroutine if it is idle.
func (e *Exporter) enqueue(o *op) {
	o.resume() // released from a deferred ancestor: a Flush waits for it now
	o.deadline = e.clock.Now().Add(e.cfg.retry.Deadline)
	e.lanesMu.Lock()
	l := e.lanes[o.inst]
	if l == nil {
		l = &lane{inst: o.inst, lost: map[agenttrace.ID]error{}}
		e.lanes[o.inst] = l
	}
	l.mu.Lock()
	l.ops = append(l.ops, o)
	if o.kind == opFinishInstance {
		l.ended = true
	}
	start := !l.running
	l.running = true
	l.mu.Unlock()
	e.lanesMu.Unlock()
	if start {
		e.wg.Add(1)
		go e.runLane(l)
	}
}

// next takes the lane's queued operations; with none, the lane goes idle
// (and is forgotten once its instance finished).
func (e *Exporter) next(l *lane) []*op {
	e.lanesMu.Lock()
	defer e.lanesMu.Unlock()
	l.mu.Lock()
	defer l.mu.Unlock()
	ops := l.ops
	l.ops = nil
	if len(ops) == 0 {
		l.running = false
		if l.ended {
			delete(e.lanes, l.inst)
		}
	}
	return ops
}

func (e *Exporter) runLane(l *lane) {
	defer e.wg.Done()
	for {
		ops := e.next(l)
		if len(ops) == 0 {
			return
		}
		select {
		case e.slots <- struct{}{}:
		case <-e.ctx.Done():
			e.abandonLane(l)
			return
		}
		e.pingOnce.Do(e.ping)
		e.sendLane(l, ops)
		<-e.slots
		if e.ctx.Err() != nil {
			e.abandonLane(l)
			return
		}
	}
}

// abandonLane leaves what the lane holds unreported (the tracer counts it
// dropped at shutdown) and lets it go idle.
func (e *Exporter) abandonLane(l *lane) {
	e.lanesMu.Lock()
	l.mu.Lock()
	l.ops, l.running = nil, false
	delete(e.lanes, l.inst)
	l.mu.Unlock()
	e.lanesMu.Unlock()
}

// ping checks the token once, before the first operation; an API that
// cannot be reached is no reason to wait: the operations retry anyway.
func (e *Exporter) ping() {
	if e.cfg.noPing {
		return
	}
	ctx, cancel := context.WithTimeout(e.ctx, e.cfg.retry.Deadline)
	defer cancel()
	resp, err := e.do(ctx, http.MethodGet, "/api/v1/ping", nil)
	if err == nil && resp.status >= 400 {
		e.lastErr(fmt.Errorf("prefactor: ping: HTTP %d", resp.status))
	}
}

// sendLane sends operations of one lane in order, reporting each.
func (e *Exporter) sendLane(l *lane, ops []*op) {
	for i := 0; i < len(ops); {
		if e.ctx.Err() != nil {
			return
		}
		if err := e.stoppedErr(); err != nil {
			e.giveUp(l, ops, i, err)
			return
		}
		if dep := l.lostBy(ops[i]); dep != nil {
			e.fail(l, ops[i], "orphaned", fmt.Errorf("prefactor: %s of %s skipped: what it depends on was not delivered: %w",
				ops[i].name(), ops[i].key(), dep))
			i++
			continue
		}
		chunk := ops[i : i+1]
		if !e.noBulk.Load() {
			chunk = e.chunk(ops[i:], l.orphan)
		}
		ctx, cancel := context.WithDeadline(e.ctx, ops[i].deadline)
		done, err := e.send(ctx, chunk)
		cancel()
		for _, r := range done {
			if r.err != nil {
				e.fail(l, r.op, "rejected", r.err)
			} else {
				e.delivered(r.op)
			}
		}
		i += len(done)
		if err != nil {
			i = e.giveUp(l, ops, i, err)
		}
	}
}

// giveUp fails, after a send that could not go on, the operations that
// cannot be sent: all of them when the token was rejected, else those
// whose deadline passed (at least the first, which the send was for). It
// returns the index to go on from.
func (e *Exporter) giveUp(l *lane, ops []*op, i int, err error) int {
	if e.ctx.Err() != nil {
		return len(ops) // aborted: left unreported
	}
	if errors.Is(err, ErrUnauthorized) || errors.Is(err, ErrStopped) {
		for _, o := range ops[i:] {
			e.fail(l, o, "unauthorized", err)
		}
		return len(ops)
	}
	now := e.clock.Now()
	for first := true; i < len(ops) && (first || !ops[i].deadline.After(now)); first = false {
		e.fail(l, ops[i], "gave_up", err)
		i++
	}
	return i
}

// delivered reports an operation the API accepted.
func (e *Exporter) delivered(o *op) {
	switch o.kind {
	case opStartInstance:
		e.mu.Lock()
		e.running[o.inst] = true
		e.mu.Unlock()
	case opFinishInstance:
		e.mu.Lock()
		delete(e.running, o.inst)
		e.mu.Unlock()
	}
	o.finish(nil)
}

// fail reports an operation not delivered, counting it by reason; what
// depends on it is skipped later.
func (e *Exporter) fail(l *lane, o *op, reason string, cause error) {
	if cause == nil {
		cause = errors.New("prefactor: " + o.name() + " failed")
	}
	cause = e.scrub(cause)
	// What depends on o is skipped with the error that lost it: the
	// first cause, not the skip of something in between.
	root := cause
	if reason == "orphaned" {
		if u := errors.Unwrap(cause); u != nil {
			root = u
		}
	}
	switch o.kind {
	case opRegister, opStartInstance:
		l.lost[o.inst] = root
	case opCreateSpan:
		l.lost[o.span] = root
	}
	switch reason {
	case "rejected":
		e.stats.rejected.Add(1)
	case "unauthorized":
		e.stats.unauthorized.Add(1)
	case "orphaned":
		e.stats.skipped.Add(1)
	default:
		e.stats.gaveUp.Add(1)
	}
	if reason != "unauthorized" {
		e.report(reason, cause)
	}
	o.finish(cause)
}

// orphan reports whether what o depends on was not delivered.
func (l *lane) orphan(o *op) bool { return l.lostBy(o) != nil }

// lostBy returns the error that lost what o depends on (its instance, its
// span's create, its parent), nil if nothing it depends on was lost.
func (l *lane) lostBy(o *op) error {
	if err := l.lost[o.inst]; err != nil {
		return err
	}
	if o.kind >= opCreateSpan {
		if err := l.lost[o.span]; err != nil {
			return err
		}
	}
	if o.kind == opCreateSpan && !o.sdata.ParentID.IsZero() {
		return l.lost[o.sdata.ParentID]
	}
	return nil
}

// chunk takes the operations for one bulk request from the front of ops:
// within the item and byte limits, stopping before an orphan, and right
// after a register without a client-chosen ID (the answer gives the ID the
// rest must use).
func (e *Exporter) chunk(ops []*op, orphan func(*op) bool) []*op {
	size := 0
	for n, o := range ops {
		if n > 0 && orphan(o) {
			return ops[:n]
		}
		size += 512 + len(o.payloadSize())
		if o.sdata != nil {
			size += len(o.sdata.Result)
		}
		if n > 0 && (n >= e.cfg.maxBulkItems || size > e.cfg.maxBulkBytes) {
			return ops[:n]
		}
		if o.kind == opRegister && !e.partitionKnown() {
			return ops[:n+1]
		}
	}
	return ops
}

// syncSink collects the outcome of a synchronous Export.
type syncSink struct {
	mu     sync.Mutex
	open   int
	failed []int
	errs   []error
	acked  chan struct{}
	seen   []uint8 // 0 open, 1 held, 2 done
}

func newSyncSink(n int) *syncSink {
	s := &syncSink{open: n, acked: make(chan struct{}), seen: make([]uint8, n)}
	if n == 0 {
		close(s.acked)
	}
	return s
}

func (s *syncSink) Done(i int, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.seen[i] == 2 {
		return
	}
	if err != nil {
		s.failed = append(s.failed, i)
		if len(s.errs) < 10 {
			s.errs = append(s.errs, err)
		}
	}
	s.ack(i, 2)
}

func (s *syncSink) Resume(i int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.seen[i] == 1 && s.open > 0 {
		s.seen[i] = 0
		s.open++
	}
}

func (s *syncSink) Hold(i int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.seen[i] == 0 {
		s.ack(i, 1)
	}
}

// ack moves record i to state st; s.mu is held.
func (s *syncSink) ack(i int, st uint8) {
	was := s.seen[i]
	s.seen[i] = st
	if was == 0 {
		if s.open--; s.open == 0 {
			close(s.acked)
		}
	}
}

func (s *syncSink) result() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.failed) == 0 {
		return nil
	}
	slices.Sort(s.failed)
	return &agenttrace.PartialError{Failed: slices.Clone(s.failed), Err: errors.Join(s.errs...)}
}

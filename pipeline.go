package agenttrace

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// maxExporters is the number of bits in the per-span drop masks.
const maxExporters = 64

// recordOverhead is the fixed number of bytes charged per queued record on
// top of its payloads.
const recordOverhead = 256

// DropReason says why a record did not reach an exporter.
type DropReason uint8

// Drop reasons.
const (
	// DropQueueFull: the queue held its maximum number of records.
	DropQueueFull DropReason = iota
	// DropQueueBytes: the queue held its maximum number of bytes.
	DropQueueBytes
	// DropBlockTimeout: with WithBlockOnFull, no room was made in time.
	DropBlockTimeout
	// DropOrphaned: the record belongs to a span whose start, parent or
	// instance was dropped, so the exporter could not place it.
	DropOrphaned
	// DropShutdown: still queued when Shutdown's context ended.
	DropShutdown
	numDropReasons
)

var dropNames = [...]string{"queue_full", "queue_bytes", "block_timeout", "orphaned", "shutdown"}

// String returns the reason in snake case.
func (r DropReason) String() string {
	if int(r) < len(dropNames) {
		return dropNames[r]
	}
	return "unknown"
}

// producerCoalesceQueues is the number of exporters (the first ones) for
// which a span's later records update its queued start record in place.
const producerCoalesceQueues = 2

// queueSlot locates a record in a queue: the queue's generation (bumped by
// each take) and the index in it.
type queueSlot struct {
	gen uint32
	idx uint32
}

// emitSpan offers a span record to every exporter queue; s.mu is held (or s
// is not yet shared), which keeps a span's records in order.
func (t *Tracer) emitSpan(kind RecordKind, s *Span) {
	if len(t.queues) == 0 {
		return
	}
	rec := Record{Kind: kind, Span: s.snapshotLocked(), span: s}
	rec.size = recordOverhead + len(rec.Span.Payload) + len(rec.Span.Result)
	for _, q := range t.queues {
		q.pushSpan(&rec, s)
	}
}

// emitInstance offers an instance record to every exporter queue; inst.mu
// is held.
func (t *Tracer) emitInstance(kind RecordKind, inst *Instance, d *InstanceData) {
	if len(t.queues) == 0 {
		return
	}
	rec := Record{Kind: kind, Instance: d, size: recordOverhead}
	for _, q := range t.queues {
		q.pushInstance(&rec, inst)
	}
}

type flushReq struct{ done chan error }

// queue is one exporter's bounded queue and the state of its worker.
type queue struct {
	t    *Tracer
	bit  uint64
	slot int // index into Span.slots, or -1
	exp  Exporter
	name string

	mu       sync.Mutex
	recs     []Record
	spare    []Record
	gen      uint32 // bumped when the worker takes recs
	bytes    int    // queued plus in flight
	inflight int    // records taken by the worker, not yet done
	closed   bool
	woken    bool // the worker was told a batch is full since its last take
	waiters  int
	space    chan struct{} // closed when room is made, if waiters > 0

	// counters guarded by mu
	recorded uint64
	dropped  [numDropReasons]uint64

	exported, coalesced, failed, batches atomic.Uint64
	lastErr                              atomic.Pointer[exportErr]

	wake      chan struct{}
	flushCh   chan flushReq
	stopCh    chan struct{}
	stopped   chan struct{}
	abortCtx  context.Context
	abortFn   context.CancelFunc
	closeCtx  context.Context
	closeOnce sync.Once

	shutdownErr error
	index       map[*Span]int
	logState    logState
}

type exportErr struct {
	err error
	at  time.Time
}

func newQueue(t *Tracer, i int, e Exporter) *queue {
	q := &queue{
		t: t, bit: 1 << uint(i), slot: -1, exp: e, name: exporterName(i, e), gen: 1,
		space:   make(chan struct{}),
		wake:    make(chan struct{}, 1),
		flushCh: make(chan flushReq),
		stopCh:  make(chan struct{}),
		stopped: make(chan struct{}),
		index:   make(map[*Span]int),
	}
	if i < producerCoalesceQueues {
		q.slot = i
	}
	q.abortCtx, q.abortFn = context.WithCancel(context.Background())
	return q
}

func exporterName(i int, e Exporter) string {
	if n, ok := e.(interface{ Name() string }); ok {
		return n.Name()
	}
	return fmt.Sprintf("%T#%d", e, i)
}

func (q *queue) pushSpan(rec *Record, s *Span) {
	if s.dropped.Load()&q.bit != 0 {
		q.drop(DropOrphaned)
		return
	}
	if rec.Kind == SpanStarted {
		if (s.parent != nil && s.parent.dropped.Load()&q.bit != 0) || s.inst.dropped.Load()&q.bit != 0 {
			s.dropped.Or(q.bit)
			q.drop(DropOrphaned)
			return
		}
	}
	if !q.push(rec, rec.Kind == SpanStarted, s) && rec.Kind == SpanStarted {
		s.dropped.Or(q.bit)
	}
}

func (q *queue) pushInstance(rec *Record, inst *Instance) {
	if rec.Kind == InstanceEnded && inst.dropped.Load()&q.bit != 0 {
		q.drop(DropOrphaned)
		return
	}
	if !q.push(rec, false, nil) && rec.Kind == InstanceStarted {
		inst.dropped.Or(q.bit)
	}
}

func (q *queue) drop(r DropReason) {
	q.mu.Lock()
	q.recorded++
	q.dropped[r]++
	q.mu.Unlock()
}

// push appends rec if there is room. Records that begin something (span
// starts) get only 7/8 of the limits, so that the ends of what was already
// queued still find room. A later record of span s whose start record is
// still queued replaces it in place: one record, in the start's position.
func (q *queue) push(rec *Record, begins bool, s *Span) bool {
	cfg := &q.t.cfg
	maxRecs, maxBytes := cfg.maxQueueRecords, cfg.maxQueueBytes
	if begins {
		maxRecs -= maxRecs / 8
		maxBytes -= maxBytes / 8
	}
	var deadline *time.Timer
	q.mu.Lock()
	q.recorded++
	if s != nil && q.slot >= 0 && rec.Kind != SpanStarted && !q.closed {
		if sl := s.slots[q.slot]; sl.gen == q.gen {
			old := &q.recs[sl.idx]
			if delta := rec.size - old.size; q.bytes+delta <= maxBytes+maxBytes/8 {
				*old = *rec
				old.Kind = SpanStarted
				q.bytes += delta
				q.coalesced.Add(1)
				q.mu.Unlock()
				return true
			}
		}
	}
	for {
		if q.closed {
			q.dropped[DropShutdown]++
			q.mu.Unlock()
			return false
		}
		n := len(q.recs) + q.inflight
		var reason DropReason
		switch {
		case n >= maxRecs:
			reason = DropQueueFull
		case q.bytes+rec.size > maxBytes:
			reason = DropQueueBytes
		default:
			q.recs = append(q.recs, *rec)
			q.bytes += rec.size
			if s != nil && q.slot >= 0 && rec.Kind == SpanStarted {
				s.slots[q.slot] = queueSlot{gen: q.gen, idx: uint32(len(q.recs) - 1)}
			}
			full := !q.woken && len(q.recs) >= cfg.maxBatchRecords
			if full {
				q.woken = true
			}
			q.mu.Unlock()
			if deadline != nil {
				deadline.Stop()
			}
			if full {
				select {
				case q.wake <- struct{}{}:
				default:
				}
			}
			return true
		}
		if cfg.blockTimeout <= 0 {
			q.dropped[reason]++
			q.mu.Unlock()
			return false
		}
		if deadline == nil {
			deadline = time.NewTimer(cfg.blockTimeout)
		}
		space := q.space
		q.waiters++
		q.mu.Unlock()
		select {
		case q.wake <- struct{}{}:
		default:
		}
		timedOut := false
		select {
		case <-space:
		case <-deadline.C:
			timedOut = true
		}
		q.mu.Lock()
		q.waiters--
		if timedOut {
			q.dropped[DropBlockTimeout]++
			q.mu.Unlock()
			return false
		}
	}
}

// take moves the queued records to the worker.
func (q *queue) take() []Record {
	q.mu.Lock()
	defer q.mu.Unlock()
	recs := q.recs
	q.recs = q.spare[:0]
	q.spare = nil
	q.inflight += len(recs)
	q.gen++
	q.woken = false
	return recs
}

// release gives back the room of n records of size bytes.
func (q *queue) release(n, bytes int) {
	q.mu.Lock()
	q.inflight -= n
	q.bytes -= bytes
	if q.waiters > 0 {
		close(q.space)
		q.space = make(chan struct{})
	}
	q.mu.Unlock()
}

func (q *queue) pending() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.recs) + q.inflight
}

// close stops the queue accepting records and tells the worker to drain.
func (q *queue) close(ctx context.Context) {
	q.closeOnce.Do(func() {
		q.mu.Lock()
		q.closed = true
		q.closeCtx = ctx
		q.mu.Unlock()
		close(q.stopCh)
	})
}

// abort cancels the export in flight and makes the worker drop the rest.
func (q *queue) abort() { q.abortFn() }

func (q *queue) run() {
	defer close(q.stopped)
	defer q.abortFn()
	timer := time.NewTimer(q.t.cfg.flushInterval)
	defer timer.Stop()
	for {
		select {
		case <-timer.C:
			q.exportAll()
		case <-q.wake:
			q.exportAll()
		case fr := <-q.flushCh:
			fr.done <- q.exportAll()
		case <-q.stopCh:
			q.exportAll()
			q.mu.Lock()
			ctx := q.closeCtx
			q.mu.Unlock()
			q.shutdownErr = q.exp.Shutdown(ctx)
			q.logState.report(q, true)
			return
		}
		q.logState.report(q, false)
		timer.Reset(q.t.cfg.flushInterval)
	}
}

// exportAll exports everything queued now, coalesced and in batches.
func (q *queue) exportAll() error {
	recs := q.take()
	if len(recs) == 0 {
		q.spare = recs
		return nil
	}
	before := len(recs)
	recs, freed := q.coalesce(recs)
	if merged := before - len(recs); merged > 0 {
		q.release(merged, freed)
	}
	var firstErr error
	cfg := &q.t.cfg
	for start := 0; start < len(recs); {
		end, bytes := start, 0
		for end < len(recs) && end-start < cfg.maxBatchRecords &&
			(end == start || bytes+recs[end].size <= cfg.maxBatchBytes) {
			bytes += recs[end].size
			end++
		}
		batch := recs[start:end]
		n := len(batch)
		if q.abortCtx.Err() != nil {
			q.mu.Lock()
			q.dropped[DropShutdown] += uint64(n)
			q.mu.Unlock()
		} else if err := q.export(batch); err != nil {
			q.failed.Add(uint64(n))
			q.lastErr.Store(&exportErr{err: err, at: q.t.now()})
			if firstErr == nil {
				firstErr = err
			}
		} else {
			q.exported.Add(uint64(n))
		}
		q.batches.Add(1)
		q.release(n, bytes)
		start = end
	}
	clear(recs)
	q.spare = recs[:0]
	return firstErr
}

// export calls the exporter under the export timeout, turning a panic into
// an error.
func (q *queue) export(batch []Record) (err error) {
	ctx, cancel := context.WithTimeout(q.abortCtx, q.t.cfg.exportTimeout)
	defer cancel()
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("agenttrace: exporter %s panicked: %v", q.name, r)
		}
	}()
	return q.exp.Export(ctx, batch)
}

// coalesce merges, within recs, the later records of a span whose start is
// also in recs into that start record, which keeps its place. It returns
// the records left and the bytes freed.
func (q *queue) coalesce(recs []Record) ([]Record, int) {
	idx := q.index
	out := recs[:0]
	freed := 0
	for _, r := range recs {
		switch r.Kind {
		case SpanStarted:
			if !r.Span.Status.Finished() {
				idx[r.span] = len(out)
			}
		case SpanActivated, SpanEnded:
			if j, ok := idx[r.span]; ok {
				freed += out[j].size
				r.Kind = SpanStarted
				out[j] = r
				q.coalesced.Add(1)
				continue
			}
		}
		out = append(out, r)
	}
	clear(idx)
	// The records past len(out) were moved down: drop their references.
	clear(recs[len(out):])
	return out, freed
}

package agenttrace

import (
	"context"
	"errors"
	"fmt"
	"slices"
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

// emitSpan offers the span's current state as a record of kind to every
// exporter queue; s.mu is held (or s is not yet shared), which keeps a
// span's records in order. Each queue writes the snapshot straight into its
// slot.
func (t *Tracer) emitSpan(kind RecordKind, s *Span) {
	if len(t.queues) == 0 {
		return
	}
	size := recordOverhead + s.heldBytes()
	for _, q := range t.queues {
		q.pushSpan(kind, s, size)
	}
}

// emitInstance offers an instance record to every exporter queue; inst.mu
// is held.
func (t *Tracer) emitInstance(kind RecordKind, inst *Instance, d *InstanceData) {
	if len(t.queues) == 0 {
		return
	}
	e := entry{rec: Record{Kind: kind, Instance: d}, meta: recMeta{inst: inst, size: recordOverhead + d.heldBytes()}}
	for _, q := range t.queues {
		q.pushInstance(&e, inst)
	}
}

// entry is a record with the pipeline's bookkeeping beside it.
type entry struct {
	rec  Record
	meta recMeta
}

// entries are queued records and their bookkeeping, in parallel slices:
// exporters get the Records alone, pure data, so one that keeps a record
// keeps no span or caller context alive; and a synchronous exporter gets
// them where they lie, with no copy into a batch of its own.
type entries struct {
	recs  []Record
	metas []recMeta
}

// add appends a zeroed slot and returns its index.
func (e *entries) add() int {
	n := len(e.recs)
	if n < cap(e.recs) && n < cap(e.metas) {
		e.recs, e.metas = e.recs[:n+1], e.metas[:n+1]
	} else {
		e.recs, e.metas = append(e.recs, Record{}), append(e.metas, recMeta{})
	}
	return n
}

// slice returns the entries [i, j), with no spare capacity.
func (e entries) slice(i, j int) entries { return entries{e.recs[i:j:j], e.metas[i:j:j]} }

// empty clears the entries (dropping their references) and returns them
// with no length, their capacity kept.
func (e entries) empty() entries {
	clear(e.recs)
	clear(e.metas)
	return entries{e.recs[:0], e.metas[:0]}
}

// recMeta is what the pipeline keeps about a record: the span or instance
// it is of (for coalescing and loss marking) and the bytes charged to the
// queue.
type recMeta struct {
	span *Span     // nil for instance records
	inst *Instance // set on instance records
	size int
}

type flushReq struct{ done chan flushResult }

// flushResult is the worker's answer to a flush: the batches still in
// flight, which Flush waits for.
type flushResult struct {
	batches []*Batch
}

// queue is one exporter's bounded queue and the state of its worker.
// Producers append records to buf under its lock, in recording order; the
// worker takes them all at once.
type queue struct {
	t    *Tracer
	bit  uint64
	slot int // index into Span.slots, or -1
	exp  Exporter
	name string

	buf buffer

	// used packs the records (high bits) and bytes (low usedBits bits)
	// queued or being exported.
	used  atomic.Int64
	woken atomic.Bool // the worker was told a batch is full since its last take
	lossy atomic.Bool // an export failed: later records may have lost their start

	spaceMu sync.Mutex
	space   chan struct{} // closed when room is made, if waiters > 0
	waiters atomic.Int32

	exported, failed, batches, coalescedW atomic.Uint64
	lastErr                               atomic.Pointer[exportErr]
	// held counts records an AsyncExporter holds (Batch.Hold);
	// outstanding counts records taken by the worker and not yet reported
	// done: both are still charged to the queue.
	held, outstanding atomic.Int64

	async AsyncExporter // exp, if it is one

	// errBatches are the batches with records reported failed since the
	// last Flush, which returns their errors (at most maxErrBatches).
	errMu      sync.Mutex
	errBatches []*Batch
	errMore    int
	flightMu   sync.Mutex
	flight     map[*Batch]struct{} // batches with records not reported done

	wake      chan struct{}
	flushCh   chan flushReq
	stopCh    chan struct{}
	stopped   chan struct{}
	abortCtx  context.Context
	abortFn   context.CancelFunc
	closeMu   sync.Mutex
	closeCtx  context.Context
	closeOnce sync.Once

	shutdownErr error
	index       map[*Span]int
	states      []atomic.Uint32 // the states of a synchronous batch (worker only)
	logState    logState
}

// buffer holds a queue's records until the worker takes them, with the
// counts of what was offered to it; mu guards every field.
type buffer struct {
	mu        sync.Mutex
	recs      entries
	spare     entries // recs of the last take, handed back emptied
	gen       uint32  // bumped when the worker takes recs
	bytes     int     // the bytes charged for recs
	closed    bool
	recorded  uint64
	coalesced uint64
	dropped   [numDropReasons]uint64
}

const usedBits = 40

func packUsed(n, bytes int) int64 { return int64(n)<<usedBits + int64(bytes) }

func unpackUsed(v int64) (n, bytes int) { return int(v >> usedBits), int(v & (1<<usedBits - 1)) }

type exportErr struct {
	err error
	msg string // err's text, taken once
	at  time.Time
}

func newQueue(t *Tracer, i int, e Exporter) *queue {
	q := &queue{
		t: t, bit: 1 << uint(i), slot: -1, exp: e, name: exporterName(i, e),
		buf:     buffer{gen: 1},
		space:   make(chan struct{}),
		wake:    make(chan struct{}, 1),
		flushCh: make(chan flushReq),
		stopCh:  make(chan struct{}),
		stopped: make(chan struct{}),
		index:   make(map[*Span]int),
		flight:  make(map[*Batch]struct{}),
	}
	if i < producerCoalesceQueues {
		q.slot = i
	}
	q.async, _ = e.(AsyncExporter)
	q.abortCtx, q.abortFn = context.WithCancel(context.Background())
	return q
}

func exporterName(i int, e Exporter) string {
	if n, ok := e.(interface{ Name() string }); ok {
		return n.Name()
	}
	return fmt.Sprintf("%T#%d", e, i)
}

// orphaned reports whether a record of kind, of span s or instance inst,
// can no longer be placed by this exporter: its span's start, its parent or
// its instance was lost. A span start found orphaned marks the span lost
// too, so its own records and children follow.
func (q *queue) orphaned(kind RecordKind, s *Span, inst *Instance) bool {
	switch kind {
	case InstanceEnded:
		return inst.dropped.Load()&q.bit != 0
	case SpanStarted:
		if s.dropped.Load()&q.bit != 0 {
			return true
		}
		if (s.parent != nil && s.parent.dropped.Load()&q.bit != 0) || s.inst.dropped.Load()&q.bit != 0 {
			s.dropped.Or(q.bit)
			return true
		}
	case SpanActivated, SpanEnded:
		return s.dropped.Load()&q.bit != 0
	}
	return false
}

func (q *queue) pushSpan(kind RecordKind, s *Span, size int) {
	if q.orphaned(kind, s, nil) {
		q.drop(DropOrphaned)
		return
	}
	if !q.push(kind, size, s, nil) && kind == SpanStarted {
		s.dropped.Or(q.bit)
	}
}

func (q *queue) pushInstance(e *entry, inst *Instance) {
	kind := e.rec.Kind
	if q.orphaned(kind, nil, inst) {
		q.drop(DropOrphaned)
		return
	}
	ok := q.push(kind, e.meta.size, nil, e)
	switch {
	case !ok && kind == InstanceStarted:
		inst.dropped.Or(q.bit)
	case ok && kind == InstanceEnded:
		// A finished run is exported now, not at the next flush tick: a
		// program that ends a run and exits soon after loses less.
		q.nudge()
	}
}

// nudge wakes the worker, if it is not awake already.
func (q *queue) nudge() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// reserve charges n records and bytes to the queue if that stays within
// the limits and returns the number of records then queued; otherwise it
// says which limit was hit.
func (q *queue) reserve(n, bytes, maxRecs, maxBytes int) (int, bool, DropReason) {
	for {
		v := q.used.Load()
		cn, cb := unpackUsed(v)
		switch {
		case cn+n > maxRecs:
			return cn, false, DropQueueFull
		case cb+bytes > maxBytes:
			return cn, false, DropQueueBytes
		}
		if q.used.CompareAndSwap(v, v+packUsed(n, bytes)) {
			return cn + n, true, 0
		}
	}
}

// push adds a record of kind and size to the queue if there is room: a
// snapshot of span s, or the instance entry in. Records that begin
// something (span starts) get only 7/8 of the limits, so that the ends of
// what was already queued still find room.
func (q *queue) push(kind RecordKind, size int, s *Span, in *entry) bool {
	buf := &q.buf
	buf.mu.Lock()
	defer buf.mu.Unlock()
	buf.recorded++
	if buf.closed {
		buf.dropped[DropShutdown]++
		return false
	}
	if q.coalesceQueued(kind, size, s) {
		q.nudgeIfFull(0) // no record was added: only the bytes can have filled a batch
		return true
	}
	queued, ok := q.reserveOrWait(kind, size)
	if !ok {
		return false
	}
	q.writeSlot(kind, size, s, in)
	q.nudgeIfFull(queued)
	return true
}

// nudgeIfFull wakes the worker, once per take, when a batch is full by
// record count (queued records, of which those taken by the worker are
// not waiting) or by bytes (those in the buffer): the worker then exports
// it without waiting for the flush interval, and large records cannot fill
// the queue's byte limit while it waits. q.buf.mu is held.
func (q *queue) nudgeIfFull(queued int) {
	cfg := &q.t.cfg
	full := queued-int(q.outstanding.Load()) >= cfg.maxBatchRecords || q.buf.bytes >= cfg.maxBatchBytes
	if full && !q.woken.Load() && q.woken.CompareAndSwap(false, true) {
		q.nudge()
	}
}

// limits returns the queue limits for a record of kind.
func (q *queue) limits(kind RecordKind) (maxRecs, maxBytes int) {
	maxRecs, maxBytes = q.t.cfg.maxQueueRecords, q.t.cfg.maxQueueBytes
	if kind == SpanStarted {
		maxRecs -= maxRecs / 8
		maxBytes -= maxBytes / 8
	}
	return maxRecs, maxBytes
}

// reserveOrWait charges one record of size bytes, waiting for room up to
// the block timeout (WithBlockOnFull) if there is none. q.buf.mu is held
// on entry and on return (it is let go while waiting). On failure the drop
// is counted.
func (q *queue) reserveOrWait(kind RecordKind, size int) (queued int, ok bool) {
	maxRecs, maxBytes := q.limits(kind)
	queued, ok, reason := q.reserve(1, size, maxRecs, maxBytes)
	switch {
	case ok:
		return queued, true
	case q.t.cfg.blockTimeout <= 0:
		q.buf.dropped[reason]++
		return 0, false
	}
	deadline := time.NewTimer(q.t.cfg.blockTimeout)
	defer deadline.Stop()
	for {
		if r, waited := q.waitForRoom(deadline.C); !waited {
			q.buf.dropped[r]++
			return 0, false
		}
		if queued, ok, _ := q.reserve(1, size, maxRecs, maxBytes); ok {
			return queued, true
		}
	}
}

// waitForRoom lets q.buf.mu go until the worker makes room or timeout
// fires, and takes it back. It reports false, with the drop reason, when
// the wait timed out or the queue closed meanwhile.
func (q *queue) waitForRoom(timeout <-chan time.Time) (DropReason, bool) {
	q.waiters.Add(1)
	q.spaceMu.Lock()
	space := q.space
	q.spaceMu.Unlock()
	q.buf.mu.Unlock()
	q.nudge()
	timedOut := false
	select {
	case <-space:
	case <-timeout:
		timedOut = true
	}
	q.waiters.Add(-1)
	q.buf.mu.Lock()
	switch {
	case timedOut:
		return DropBlockTimeout, false
	case q.buf.closed:
		return DropShutdown, false
	}
	return 0, true
}

// writeSlot appends the record to the buffer, writing the span's snapshot
// straight into its slot. q.buf.mu is held.
func (q *queue) writeSlot(kind RecordKind, size int, s *Span, in *entry) {
	buf := &q.buf
	n := buf.recs.add()
	rec, meta := &buf.recs.recs[n], &buf.recs.metas[n]
	if s != nil {
		rec.Kind, rec.Instance = kind, nil
		s.snapshotInto(&rec.Span)
		*meta = recMeta{span: s}
		if q.slot >= 0 && kind == SpanStarted {
			s.slots[q.slot] = queueSlot{gen: buf.gen, idx: uint32(n)}
		}
	} else {
		*rec, *meta = in.rec, in.meta
	}
	meta.size = size
	buf.bytes += size
}

// Coalescing. A later record of a span (activated, ended) whose start
// record has not been exported yet is merged into that start record, which
// keeps its place and takes the span's latest state: one record instead of
// two, and a span that starts and ends within one batch window is exported
// once, final. It happens in two places, with the same effect:
//
//   - at push, for the first producerCoalesceQueues exporters: the span
//     remembers its start's slot (Span.slots), and the later record
//     rewrites the slot in place (coalesceQueued), so the queue holds one
//     record per span;
//   - at take, for the records still apart (other exporters, or a start
//     whose slot was taken meanwhile): coalesce merges them.
//
// Both write the span's state with snapshotInto, the one field list.

// coalesceQueued merges a later record of span s into its queued start
// record, if there is one and the size change fits; q.buf.mu is held.
func (q *queue) coalesceQueued(kind RecordKind, size int, s *Span) bool {
	if s == nil || q.slot < 0 || kind == SpanStarted {
		return false
	}
	sl := s.slots[q.slot]
	if sl.gen != q.buf.gen {
		return false
	}
	old, meta := &q.buf.recs.recs[sl.idx], &q.buf.recs.metas[sl.idx]
	if size != meta.size {
		maxRecs, maxBytes := q.limits(kind)
		if _, ok, _ := q.reserve(0, size-meta.size, maxRecs, maxBytes); !ok {
			return false
		}
	}
	s.snapshotInto(&old.Span)
	q.buf.bytes += size - meta.size
	meta.size = size
	q.buf.coalesced++
	return true
}

// coalesce merges, within recs, the later records of a span whose start is
// also in recs into that start record, which keeps its place. It returns
// the records left and the bytes freed.
func (q *queue) coalesce(e entries) (entries, int) {
	idx := q.index
	recs, metas := e.recs, e.metas
	n, freed, merged := 0, 0, 0
	for i := range recs {
		r, m := &recs[i], &metas[i]
		switch r.Kind {
		case SpanStarted:
			if !r.Span.Status.Finished() {
				idx[m.span] = n
			}
		case SpanActivated, SpanEnded:
			if j, ok := idx[m.span]; ok {
				freed += metas[j].size
				recs[j], metas[j] = *r, *m
				recs[j].Kind = SpanStarted
				merged++
				continue
			}
		}
		if n != i {
			recs[n], metas[n] = *r, *m
		}
		n++
	}
	clear(idx)
	if merged > 0 {
		q.coalescedW.Add(uint64(merged))
		// The records past n were moved down: drop their references.
		clear(recs[n:])
		clear(metas[n:])
	}
	return entries{recs[:n], metas[:n]}, freed
}

// take moves the queued records to the worker, in recording order.
func (q *queue) take() entries {
	buf := &q.buf
	buf.mu.Lock()
	defer buf.mu.Unlock()
	recs := buf.recs
	buf.recs, buf.spare = buf.spare, entries{}
	buf.bytes = 0
	buf.gen++
	q.woken.Store(false)
	return recs
}

// giveBack hands the emptied slice of a take of taken records back to the
// buffer, for the next records. A slice far larger than its take needed,
// left by a burst (an outage, a stalled exporter), is let go instead: the
// buffer then grows again to what the records need, and the burst's memory
// (up to MaxQueueRecords slots) is not held for the tracer's life.
func (q *queue) giveBack(recs entries, taken int) {
	if c := cap(recs.recs); c > 2*q.t.cfg.maxBatchRecords && c > 4*taken {
		return
	}
	recs = recs.empty()
	q.buf.mu.Lock()
	if q.buf.spare.recs == nil {
		q.buf.spare = recs
	}
	q.buf.mu.Unlock()
}

// release gives back the room of n records of size bytes.
func (q *queue) release(n, bytes int) {
	q.used.Add(-packUsed(n, bytes))
	if q.waiters.Load() > 0 {
		q.spaceMu.Lock()
		close(q.space)
		q.space = make(chan struct{})
		q.spaceMu.Unlock()
	}
}

func (q *queue) pending() int {
	n, _ := unpackUsed(q.used.Load())
	return n
}

// close stops the queue accepting records and tells the worker to drain.
func (q *queue) close(ctx context.Context) {
	q.closeOnce.Do(func() {
		q.closeMu.Lock()
		q.closeCtx = ctx
		q.closeMu.Unlock()
		q.buf.mu.Lock()
		q.buf.closed = true
		q.buf.mu.Unlock()
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
			q.exportAll()
			fr.done <- flushResult{batches: q.inFlight()}
		case <-q.stopCh:
			q.exportAll()
			q.closeMu.Lock()
			ctx := q.closeCtx
			q.closeMu.Unlock()
			q.shutdownErr = q.shutdownExporter(ctx)
			// The exporter's Shutdown waited for its work: what it did not
			// report by then is dropped, so the counts add up when
			// Shutdown returns.
			q.abandon()
			q.logState.report(q, true)
			return
		}
		q.logState.report(q, false)
		timer.Reset(q.t.cfg.flushInterval)
	}
}

// exportAll exports everything queued now, coalesced and in batches. A
// synchronous exporter is called once per batch and its result settles the
// batch; an AsyncExporter gets each batch and settles it as it goes.
func (q *queue) exportAll() {
	recs := q.take()
	before := len(recs.recs)
	if before == 0 {
		q.giveBack(recs, 0)
		return
	}
	recs, freed := q.coalesce(recs)
	if merged := before - len(recs.recs); merged > 0 {
		q.release(merged, freed)
	}
	for start := 0; start < len(recs.recs); {
		end := q.batchEnd(recs.metas, start)
		batch := recs.slice(start, end)
		start = end
		if q.lossy.Load() {
			batch = q.dropOrphans(batch)
		}
		n := len(batch.recs)
		if n == 0 {
			continue
		}
		q.batches.Add(1)
		if q.abortCtx.Err() != nil {
			for i := range batch.metas {
				q.count(DropShutdown, 1)
				q.release(1, batch.metas[i].size)
			}
			continue
		}
		if q.async != nil {
			// In flight past this take: the batch's own copy.
			q.submit(q.newBatch(slices.Clone(batch.recs), slices.Clone(batch.metas), make([]atomic.Uint32, n)))
			continue
		}
		// A synchronous batch is settled before the next one is made: it
		// is the buffer's records where they lie, with the worker's
		// states, and lets go of them once settled.
		q.states = slices.Grow(q.states[:0], n)[:n]
		clear(q.states)
		b := q.newBatch(batch.recs, batch.metas, q.states)
		q.exportSync(b)
		b.Records, b.meta = nil, nil
	}
	q.giveBack(recs, before)
}

// batchEnd returns the end of the batch that starts at recs[start], within
// the batch limits.
func (q *queue) batchEnd(metas []recMeta, start int) int {
	cfg := &q.t.cfg
	end, bytes := start, 0
	for end < len(metas) && end-start < cfg.maxBatchRecords &&
		(end == start || bytes+metas[end].size <= cfg.maxBatchBytes) {
		bytes += metas[end].size
		end++
	}
	return end
}

// newBatch registers recs, with their bookkeeping in meta, as a batch in
// flight; state holds each record's progress (all open).
func (q *queue) newBatch(recs []Record, meta []recMeta, state []atomic.Uint32) *Batch {
	b := &Batch{Records: recs, meta: meta, q: q, state: state, acked: make(chan struct{}), open: len(recs)}
	b.left.Store(int64(len(recs)))
	q.outstanding.Add(int64(len(recs)))
	q.flightMu.Lock()
	q.flight[b] = struct{}{}
	q.flightMu.Unlock()
	return b
}

// maxErrBatches bounds the batches whose errors wait for a Flush.
const maxErrBatches = 32

// noteError keeps a batch with failed records for the next Flush.
func (q *queue) noteError(b *Batch) {
	q.errMu.Lock()
	defer q.errMu.Unlock()
	if len(q.errBatches) < maxErrBatches {
		q.errBatches = append(q.errBatches, b)
	} else {
		q.errMore++
	}
}

// takeErrors returns the errors of the records failed since the last call.
func (q *queue) takeErrors() error {
	q.errMu.Lock()
	bs, more := q.errBatches, q.errMore
	q.errBatches, q.errMore = nil, 0
	q.errMu.Unlock()
	var errs []error
	for _, b := range bs {
		errs = append(errs, b.takeErr())
	}
	if more > 0 {
		errs = append(errs, fmt.Errorf("agenttrace: and failures in %d more batches", more))
	}
	return errors.Join(errs...)
}

// retire forgets a batch whose every record was reported.
func (q *queue) retire(b *Batch) {
	q.flightMu.Lock()
	delete(q.flight, b)
	q.flightMu.Unlock()
}

// inFlight returns the batches with records not reported yet.
func (q *queue) inFlight() []*Batch {
	q.flightMu.Lock()
	defer q.flightMu.Unlock()
	out := make([]*Batch, 0, len(q.flight))
	for b := range q.flight {
		out = append(out, b)
	}
	return out
}

// abandon counts what is still in flight as dropped at shutdown.
func (q *queue) abandon() {
	for _, b := range q.inFlight() {
		b.abandon()
	}
}

// settle counts one record reported by the exporter and gives its room
// back: delivered, or failed with err. A span or instance whose first
// record failed is lost to this exporter.
func (q *queue) settle(kind RecordKind, m *recMeta, wasHeld bool, err error) {
	if wasHeld {
		q.held.Add(-1)
	}
	if err == nil {
		q.exported.Add(1)
	} else {
		q.failed.Add(1)
		if le := q.lastErr.Load(); le == nil || le.err != err {
			q.lastErr.Store(&exportErr{err: err, msg: errorText(err), at: time.Now()})
		}
		q.markLost(kind, m)
	}
	q.outstanding.Add(-1)
	q.release(1, m.size)
}

// submit hands a batch to the AsyncExporter; a panic fails the batch.
func (q *queue) submit(b *Batch) {
	defer func() {
		if r := recover(); r != nil {
			err := fmt.Errorf("agenttrace: exporter %s panicked: %v", q.name, r)
			for i := range b.Records {
				b.Done(i, err)
			}
		}
	}()
	q.async.ExportAsync(q.abortCtx, b)
}

// exportSync calls Export for the batch and settles it with the result.
func (q *queue) exportSync(b *Batch) {
	err := q.export(b.Records)
	if err == nil {
		b.doneAll()
		return
	}
	err = safeError(err, q.name)
	failed, partial := partialFailures(err, len(b.Records))
	for i := range b.Records {
		if !partial || failed[i] {
			b.Done(i, err)
		} else {
			b.Done(i, nil)
		}
	}
}

// drop counts a record offered and dropped at once for reason r.
func (q *queue) drop(r DropReason) {
	q.buf.mu.Lock()
	q.buf.recorded++
	q.buf.dropped[r]++
	q.buf.mu.Unlock()
}

// count counts n records, taken from the buffer, dropped for reason r.
func (q *queue) count(r DropReason, n int) {
	q.buf.mu.Lock()
	q.buf.dropped[r] += uint64(n)
	q.buf.mu.Unlock()
}

// partialFailures returns which records of a batch of n a *PartialError
// names (ignoring bad indexes), and whether err is one. A panic in the
// error's own Unwrap, Is or As methods counts as "not a PartialError".
func partialFailures(err error, n int) (failed []bool, ok bool) {
	defer func() {
		if recover() != nil {
			failed, ok = nil, false
		}
	}()
	var pe *PartialError
	if !errors.As(err, &pe) || pe == nil {
		return nil, false
	}
	failed = make([]bool, n)
	for _, i := range pe.Failed {
		if i >= 0 && i < n {
			failed[i] = true
		}
	}
	return failed, true
}

// markLost marks the span or instance whose first record the exporter
// failed, so that its later records, and its children, are not offered to
// it: an exporter never sees an end without its start.
func (q *queue) markLost(kind RecordKind, m *recMeta) {
	switch kind {
	case SpanStarted:
		q.lossy.Store(true)
		m.span.dropped.Or(q.bit)
	case InstanceStarted:
		q.lossy.Store(true)
		m.inst.dropped.Or(q.bit)
	}
}

// dropOrphans removes, in place, the records whose span, parent or instance
// was lost, counting them and giving their room back.
func (q *queue) dropOrphans(batch entries) entries {
	n := 0
	for i := range batch.recs {
		if m := &batch.metas[i]; q.orphaned(batch.recs[i].Kind, m.span, m.inst) {
			q.count(DropOrphaned, 1)
			q.release(1, m.size)
			continue
		}
		batch.recs[n], batch.metas[n] = batch.recs[i], batch.metas[i]
		n++
	}
	clear(batch.recs[n:])
	clear(batch.metas[n:])
	return batch.slice(0, n)
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

// shutdownExporter calls the exporter's Shutdown, turning a panic into an
// error.
func (q *queue) shutdownExporter(ctx context.Context) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("agenttrace: exporter %s panicked in Shutdown: %v", q.name, r)
		}
	}()
	return safeError(q.exp.Shutdown(ctx), q.name)
}

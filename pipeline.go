package agenttrace

import (
	"context"
	"errors"
	"fmt"
	"runtime"
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

// entry is a queued record with the pipeline's bookkeeping beside it:
// exporters get the Record alone, pure data, so one that keeps a record
// keeps no span or caller context alive.
type entry struct {
	rec  Record
	meta recMeta
}

// recMeta is what the pipeline keeps about a record: the span or instance
// it is of (for coalescing and loss marking), the bytes charged to the
// queue, and its place in the recording order across shards.
type recMeta struct {
	span *Span     // nil for instance records
	inst *Instance // set on instance records
	size int
	seq  uint64
}

type flushReq struct{ done chan flushResult }

// flushResult is the worker's answer to a flush: the batches still in
// flight, which Flush waits for.
type flushResult struct {
	batches []*Batch
}

// queue is one exporter's bounded queue and the state of its worker.
//
// The queue is split into shards (a span's records always go to the shard
// its ID picks) so that producers on different cores rarely contend on one
// lock. A global sequence number, taken under the shard lock, restores the
// recording order when the worker takes all shards at once.
type queue struct {
	t    *Tracer
	bit  uint64
	slot int // index into Span.slots, or -1
	exp  Exporter
	name string

	shards []shard
	mask   int

	// used packs the records (high bits) and bytes (low usedBits bits)
	// queued or being exported; seq orders records across shards. Every
	// push writes both: they share a cache line of their own, apart from
	// the fields the worker reads.
	_     [64]byte
	used  atomic.Int64
	seq   atomic.Uint64
	_     [48]byte
	woken atomic.Bool // the worker was told a batch is full since its last take
	lossy atomic.Bool // an export failed: later records may have lost their start
	_     [62]byte

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
	merged      []entry
	recs        []Record // the records of a synchronous batch (worker only)
	metas       []recMeta
	states      []atomic.Uint32
	lists       [][]entry
	heads       []int
	nextSeq     uint64 // the sequence number the next take starts at
	// mergeFallbacks counts the takes place could not order directly
	// (expected to stay zero; tests check it).
	mergeFallbacks int
	logState       logState
}

// shard is one lock's worth of a queue.
type shard struct {
	mu        sync.Mutex
	recs      []entry
	spare     []entry
	gen       uint32 // bumped when the worker takes recs
	closed    bool
	recorded  uint64
	coalesced uint64
	dropped   [numDropReasons]uint64
	_         [64]byte
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
	n := 1
	for n < 4*runtime.GOMAXPROCS(0) && n < 32 {
		n *= 2
	}
	q := &queue{
		t: t, bit: 1 << uint(i), slot: -1, exp: e, name: exporterName(i, e),
		shards:  make([]shard, n),
		mask:    n - 1,
		space:   make(chan struct{}),
		wake:    make(chan struct{}, 1),
		flushCh: make(chan flushReq),
		stopCh:  make(chan struct{}),
		stopped: make(chan struct{}),
		index:   make(map[*Span]int),
		flight:  make(map[*Batch]struct{}),
		nextSeq: 1,
		heads:   make([]int, n),
	}
	for k := range q.shards {
		q.shards[k].gen = 1
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

func (q *queue) shardOf(id ID) *shard { return &q.shards[int(id[14])&q.mask] }

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
	sh := q.shardOf(s.id)
	if q.orphaned(kind, s, nil) {
		q.drop(sh, DropOrphaned)
		return
	}
	if !q.push(sh, kind, size, s, nil) && kind == SpanStarted {
		s.dropped.Or(q.bit)
	}
}

func (q *queue) pushInstance(e *entry, inst *Instance) {
	sh := q.shardOf(inst.id)
	kind := e.rec.Kind
	if q.orphaned(kind, nil, inst) {
		q.drop(sh, DropOrphaned)
		return
	}
	ok := q.push(sh, kind, e.meta.size, nil, e)
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

func (q *queue) drop(sh *shard, r DropReason) {
	sh.mu.Lock()
	sh.recorded++
	sh.dropped[r]++
	sh.mu.Unlock()
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

// push adds a record of kind and size to shard sh if there is room: a
// snapshot of span s, or the instance entry in. Records that begin
// something (span starts) get only 7/8 of the limits, so that the ends of
// what was already queued still find room.
func (q *queue) push(sh *shard, kind RecordKind, size int, s *Span, in *entry) bool {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	sh.recorded++
	if sh.closed {
		sh.dropped[DropShutdown]++
		return false
	}
	if q.coalesceQueued(sh, kind, size, s) {
		return true
	}
	queued, ok := q.reserveOrWait(sh, kind, size)
	if !ok {
		return false
	}
	q.writeSlot(sh, kind, size, s, in)
	if queued-int(q.outstanding.Load()) >= q.t.cfg.maxBatchRecords && !q.woken.Load() && q.woken.CompareAndSwap(false, true) {
		q.nudge() // a batch is full
	}
	return true
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
// the block timeout (WithBlockOnFull) if there is none. sh.mu is held on
// entry and on return (it is let go while waiting). On failure the drop is
// counted.
func (q *queue) reserveOrWait(sh *shard, kind RecordKind, size int) (queued int, ok bool) {
	maxRecs, maxBytes := q.limits(kind)
	queued, ok, reason := q.reserve(1, size, maxRecs, maxBytes)
	switch {
	case ok:
		return queued, true
	case q.t.cfg.blockTimeout <= 0:
		sh.dropped[reason]++
		return 0, false
	}
	deadline := time.NewTimer(q.t.cfg.blockTimeout)
	defer deadline.Stop()
	for {
		if r, waited := q.waitForRoom(sh, deadline.C); !waited {
			sh.dropped[r]++
			return 0, false
		}
		if queued, ok, _ := q.reserve(1, size, maxRecs, maxBytes); ok {
			return queued, true
		}
	}
}

// waitForRoom lets sh.mu go until the worker makes room or timeout fires,
// and takes it back. It reports false, with the drop reason, when the wait
// timed out or the queue closed meanwhile.
func (q *queue) waitForRoom(sh *shard, timeout <-chan time.Time) (DropReason, bool) {
	q.waiters.Add(1)
	q.spaceMu.Lock()
	space := q.space
	q.spaceMu.Unlock()
	sh.mu.Unlock()
	q.nudge()
	timedOut := false
	select {
	case <-space:
	case <-timeout:
		timedOut = true
	}
	q.waiters.Add(-1)
	sh.mu.Lock()
	switch {
	case timedOut:
		return DropBlockTimeout, false
	case sh.closed:
		return DropShutdown, false
	}
	return 0, true
}

// writeSlot appends the record to the shard, writing the span's snapshot
// straight into its slot. sh.mu is held.
func (q *queue) writeSlot(sh *shard, kind RecordKind, size int, s *Span, in *entry) {
	n := len(sh.recs)
	if n < cap(sh.recs) {
		sh.recs = sh.recs[:n+1]
	} else {
		sh.recs = append(sh.recs, entry{})
	}
	e := &sh.recs[n]
	if s != nil {
		e.rec.Kind, e.rec.Instance = kind, nil
		s.snapshotInto(&e.rec.Span)
		e.meta = recMeta{span: s}
		if q.slot >= 0 && kind == SpanStarted {
			s.slots[q.slot] = queueSlot{gen: sh.gen, idx: uint32(n)}
		}
	} else {
		*e = *in
	}
	e.meta.size = size
	e.meta.seq = q.seq.Add(1)
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
// record, if there is one and the size change fits; sh.mu is held.
func (q *queue) coalesceQueued(sh *shard, kind RecordKind, size int, s *Span) bool {
	if s == nil || q.slot < 0 || kind == SpanStarted {
		return false
	}
	sl := s.slots[q.slot]
	if sl.gen != sh.gen {
		return false
	}
	old := &sh.recs[sl.idx]
	if size != old.meta.size {
		maxRecs, maxBytes := q.limits(kind)
		if _, ok, _ := q.reserve(0, size-old.meta.size, maxRecs, maxBytes); !ok {
			return false
		}
	}
	s.snapshotInto(&old.rec.Span)
	old.meta.size = size
	sh.coalesced++
	return true
}

// coalesce merges, within recs, the later records of a span whose start is
// also in recs into that start record, which keeps its place. It returns
// the records left and the bytes freed.
func (q *queue) coalesce(recs []entry) ([]entry, int) {
	idx := q.index
	n, freed, merged := 0, 0, 0
	for i := range recs {
		r := &recs[i]
		switch r.rec.Kind {
		case SpanStarted:
			if !r.rec.Span.Status.Finished() {
				idx[r.meta.span] = n
			}
		case SpanActivated, SpanEnded:
			if j, ok := idx[r.meta.span]; ok {
				freed += recs[j].meta.size
				recs[j] = *r
				recs[j].rec.Kind = SpanStarted
				merged++
				continue
			}
		}
		if n != i {
			recs[n] = *r
		}
		n++
	}
	clear(idx)
	if merged > 0 {
		q.coalescedW.Add(uint64(merged))
		// The records past n were moved down: drop their references.
		clear(recs[n:])
	}
	return recs[:n], freed
}

// take moves the queued records of every shard to the worker, merged in
// recording order. All shard locks are held together, so the take is a
// cut: a record is in it only if every record pushed before it is too.
func (q *queue) take() []entry {
	for k := range q.shards {
		q.shards[k].mu.Lock()
	}
	lists := q.lists[:0]
	total := 0
	for k := range q.shards {
		sh := &q.shards[k]
		lists = append(lists, sh.recs)
		total += len(sh.recs)
		sh.recs = sh.spare[:0]
		sh.spare = nil
		sh.gen++
	}
	q.woken.Store(false)
	for k := len(q.shards) - 1; k >= 0; k-- {
		q.shards[k].mu.Unlock()
	}
	q.lists = lists
	out := q.place(lists, total)
	// Give the shards their emptied slices back.
	for k, l := range lists {
		clear(l)
		sh := &q.shards[k]
		sh.mu.Lock()
		if sh.spare == nil {
			sh.spare = l[:0]
		}
		sh.mu.Unlock()
		lists[k] = nil
	}
	return out
}

// place merges the records taken from the shards into recording order.
// Every record pushed took the next sequence number under its shard's lock,
// and a take holds every shard lock, so the records of one take carry the
// consecutive numbers from q.nextSeq: each goes straight to its position.
// Should that ever not hold, it falls back to a merge by comparison.
func (q *queue) place(lists [][]entry, total int) []entry {
	out := slices.Grow(q.merged[:0], total)[:total]
	lo := q.nextSeq
	for _, l := range lists {
		for i := range l {
			k := l[i].meta.seq - lo
			if k >= uint64(total) || out[k].rec.Kind != 0 {
				clear(out)
				q.mergeFallbacks++
				return q.mergeBySeq(lists, total)
			}
			out[k] = l[i]
		}
	}
	q.nextSeq = lo + uint64(total)
	return out
}

// mergeBySeq merges the shards' records by comparing sequence numbers.
func (q *queue) mergeBySeq(lists [][]entry, total int) []entry {
	out := q.merged[:0]
	heads := q.heads
	clear(heads)
	var last uint64
	for len(out) < total {
		best := -1
		for k, l := range lists {
			if heads[k] < len(l) && (best < 0 || l[heads[k]].meta.seq < lists[best][heads[best]].meta.seq) {
				best = k
			}
		}
		out = append(out, lists[best][heads[best]])
		last = lists[best][heads[best]].meta.seq
		heads[best]++
	}
	q.nextSeq = last + 1
	return out
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
		for k := range q.shards {
			sh := &q.shards[k]
			sh.mu.Lock()
			sh.closed = true
			sh.mu.Unlock()
		}
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
	if len(recs) == 0 {
		return
	}
	before := len(recs)
	recs, freed := q.coalesce(recs)
	if merged := before - len(recs); merged > 0 {
		q.release(merged, freed)
	}
	for start := 0; start < len(recs); {
		end := q.batchEnd(recs, start)
		batch := recs[start:end:end]
		start = end
		if q.lossy.Load() {
			batch = q.dropOrphans(batch)
		}
		if len(batch) == 0 {
			continue
		}
		q.batches.Add(1)
		if q.abortCtx.Err() != nil {
			for i := range batch {
				q.count(DropShutdown, 1)
				q.release(1, batch[i].meta.size)
			}
			continue
		}
		if q.async != nil {
			n := len(batch)
			q.submit(q.newBatch(batch, make([]Record, n), make([]recMeta, n), make([]atomic.Uint32, n)))
			continue
		}
		// A synchronous batch is settled before the next one is made: its
		// buffers are the worker's, reused.
		n := len(batch)
		q.recs = slices.Grow(q.recs[:0], n)[:n]
		q.metas = slices.Grow(q.metas[:0], n)[:n]
		q.states = slices.Grow(q.states[:0], n)[:n]
		clear(q.states)
		q.exportSync(q.newBatch(batch, q.recs[:n:n], q.metas, q.states))
		clear(q.recs)
		clear(q.metas)
	}
	clear(recs)
	q.merged = recs[:0]
}

// batchEnd returns the end of the batch that starts at recs[start], within
// the batch limits.
func (q *queue) batchEnd(recs []entry, start int) int {
	cfg := &q.t.cfg
	end, bytes := start, 0
	for end < len(recs) && end-start < cfg.maxBatchRecords &&
		(end == start || bytes+recs[end].meta.size <= cfg.maxBatchBytes) {
		bytes += recs[end].meta.size
		end++
	}
	return end
}

// newBatch registers the entries as in flight, as a batch whose records
// are copied into recs and bookkeeping into meta, beside them; state holds
// each record's progress (all open).
func (q *queue) newBatch(entries []entry, recs []Record, meta []recMeta, state []atomic.Uint32) *Batch {
	for i := range entries {
		recs[i], meta[i] = entries[i].rec, entries[i].meta
	}
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

func (q *queue) count(r DropReason, n int) {
	sh := &q.shards[0]
	sh.mu.Lock()
	sh.dropped[r] += uint64(n)
	sh.mu.Unlock()
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
func (q *queue) dropOrphans(batch []entry) []entry {
	out := batch[:0]
	for i := range batch {
		if e := &batch[i]; q.orphaned(e.rec.Kind, e.meta.span, e.meta.inst) {
			q.count(DropOrphaned, 1)
			q.release(1, e.meta.size)
			continue
		}
		out = append(out, batch[i])
	}
	clear(batch[len(out):])
	return out[:len(out):len(out)]
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

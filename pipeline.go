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
	rec := Record{Kind: kind, Instance: d, inst: inst, size: recordOverhead + d.heldBytes()}
	for _, q := range t.queues {
		q.pushInstance(&rec, inst)
	}
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
	merged      []Record
	lists       [][]Record
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
	recs      []Record
	spare     []Record
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

func (q *queue) pushInstance(rec *Record, inst *Instance) {
	sh := q.shardOf(inst.id)
	if q.orphaned(rec.Kind, nil, inst) {
		q.drop(sh, DropOrphaned)
		return
	}
	ok := q.push(sh, rec.Kind, rec.size, nil, rec)
	switch {
	case !ok && rec.Kind == InstanceStarted:
		inst.dropped.Or(q.bit)
	case ok && rec.Kind == InstanceEnded:
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
// snapshot of span s, or the instance record rec. Records that begin
// something (span starts) get only 7/8 of the limits, so that the ends of
// what was already queued still find room. A later record of span s whose
// start record is still queued replaces it in place: one record, in the
// start's position.
func (q *queue) push(sh *shard, kind RecordKind, size int, s *Span, rec *Record) bool {
	cfg := &q.t.cfg
	maxRecs, maxBytes := cfg.maxQueueRecords, cfg.maxQueueBytes
	sh.mu.Lock()
	sh.recorded++
	if sh.closed {
		sh.dropped[DropShutdown]++
		sh.mu.Unlock()
		return false
	}
	if s != nil && q.slot >= 0 && kind != SpanStarted {
		if sl := s.slots[q.slot]; sl.gen == sh.gen {
			old := &sh.recs[sl.idx]
			ok := size == old.size // nothing to charge
			if !ok {
				_, ok, _ = q.reserve(0, size-old.size, maxRecs, maxBytes)
			}
			if ok {
				s.updateInto(&old.Span)
				old.size = size
				sh.coalesced++
				sh.mu.Unlock()
				return true
			}
		}
	}
	if kind == SpanStarted {
		maxRecs -= maxRecs / 8
		maxBytes -= maxBytes / 8
	}
	var deadline *time.Timer
	for {
		queued, ok, reason := q.reserve(1, size, maxRecs, maxBytes)
		if ok {
			n := len(sh.recs)
			if n < cap(sh.recs) {
				sh.recs = sh.recs[:n+1]
			} else {
				sh.recs = append(sh.recs, Record{})
			}
			r := &sh.recs[n]
			if s != nil {
				r.Kind, r.span, r.Instance, r.inst = kind, s, nil, nil
				s.snapshotInto(&r.Span)
				if q.slot >= 0 && kind == SpanStarted {
					s.slots[q.slot] = queueSlot{gen: sh.gen, idx: uint32(n)}
				}
			} else {
				*r = *rec
			}
			r.size = size
			r.seq = q.seq.Add(1)
			sh.mu.Unlock()
			if deadline != nil {
				deadline.Stop()
			}
			if queued-int(q.outstanding.Load()) >= cfg.maxBatchRecords && !q.woken.Load() && q.woken.CompareAndSwap(false, true) {
				q.nudge()
			}
			return true
		}
		if cfg.blockTimeout <= 0 {
			sh.dropped[reason]++
			sh.mu.Unlock()
			return false
		}
		if deadline == nil {
			deadline = time.NewTimer(cfg.blockTimeout)
		}
		q.waiters.Add(1)
		q.spaceMu.Lock()
		space := q.space
		q.spaceMu.Unlock()
		sh.mu.Unlock()
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
		q.waiters.Add(-1)
		sh.mu.Lock()
		if timedOut {
			sh.dropped[DropBlockTimeout]++
			sh.mu.Unlock()
			return false
		}
		if sh.closed {
			sh.dropped[DropShutdown]++
			sh.mu.Unlock()
			return false
		}
	}
}

// take moves the queued records of every shard to the worker, merged in
// recording order. All shard locks are held together, so the take is a
// cut: a record is in it only if every record pushed before it is too.
func (q *queue) take() []Record {
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
func (q *queue) place(lists [][]Record, total int) []Record {
	out := slices.Grow(q.merged[:0], total)[:total]
	lo := q.nextSeq
	for _, l := range lists {
		for i := range l {
			k := l[i].seq - lo
			if k >= uint64(total) || out[k].Kind != 0 {
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
func (q *queue) mergeBySeq(lists [][]Record, total int) []Record {
	out := q.merged[:0]
	heads := q.heads
	clear(heads)
	var last uint64
	for len(out) < total {
		best := -1
		for k, l := range lists {
			if heads[k] < len(l) && (best < 0 || l[heads[k]].seq < lists[best][heads[best]].seq) {
				best = k
			}
		}
		out = append(out, lists[best][heads[best]])
		last = lists[best][heads[best]].seq
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
func (q *queue) exportAll() error {
	recs := q.take()
	if len(recs) == 0 {
		return nil
	}
	before := len(recs)
	recs, freed := q.coalesce(recs)
	if merged := before - len(recs); merged > 0 {
		q.release(merged, freed)
	}
	var firstErr error
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
				q.release(1, batch[i].size)
			}
			continue
		}
		if q.async != nil {
			q.submit(q.newBatch(slices.Clone(batch)))
			continue
		}
		if err := q.exportSync(q.newBatch(batch)); err != nil && firstErr == nil {
			firstErr = err
		}
	}
	clear(recs)
	q.merged = recs[:0]
	return firstErr
}

// batchEnd returns the end of the batch that starts at recs[start], within
// the batch limits.
func (q *queue) batchEnd(recs []Record, start int) int {
	cfg := &q.t.cfg
	end, bytes := start, 0
	for end < len(recs) && end-start < cfg.maxBatchRecords &&
		(end == start || bytes+recs[end].size <= cfg.maxBatchBytes) {
		bytes += recs[end].size
		end++
	}
	return end
}

// newBatch registers the records as in flight.
func (q *queue) newBatch(recs []Record) *Batch {
	b := &Batch{Records: recs, q: q, state: make([]atomic.Uint32, len(recs)), acked: make(chan struct{})}
	b.open.Store(int64(len(recs)))
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
func (q *queue) settle(r *Record, wasHeld bool, err error) {
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
		q.markLost(r)
	}
	q.outstanding.Add(-1)
	q.release(1, r.size)
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
func (q *queue) exportSync(b *Batch) error {
	err := q.export(b.Records)
	if err == nil {
		for i := range b.Records {
			b.Done(i, nil)
		}
		return nil
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
	return err
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
func (q *queue) markLost(r *Record) {
	switch r.Kind {
	case SpanStarted:
		q.lossy.Store(true)
		r.span.dropped.Or(q.bit)
	case InstanceStarted:
		q.lossy.Store(true)
		r.inst.dropped.Or(q.bit)
	}
}

// dropOrphans removes, in place, the records whose span, parent or instance
// was lost, counting them and giving their room back.
func (q *queue) dropOrphans(batch []Record) []Record {
	out := batch[:0]
	for i := range batch {
		if r := &batch[i]; q.orphaned(r.Kind, r.span, r.inst) {
			q.count(DropOrphaned, 1)
			q.release(1, r.size)
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

// coalesce merges, within recs, the later records of a span whose start is
// also in recs into that start record, which keeps its place. It returns
// the records left and the bytes freed.
func (q *queue) coalesce(recs []Record) ([]Record, int) {
	idx := q.index
	n, freed, merged := 0, 0, 0
	for i := range recs {
		r := &recs[i]
		switch r.Kind {
		case SpanStarted:
			if !r.Span.Status.Finished() {
				idx[r.span] = n
			}
		case SpanActivated, SpanEnded:
			if j, ok := idx[r.span]; ok {
				freed += recs[j].size
				recs[j] = *r
				recs[j].Kind = SpanStarted
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

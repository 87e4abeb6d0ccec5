package agenttrace

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
)

// Exporter receives ordered batches of records. The pipeline calls Export
// from one goroutine per exporter, never concurrently, with records in an
// order that never shows a child before its parent, a span before its
// instance, an end before its start, or an instance end before the ends of
// its spans recorded before it. Retries, idempotency and backoff belong to
// the exporter; an error it returns is counted (Stats.Failed) and the batch
// is not offered again. Export runs under the export timeout
// (WithExportTimeout), must honour ctx and must not retain the records
// slice after it returns (the records themselves may be kept). The slice
// has no spare capacity: appending to it never touches another batch.
//
// An Export or Shutdown that panics, or an error whose methods panic, is
// turned into an error: an exporter cannot crash the host.
type Exporter interface {
	Export(ctx context.Context, records []Record) error
	// Shutdown is called once, after the last Export, and must honour ctx.
	Shutdown(ctx context.Context) error
}

// AsyncExporter is an Exporter that takes batches without waiting for
// their delivery and reports the outcome of each record as it happens, so
// that one slow part of a batch (one instance's requests, say) holds up
// nothing else and a retry is never cut short by a timeout the exporter
// did not choose. When an exporter implements it, the pipeline calls
// ExportAsync instead of Export, with the same ordering guarantees, and
// applies no export timeout: the exporter bounds its own work (the
// Prefactor exporter by its retry deadline per operation).
//
// ExportAsync must return promptly; it must report every record of the
// batch exactly once with Batch.Done, from any goroutine, and may first
// mark a record Batch.Hold (acknowledged but not delivered yet). ctx ends
// when the tracer's Shutdown context ends: work still in flight then is
// abandoned, and what was not reported counts as dropped (DropShutdown).
// Shutdown is called after the last ExportAsync and must wait, within its
// ctx, for the exporter's work to end.
type AsyncExporter interface {
	Exporter
	ExportAsync(ctx context.Context, b *Batch)
}

// Batch is a batch of records handed to an AsyncExporter. Its records stay
// charged to the exporter's queue (Stats.Queued, and the queue limits)
// until they are reported done, so what an exporter holds is bounded.
type Batch struct {
	// Records are the batch's records, in order, with no spare capacity.
	// The exporter may keep the slice until it reported every record.
	Records []Record

	q     *queue
	state []atomic.Uint32 // recOpen, recHeld or recDone
	open  atomic.Int64    // records neither held nor done
	left  atomic.Int64    // records not done
	acked chan struct{}   // closed when open reaches 0

	errMu  sync.Mutex
	err    error
	failed []int // indexes reported with an error
	logged bool  // b is in its queue's list of batches with errors
}

const (
	recOpen uint32 = iota
	recHeld
	recDone
)

// Len returns the number of records in the batch.
func (b *Batch) Len() int { return len(b.Records) }

// Done reports record i delivered (err nil) or not delivered (err says
// why; counted in Stats.Failed, and a span or instance whose first record
// failed is treated as lost). Later calls for the same record, calls with
// a bad index, and calls after the tracer gave up on the batch (its
// Shutdown context ended) are ignored.
func (b *Batch) Done(i int, err error) {
	if b == nil || i < 0 || i >= len(b.state) {
		return
	}
	prev := b.state[i].Load()
	for prev != recDone && !b.state[i].CompareAndSwap(prev, recDone) {
		prev = b.state[i].Load()
	}
	if prev == recDone {
		return
	}
	if _, safe := err.(*exporterError); !safe {
		err = safeError(err, b.q.name)
	}
	b.q.settle(&b.Records[i], prev == recHeld, err)
	if err != nil {
		b.errMu.Lock()
		if b.err == nil {
			b.err = err
		}
		b.failed = append(b.failed, i)
		log := !b.logged
		b.logged = true
		b.errMu.Unlock()
		if log {
			b.q.noteError(b)
		}
	}
	b.finishOne(prev == recOpen)
}

// Hold reports record i acknowledged but not delivered yet: it waits in the
// exporter (for a pending ancestor to become active, say). Flush does not
// wait for held records; they stay charged to the queue and are counted in
// Stats.Held until Done.
func (b *Batch) Hold(i int) {
	if b == nil || i < 0 || i >= len(b.state) || !b.state[i].CompareAndSwap(recOpen, recHeld) {
		return
	}
	b.q.held.Add(1)
	if b.open.Add(-1) == 0 {
		close(b.acked)
	}
}

func (b *Batch) finishOne(wasOpen bool) {
	if wasOpen && b.open.Add(-1) == 0 {
		close(b.acked)
	}
	if b.left.Add(-1) == 0 {
		b.q.retire(b)
	}
}

// abandon counts every record not reported yet as dropped at shutdown.
func (b *Batch) abandon() {
	for i := range b.state {
		prev := b.state[i].Load()
		for prev != recDone && !b.state[i].CompareAndSwap(prev, recDone) {
			prev = b.state[i].Load()
		}
		if prev == recDone {
			continue
		}
		if prev == recHeld {
			b.q.held.Add(-1)
		}
		b.q.count(DropShutdown, 1)
		b.q.release(1, b.Records[i].size)
		b.finishOne(prev == recOpen)
	}
}

// takeErr returns the error of the records reported failed so far: a
// *PartialError with their indexes and the first error, or nil. A later
// failure notes the batch again.
func (b *Batch) takeErr() error {
	b.errMu.Lock()
	defer b.errMu.Unlock()
	b.logged = false
	if b.err == nil {
		return nil
	}
	return &PartialError{Failed: slices.Sorted(slices.Values(b.failed)), Err: b.err}
}

// PartialError is returned by an Export that delivered some records of its
// batch and not others. Failed holds the indexes, within the batch, of the
// records not delivered: only those are counted as failed (Stats.Failed),
// and only their spans and instances are treated as lost (their later
// records and their children are not offered to the exporter again). Any
// other error fails the whole batch.
type PartialError struct {
	Failed []int
	Err    error
}

// Error implements error.
func (e *PartialError) Error() string {
	if e == nil {
		return "<nil *PartialError>"
	}
	msg := "<nil>"
	if e.Err != nil {
		msg = errorText(e.Err)
	}
	return fmt.Sprintf("%d records not exported: %s", len(e.Failed), msg)
}

// Unwrap returns Err.
func (e *PartialError) Unwrap() error {
	if e == nil {
		return nil
	}
	return e.Err
}

// DeliveryError is returned by Shutdown when an exporter did not deliver
// every record the tracer recorded for it over its life: it says how many
// were lost and why.
type DeliveryError struct {
	// Exporter is the exporter's name.
	Exporter string
	// Failed counts records the exporter reported not delivered.
	Failed uint64
	// Dropped counts records dropped before the exporter saw them, by
	// reason.
	Dropped DropCounts
	// LastError is the exporter's last error, "" if none.
	LastError string
}

// Error implements error.
func (e *DeliveryError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "agenttrace: %s: %d records not delivered", e.Exporter, e.Failed+e.Dropped.Total())
	var parts []string
	if e.Failed > 0 {
		parts = append(parts, fmt.Sprintf("failed %d", e.Failed))
	}
	d := e.Dropped
	for _, f := range []struct {
		name string
		n    uint64
	}{{"queue_full", d.QueueFull}, {"queue_bytes", d.QueueBytes}, {"block_timeout", d.BlockTimeout},
		{"orphaned", d.Orphaned}, {"shutdown", d.Shutdown}} {
		if f.n > 0 {
			parts = append(parts, fmt.Sprintf("dropped %s %d", f.name, f.n))
		}
	}
	if len(parts) > 0 {
		b.WriteString(" (" + strings.Join(parts, ", ") + ")")
	}
	if e.LastError != "" {
		b.WriteString("; last error: " + e.LastError)
	}
	return b.String()
}

// exporterError is an error of an exporter that cannot be trusted to
// behave: its text was taken once, safely.
type exporterError struct {
	msg string
	err error
}

func (e *exporterError) Error() string { return e.msg }
func (e *exporterError) Unwrap() error { return e.err }

// safeError returns err as an error whose Error method cannot panic: a nil
// pointer in a non-nil error interface (a typed nil) becomes a descriptive
// error, and an error whose Error method panics keeps the panic's text.
// nil stays nil.
func safeError(err error, exporter string) error {
	if err == nil {
		return nil
	}
	if isNilPointer(err) {
		return fmt.Errorf("agenttrace: exporter %s returned a nil %T as its error; its records are counted as failed", exporter, err)
	}
	msg, ok := tryErrorText(err)
	if !ok {
		return &exporterError{msg: msg}
	}
	return &exporterError{msg: msg, err: err}
}

// errorText returns err.Error(), or a description if that panics.
func errorText(err error) string {
	s, _ := tryErrorText(err)
	return s
}

func tryErrorText(err error) (s string, ok bool) {
	defer func() {
		if r := recover(); r != nil {
			s, ok = fmt.Sprintf("%T (its Error method panicked: %v)", err, r), false
		}
	}()
	if isNilPointer(err) {
		return fmt.Sprintf("nil %T", err), false
	}
	return err.Error(), true
}

// isNilPointer reports whether v holds a nil pointer, map, slice, func or
// channel.
func isNilPointer(v any) bool {
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Pointer, reflect.Map, reflect.Slice, reflect.Func, reflect.Chan, reflect.Interface, reflect.UnsafePointer:
		return rv.IsNil()
	}
	return false
}

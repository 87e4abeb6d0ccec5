package agenttrace

import (
	"log/slog"
	"time"
)

// Stats is a snapshot of what a tracer recorded, exported and lost.
//
// For each exporter, at any moment:
//
//	Recorded = Exported + Coalesced + Failed + Dropped.Total() + Queued
//
// where Coalesced counts records merged into an earlier record of the same
// span (a span that started and ended in one batch window is exported as one
// record), and Queued the records not settled yet (queued, being exported,
// or held by the exporter). After Flush, Queued is only what is held; when
// Shutdown returns it is 0, so nothing recorded is unaccounted for. (The
// counters are read one by one: a snapshot taken while records move may be
// off by those in motion.)
type Stats struct {
	SpansStarted     uint64 `json:"spans_started"`
	SpansEnded       uint64 `json:"spans_ended"`
	InstancesStarted uint64 `json:"instances_started"`
	InstancesEnded   uint64 `json:"instances_ended"`
	// IllegalTransitions counts calls the state machine forbids (Activate
	// on an active span, Cancel on an active one, Fail or SetResult after
	// the end, a span started in an ended instance, ...). Each was a no-op.
	IllegalTransitions uint64 `json:"illegal_transitions"`
	// UnknownSpanTypes counts spans started with an unregistered type.
	UnknownSpanTypes uint64 `json:"unknown_span_types"`
	// PayloadsTruncated counts payloads cut to the size cap.
	PayloadsTruncated uint64 `json:"payloads_truncated"`
	// PayloadErrors counts payloads that could not be encoded or redacted
	// and were replaced by an error marker.
	PayloadErrors uint64 `json:"payload_errors"`
	// AfterShutdown counts recording calls made after Shutdown.
	AfterShutdown uint64 `json:"after_shutdown"`
	// InstancesTerminated counts instances the backend terminated (see
	// Terminator).
	InstancesTerminated uint64 `json:"instances_terminated,omitempty"`
	// HookPanics counts panics recovered in user hooks other than the
	// redactor (WithParentExtractor).
	HookPanics uint64 `json:"hook_panics,omitempty"`

	// The sums over all exporters of the fields of ExporterStats.
	Recorded  uint64     `json:"recorded"`
	Exported  uint64     `json:"exported"`
	Coalesced uint64     `json:"coalesced"`
	Failed    uint64     `json:"failed"`
	Dropped   DropCounts `json:"dropped"`
	Retried   uint64     `json:"retried"`
	Queued    int        `json:"queued"`
	Held      int        `json:"held,omitempty"`
	// LastError is the most recent export error of any exporter, "" if
	// none.
	LastError   string    `json:"last_error,omitempty"`
	LastErrorAt time.Time `json:"last_error_at,omitzero"`

	Exporters []ExporterStats `json:"exporters,omitempty"`
}

// ExporterStats are the counters of one exporter's queue.
type ExporterStats struct {
	Name string `json:"name"`
	// Recorded counts records offered to the queue.
	Recorded uint64 `json:"recorded"`
	// Exported counts records the exporter delivered (for an
	// AsyncExporter, reported done without error).
	Exported uint64 `json:"exported"`
	// Coalesced counts records merged into an earlier one of their span.
	Coalesced uint64 `json:"coalesced"`
	// Failed counts records the exporter reported not delivered (in
	// batches Export returned an error for, or reported done with an
	// error).
	Failed  uint64     `json:"failed"`
	Dropped DropCounts `json:"dropped"`
	// Retried is reported by exporters that retry (those with a
	// Retried() uint64 method).
	Retried uint64 `json:"retried"`
	Batches uint64 `json:"batches"`
	// Queued is the number of records queued or being exported now
	// (including those held), and QueuedBytes the bytes they are charged.
	Queued int `json:"queued"`
	// Held counts records an exporter acknowledged but has not delivered
	// yet (the Prefactor exporter holds the records of a span started
	// pending, and of its descendants, until it becomes active). They are
	// in Queued, and count as Exported or Failed once their fate is known.
	Held        int       `json:"held,omitempty"`
	QueuedBytes int       `json:"queued_bytes"`
	LastError   string    `json:"last_error,omitempty"`
	LastErrorAt time.Time `json:"last_error_at,omitzero"`
}

// DropCounts counts dropped records by reason.
type DropCounts struct {
	QueueFull    uint64 `json:"queue_full"`
	QueueBytes   uint64 `json:"queue_bytes"`
	BlockTimeout uint64 `json:"block_timeout"`
	Orphaned     uint64 `json:"orphaned"`
	Shutdown     uint64 `json:"shutdown"`
}

// Total returns the sum over all reasons.
func (d DropCounts) Total() uint64 {
	return d.QueueFull + d.QueueBytes + d.BlockTimeout + d.Orphaned + d.Shutdown
}

func (d *DropCounts) add(o DropCounts) {
	d.QueueFull += o.QueueFull
	d.QueueBytes += o.QueueBytes
	d.BlockTimeout += o.BlockTimeout
	d.Orphaned += o.Orphaned
	d.Shutdown += o.Shutdown
}

func dropCounts(c [numDropReasons]uint64) DropCounts {
	return DropCounts{
		QueueFull: c[DropQueueFull], QueueBytes: c[DropQueueBytes], BlockTimeout: c[DropBlockTimeout],
		Orphaned: c[DropOrphaned], Shutdown: c[DropShutdown],
	}
}

// Stats returns the tracer's counters. It is cheap enough to call often.
func (t *Tracer) Stats() Stats {
	if t == nil {
		return Stats{}
	}
	started, ended := t.stats.spanCounts()
	s := Stats{
		SpansStarted:        started,
		SpansEnded:          ended,
		InstancesStarted:    t.stats.instancesStarted.Load(),
		InstancesEnded:      t.stats.instancesEnded.Load(),
		IllegalTransitions:  t.stats.illegal.Load(),
		UnknownSpanTypes:    t.stats.unknownTypes.Load(),
		PayloadsTruncated:   t.stats.truncated.Load(),
		PayloadErrors:       t.stats.payloadErrors.Load(),
		AfterShutdown:       t.stats.afterShutdown.Load(),
		InstancesTerminated: t.stats.instancesTerminated.Load(),
		HookPanics:          t.stats.hookPanics.Load(),
	}
	for _, q := range t.queues {
		e := q.stats()
		s.Exporters = append(s.Exporters, e)
		s.Recorded += e.Recorded
		s.Exported += e.Exported
		s.Coalesced += e.Coalesced
		s.Failed += e.Failed
		s.Retried += e.Retried
		s.Queued += e.Queued
		s.Held += e.Held
		s.Dropped.add(e.Dropped)
		if e.LastError != "" && e.LastErrorAt.After(s.LastErrorAt) || s.LastError == "" && e.LastError != "" {
			s.LastError, s.LastErrorAt = e.LastError, e.LastErrorAt
		}
	}
	return s
}

func (q *queue) stats() ExporterStats {
	e := ExporterStats{Name: q.name}
	q.buf.mu.Lock()
	e.Recorded, e.Coalesced = q.buf.recorded, q.buf.coalesced
	dropped := q.buf.dropped
	q.buf.mu.Unlock()
	e.Dropped = dropCounts(dropped)
	e.Queued, e.QueuedBytes = unpackUsed(q.used.Load())
	e.Exported = q.exported.Load()
	e.Coalesced += q.coalescedW.Load()
	e.Failed = q.failed.Load()
	e.Held = int(q.held.Load())
	e.Batches = q.batches.Load()
	if r, ok := q.exp.(interface{ Retried() uint64 }); ok {
		e.Retried = r.Retried()
	}
	if le := q.lastErr.Load(); le != nil {
		e.LastError, e.LastErrorAt = le.msg, le.at
	}
	return e
}

// logState rate-limits the worker's log lines: at most one line per kind
// of trouble per log interval, each with the counts since the last line.
type logState struct {
	lastDrop, lastFail, lastTracer        time.Time
	drops                                 DropCounts
	failed                                uint64
	illegal, payloadErrors, afterShutdown uint64
}

// report logs what changed since the last line, if the interval passed (or
// final is set). It runs on the worker goroutine, never on the hot path.
func (l *logState) report(q *queue, final bool) {
	log := q.t.cfg.log()
	now := time.Now()
	due := func(last time.Time) bool { return final || now.Sub(last) >= q.t.cfg.logInterval }
	e := q.stats()
	if d := e.Dropped; d != l.drops && due(l.lastDrop) {
		log.Warn("agenttrace: records dropped", slog.String("exporter", q.name),
			slog.Uint64("queue_full", d.QueueFull-l.drops.QueueFull),
			slog.Uint64("queue_bytes", d.QueueBytes-l.drops.QueueBytes),
			slog.Uint64("block_timeout", d.BlockTimeout-l.drops.BlockTimeout),
			slog.Uint64("orphaned", d.Orphaned-l.drops.Orphaned),
			slog.Uint64("shutdown", d.Shutdown-l.drops.Shutdown),
			slog.Uint64("total_dropped", d.Total()))
		l.drops, l.lastDrop = d, now
	}
	if e.Failed != l.failed && due(l.lastFail) {
		log.Error("agenttrace: export failed", slog.String("exporter", q.name),
			slog.Uint64("records", e.Failed-l.failed), slog.String("error", e.LastError))
		l.failed, l.lastFail = e.Failed, now
	}
	if q.bit != 1 { // tracer-wide counters are reported by the first worker
		return
	}
	st := &q.t.stats
	il, pe, as := st.illegal.Load(), st.payloadErrors.Load(), st.afterShutdown.Load()
	if (il != l.illegal || pe != l.payloadErrors || as != l.afterShutdown) && due(l.lastTracer) {
		log.Warn("agenttrace: recording problems",
			slog.Uint64("illegal_transitions", il-l.illegal),
			slog.Uint64("payload_errors", pe-l.payloadErrors),
			slog.Uint64("after_shutdown", as-l.afterShutdown))
		l.illegal, l.payloadErrors, l.afterShutdown, l.lastTracer = il, pe, as, now
	}
}

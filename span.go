package agenttrace

import (
	"bytes"
	"maps"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Span is one unit of work inside an instance: an LLM call, a tool call, a
// step. Its lifecycle is the Prefactor API's:
//
//	pending --Activate--> active --End--> complete
//	   |                     \--Fail--> failed
//	   \--Cancel--> cancelled
//
// Every method is safe for concurrent use, never blocks on I/O and never
// panics. Methods on a nil *Span do nothing. End is idempotent; any other
// method called after the span finished, and any transition the state
// machine forbids, does nothing and is counted in Stats.IllegalTransitions.
type Span struct {
	t      *Tracer
	inst   *Instance
	parent *Span
	id     ID
	typ    string
	name   string

	// dropped has bit i set when a record of this span could not enter
	// exporter i's queue; its later records and its children then skip that
	// exporter, so no exporter sees an end without a start or a child
	// without a parent.
	dropped atomic.Uint64

	// slots remember where the span's start record sits in the queues of
	// the first exporters, so that End can update it in place while it is
	// still queued (coalescing on the producer side). Guarded by the
	// queue's mu.
	slots [producerCoalesceQueues]queueSlot

	// openPrev and openNext link the span into its instance's list of open
	// spans (spanCounts.open), guarded by the instance's end lock.
	openPrev, openNext *Span

	mu         sync.Mutex
	status     Status
	createdAt  time.Time
	startedAt  time.Time
	endedAt    time.Time
	firstToken time.Time
	payload    []byte
	result     []byte
	err        *ErrorInfo
	usage      *Usage // immutable once set; replaced, never modified
	cost       *Cost
	sensitive  *bool
	// traceParent is the caller's trace context at start (immutable).
	traceParent *TraceParent
	payloadErr  string

	// ctx is the context Start returned (the span lives in one allocation
	// with it).
	ctx spanCtx

	// inline holds the first small payload or result set on the span, so
	// that it needs no allocation of its own; inlineTaken is set once it is
	// used, and it is never written again (records share it).
	inlineTaken atomic.Bool
	inline      [inlineSize]byte
}

// inlineSize is the size of a span's inline payload buffer. It fills the
// span's allocation size class.
const inlineSize = 136

// keep returns a copy of b that the span can hold: in its inline buffer if
// b fits and the buffer is free, in a new slice otherwise. s may be nil.
func (s *Span) keep(b []byte) []byte {
	if s != nil && len(b) <= inlineSize && s.inlineTaken.CompareAndSwap(false, true) {
		n := copy(s.inline[:], b)
		return s.inline[:n:n]
	}
	return clip(bytes.Clone(b))
}

// SpanOption configures one span at Start.
type SpanOption interface {
	applySpan(spanConfig) spanConfig
}

type spanConfig struct {
	name      string
	start     time.Time
	sensitive *bool
}

type spanOptionFunc func(spanConfig) spanConfig

func (f spanOptionFunc) applySpan(c spanConfig) spanConfig { return f(c) }

// WithName gives the span a human name, such as "chat gpt-4o" or
// "web_search". Exporters fall back to the span type.
func WithName(name string) SpanOption {
	return spanOptionFunc(func(c spanConfig) spanConfig { c.name = name; return c })
}

// WithStartTime sets the span's start (or creation, for a pending span)
// time instead of now.
func WithStartTime(t time.Time) SpanOption {
	return spanOptionFunc(func(c spanConfig) spanConfig { c.start = t; return c })
}

// WithSensitive asks the backend to encode the span's sensitive content
// (Prefactor's sensitive_encoding).
func WithSensitive(sensitive bool) SpanOption {
	return spanOptionFunc(func(c spanConfig) spanConfig { c.sensitive = &sensitive; return c })
}

// ID returns the span's ID, or the zero ID for a nil span.
func (s *Span) ID() ID {
	if s == nil {
		return ID{}
	}
	return s.id
}

// ParentID returns the parent span's ID, or the zero ID for a root span.
func (s *Span) ParentID() ID {
	if s == nil || s.parent == nil {
		return ID{}
	}
	return s.parent.id
}

// Instance returns the instance the span belongs to.
func (s *Span) Instance() *Instance {
	if s == nil {
		return nil
	}
	return s.inst
}

// Type returns the span's type (its schema name).
func (s *Span) Type() string {
	if s == nil {
		return ""
	}
	return s.typ
}

// Status returns the span's current status (0 for a nil span).
func (s *Span) Status() Status {
	if s == nil {
		return 0
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.status
}

// Data returns a snapshot of the span as it is now.
func (s *Span) Data() SpanData {
	if s == nil {
		return SpanData{}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.snapshotLocked()
}

// Activate moves a pending span to active: the work it stands for has
// begun. On a span that is not pending it does nothing (counted).
func (s *Span) Activate() {
	if s == nil {
		return
	}
	s.activate(time.Time{})
}

// ActivateAt is Activate at time t (for spans replayed from another
// source). A zero t means now; a t before the span's creation is clamped
// to it. Like Activate, it does nothing on a span that is not pending
// (counted).
func (s *Span) ActivateAt(t time.Time) {
	if s == nil {
		return
	}
	s.activate(t)
}

func (s *Span) activate(at time.Time) {
	now := at
	if now.IsZero() {
		now = s.t.now()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.status != StatusPending {
		s.t.illegal()
		return
	}
	if now.Before(s.createdAt) {
		now = s.createdAt
	}
	s.status = StatusActive
	s.startedAt = now
	s.inst.move(StatusPending, StatusActive)
	s.t.emitSpan(SpanActivated, s)
}

// End finishes the span: an active span completes; a pending span that
// never became active is cancelled. A second End, or End after Fail or
// Cancel, does nothing, so `defer span.End()` is always safe.
func (s *Span) End() {
	if s == nil {
		return
	}
	s.finish(StatusComplete, nil, false, time.Time{})
}

// EndAt is End at time t (for spans replayed from another source, such as
// the OpenTelemetry bridge's SpanProcessor). A zero t means now; a t before
// the span's start (or, for a pending span, its creation) is clamped to it.
// The state machine is End's: a second end does nothing, a pending span is
// cancelled. Ordering guarantees follow the recording order, not t: a span
// still open when its instance ends is ended by it, whatever t a later
// EndAt gives (see Instance.End and Instance.EndAt).
func (s *Span) EndAt(t time.Time) {
	if s == nil {
		return
	}
	s.finish(StatusComplete, nil, false, t)
}

// Fail finishes the span as failed with err's type and message. An active
// span whose work was cancelled should Fail with the context's error. Fail
// on a pending span cancels it (the API allows only pending -> cancelled)
// with err as the reason. Fail on a finished span does nothing (counted).
func (s *Span) Fail(err error) {
	if s == nil {
		return
	}
	s.finish(StatusFailed, errorInfo(err), true, time.Time{})
}

// FailAt is Fail at time t: a zero t means now, a t before the span's
// start is clamped to it, and ordering follows the recording order (see
// EndAt). Like Fail, it cancels a pending span and does nothing on a
// finished one (counted).
func (s *Span) FailAt(err error, t time.Time) {
	if s == nil {
		return
	}
	s.finish(StatusFailed, errorInfo(err), true, t)
}

// Cancel finishes a pending span as cancelled: the work it stood for never
// started. An active span cannot be cancelled (the API forbids it): Cancel
// on one does nothing (counted); use Fail(ctx.Err()) instead.
func (s *Span) Cancel(reason string) {
	if s == nil {
		return
	}
	defer s.inst.endLock().Unlock()
	now := s.t.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.status != StatusPending {
		s.t.illegal()
		return
	}
	s.err = &ErrorInfo{Type: "cancelled", Message: clipString(reason, MaxErrorMessage)}
	s.endLocked(StatusCancelled, now)
}

func (s *Span) finish(target Status, info *ErrorInfo, explicit bool, at time.Time) {
	defer s.inst.endLock().Unlock()
	now := at
	if now.IsZero() {
		now = s.t.now()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !at.IsZero() {
		start := s.startedAt
		if start.IsZero() {
			start = s.createdAt
		}
		if now.Before(start) {
			now = start
		}
	}
	switch s.status {
	case StatusActive:
	case StatusPending:
		target = StatusCancelled
		if info == nil {
			info = &ErrorInfo{Type: "cancelled", Message: "ended before it became active"}
		}
	default:
		if explicit {
			s.t.illegal()
		}
		return
	}
	if info != nil {
		s.err = info
	}
	s.endLocked(target, now)
}

// abandon ends the span because its instance ends at now: see
// Instance.End. The instance's end lock is held.
func (s *Span) abandon(now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.status.Finished() {
		s.inst.spans.unlink(s)
		return
	}
	target := StatusFailed
	start := s.startedAt
	if s.status == StatusPending {
		target, start = StatusCancelled, s.createdAt
	}
	if now.Before(start) {
		now = start
	}
	s.err = &ErrorInfo{Type: ErrorTypeInstanceEnded, Message: "instance ended first: the span was still open when its instance ended"}
	s.inst.abandoned.Add(1)
	s.endLocked(target, now)
}

// endLocked records the final status; s.mu and the instance's end lock are
// held.
func (s *Span) endLocked(target Status, now time.Time) {
	s.inst.spans.unlink(s)
	old := s.status
	s.status = target
	s.endedAt = now
	s.inst.move(old, target)
	s.inst.rollup(s)
	s.t.stats.spansEnded.Add(1)
	s.t.emitSpan(SpanEnded, s)
}

// SetResult records the span's outputs (its result payload), snapshotted to
// JSON now; a later call replaces it. A non-object value is wrapped as
// {"value": v}. An LLMResponse also records its Usage and Cost unless
// SetUsage or SetCost did. On a finished span it does nothing (counted).
func (s *Span) SetResult(v any) {
	if s == nil {
		return
	}
	if s.Status().Finished() {
		s.t.illegal()
		return
	}
	enc := s.t.encode(v, s.typ, PayloadResult, s)
	var u *Usage
	var c *Cost
	if uc, ok := v.(interface{ payloadUsage() (*Usage, *Cost) }); ok && !isNilPtr(v) {
		u, c = uc.payloadUsage()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.status.Finished() {
		s.t.illegal()
		return
	}
	s.result = enc.data
	if enc.err != nil && s.payloadErr == "" {
		s.payloadErr = clipString(safeErrorString(enc.err), MaxErrorMessage)
	}
	if u != nil && s.usage == nil {
		n := u.normalized()
		n.Details = maps.Clone(n.Details)
		s.usage = &n
	}
	if c != nil && s.cost == nil {
		n := c.normalized()
		s.cost = &n
	}
}

// SetUsage records the token usage of the span's LLM call. It adds to the
// instance's totals when the span ends.
func (s *Span) SetUsage(u Usage) {
	if s == nil {
		return
	}
	n := u.normalized()
	if len(n.Details) > 0 {
		d := make(map[string]int64, len(n.Details))
		for k, v := range n.Details {
			d[k] = v
		}
		n.Details = d
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.status.Finished() {
		s.t.illegal()
		return
	}
	s.usage = &n
}

// SetCost records what the span's work cost. It adds to the instance's
// totals when the span ends.
func (s *Span) SetCost(c Cost) {
	if s == nil {
		return
	}
	n := c.normalized()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.status.Finished() {
		s.t.illegal()
		return
	}
	s.cost = &n
}

// MarkFirstToken records that the first token of a streamed response
// arrived now: call it on the first content delta. Only the first call
// counts. The span's time to first token is measured from its start; the
// instance reports that of its earliest streamed LLM span. On a span that is
// not active it does nothing (counted).
func (s *Span) MarkFirstToken() {
	if s == nil {
		return
	}
	s.markFirstToken(time.Time{})
}

// MarkFirstTokenAt is MarkFirstToken at time t; a zero t means now, a t
// before the span's start is clamped to it (a time to first token of 0).
// Like MarkFirstToken, only the first mark counts and a span that is not
// active ignores it (counted).
func (s *Span) MarkFirstTokenAt(t time.Time) {
	if s == nil {
		return
	}
	s.markFirstToken(t)
}

func (s *Span) markFirstToken(at time.Time) {
	now := at
	if now.IsZero() {
		now = s.t.now()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.status != StatusActive {
		s.t.illegal()
		return
	}
	if now.Before(s.startedAt) {
		now = s.startedAt
	}
	if !s.firstToken.IsZero() {
		return
	}
	s.firstToken = now
	s.inst.noteFirstToken(s.startedAt, now.Sub(s.startedAt))
}

// snapshotLocked copies the span's state; s.mu is held (or the span is not
// yet shared).
func (s *Span) snapshotLocked() SpanData {
	var d SpanData
	s.snapshotInto(&d)
	return d
}

// snapshotInto writes the span's state over every field of d, field by
// field so that a queue slot is filled in place; s.mu is held (or the span
// is not yet shared).
func (s *Span) snapshotInto(d *SpanData) {
	d.ID = s.id
	if s.parent != nil {
		d.ParentID = s.parent.id
	} else {
		d.ParentID = ID{}
	}
	d.InstanceID = s.inst.id
	d.Type = s.typ
	d.Name = s.name
	d.Status = s.status
	d.CreatedAt = s.createdAt
	d.StartedAt = s.startedAt
	d.EndedAt = s.endedAt
	d.Payload = s.payload
	d.Result = s.result
	d.Error = s.err
	d.Usage = s.usage
	d.Cost = s.cost
	d.FirstTokenAt = s.firstToken
	d.Sensitive = s.sensitive
	d.PayloadError = s.payloadErr
	d.TraceParent = s.traceParent
}

// heldBytes is what the span's current state holds beyond the fixed
// record overhead: every string and payload a record of it keeps, which
// the queue charges against its byte cap. s.mu is held (or s is not yet
// shared).
func (s *Span) heldBytes() int {
	n := len(s.typ) + len(s.name) + len(s.payload) + len(s.result) + len(s.payloadErr)
	if s.err != nil {
		n += len(s.err.Type) + len(s.err.Message)
	}
	if s.usage != nil {
		n += detailsBytes(s.usage.Details)
	}
	return n
}

// detailsBytes is what a usage details map holds: its keys, its values and
// a share of the map itself per entry.
func detailsBytes(d map[string]int64) int {
	n := 0
	for k := range d {
		n += len(k) + 8 + 16
	}
	return n
}

// isLLMType reports whether spans of this type are LLM calls: "llm" or a
// namespaced "...:llm".
func isLLMType(t string) bool {
	return t == TypeLLM || strings.HasSuffix(t, ":llm")
}

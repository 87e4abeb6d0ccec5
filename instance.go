package agenttrace

import (
	"context"
	"maps"
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// Instance is one run of an agent (Prefactor's agent_instance). Every span
// belongs to exactly one instance. It keeps live rollups of its spans:
// counts by status, token usage, cost and time to first token; Summary
// reads them.
//
// Methods are safe for concurrent use; methods on a nil *Instance do
// nothing.
type Instance struct {
	t    *Tracer
	id   ID
	base InstanceData // identity fields, immutable

	dropped atomic.Uint64 // as Span.dropped
	ended   atomic.Bool   // status is final; read on the hot path

	cancel     context.CancelCauseFunc // nil unless an exporter can terminate runs
	terminated atomic.Pointer[TerminatedError]

	mu      sync.Mutex
	status  Status
	endedAt time.Time
	err     *ErrorInfo
	ttft    time.Duration
	ttftAt  time.Time        // start of the span ttft was measured on
	curr    string           // currency of the cost totals
	mixed   bool             // costs in more than one currency were seen
	details map[string]int64 // summed Usage.Details of the finished spans

	spans            spanCounts
	promptTokens     atomic.Int64
	completionTokens atomic.Int64
	totalTokens      atomic.Int64
	usageSeen        atomic.Bool
	costNanos        [4]atomic.Int64 // prompt, completion, other, total
	costSeen         atomic.Bool
	abandoned        atomic.Int64 // spans ended by the instance's end
}

// InstanceOption configures an instance at StartInstance.
type InstanceOption interface {
	applyInstance(*InstanceData)
}

type instanceOptionFunc func(*InstanceData)

func (f instanceOptionFunc) applyInstance(d *InstanceData) { f(d) }

// WithUserID records the end user the run serves.
func WithUserID(id string) InstanceOption {
	return instanceOptionFunc(func(d *InstanceData) { d.UserID = id })
}

// WithGroupID records the user's group or organisation.
func WithGroupID(id string) InstanceOption {
	return instanceOptionFunc(func(d *InstanceData) { d.GroupID = id })
}

// WithChannel records the channel the run came through, such as "web" or
// "slack".
func WithChannel(channel string) InstanceOption {
	return instanceOptionFunc(func(d *InstanceData) { d.Channel = channel })
}

// WithSessionID records the conversation or session the run is part of.
func WithSessionID(id string) InstanceOption {
	return instanceOptionFunc(func(d *InstanceData) { d.SessionID = id })
}

// WithPurpose says why the run happens: PurposeLive (the default),
// PurposeSmokeTest or PurposeEval.
func WithPurpose(p Purpose) InstanceOption {
	return instanceOptionFunc(func(d *InstanceData) { d.Purpose = p })
}

// WithMetadata adds string metadata to the instance.
func WithMetadata(kv map[string]string) InstanceOption {
	return instanceOptionFunc(func(d *InstanceData) {
		if d.Metadata == nil {
			d.Metadata = make(map[string]string, len(kv))
		}
		for k, v := range kv {
			d.Metadata[k] = v
		}
	})
}

// WithInstanceStartTime sets the instance's start time instead of now.
func WithInstanceStartTime(t time.Time) InstanceOption {
	return instanceOptionFunc(func(d *InstanceData) { d.StartedAt = t })
}

// ID returns the instance's ID.
func (i *Instance) ID() ID {
	if i == nil {
		return ID{}
	}
	return i.id
}

// End finishes the instance as complete. Spans of the instance still open
// (their End forgotten, or racing with this call) end first, at the
// instance's end time: an active one fails and a pending one is cancelled,
// with an ErrorInfo of type ErrorTypeInstanceEnded ("instance ended
// first"), counted in Summary.SpansAbandoned; a later End on them does
// nothing. A span started in the instance while End runs is either one of
// them or not started at all (Start returns a nil span, counted in
// Stats.IllegalTransitions), so no span of the instance reaches an
// exporter after its end. A second End, or End after Fail, does nothing.
func (i *Instance) End() {
	if i == nil {
		return
	}
	i.finish(StatusComplete, nil, false, time.Time{})
}

// EndAt is End at time t (for runs replayed from another source). A zero t
// means now; a t before the instance's start is clamped to it.
//
// The ordering guarantee (an instance's end is delivered after the ends of
// its spans that ended before it) is judged by recording order, not by the
// times given: the ends of spans recorded before the EndAt call are
// delivered before the instance's end, whatever the timestamps say, and
// spans still open are ended by it (see End). Replay a run's span ends
// before its instance's end.
func (i *Instance) EndAt(t time.Time) {
	if i == nil {
		return
	}
	i.finish(StatusComplete, nil, false, t)
}

// Fail finishes the instance as failed with err.
func (i *Instance) Fail(err error) {
	if i == nil {
		return
	}
	i.finish(StatusFailed, errorInfo(err), true, time.Time{})
}

// FailAt is Fail at time t; a zero t means now, a t before the start is
// clamped to it, and ordering follows the recording order (see EndAt).
func (i *Instance) FailAt(err error, t time.Time) {
	if i == nil {
		return
	}
	i.finish(StatusFailed, errorInfo(err), true, t)
}

func (i *Instance) finish(target Status, info *ErrorInfo, explicit bool, at time.Time) {
	i.spans.end.Lock()
	defer i.spans.end.Unlock()
	now := at
	if now.IsZero() {
		now = i.t.now()
	} else if now.Before(i.base.StartedAt) {
		now = i.base.StartedAt
	}
	// The status changes only here, under the end lock, which is held: it
	// cannot change between this check and the update below.
	if i.Status() != StatusActive {
		if explicit {
			i.t.illegal()
		}
		return
	}
	i.abandonOpen(now)
	i.mu.Lock()
	defer i.mu.Unlock()
	i.status = target
	i.ended.Store(true)
	i.t.live.remove(i.id)
	i.endedAt = now
	i.err = info
	i.t.stats.instancesEnded.Add(1)
	d := i.dataLocked()
	sum := i.summaryLocked()
	d.Summary = &sum
	i.t.emitInstance(InstanceEnded, i, &d)
}

// ErrorTypeInstanceEnded is the ErrorInfo.Type of a span still open when
// its instance ended (see Instance.End).
const ErrorTypeInstanceEnded = "instance_ended"

// abandonOpen ends the instance's spans that are still open at now: an
// active one fails, a pending one is cancelled, both with an ErrorInfo of
// type ErrorTypeInstanceEnded. The end lock is held.
func (i *Instance) abandonOpen(now time.Time) {
	for i.spans.open != nil {
		i.spans.open.abandon(now)
	}
}

// Status returns the instance's status.
func (i *Instance) Status() Status {
	if i == nil {
		return 0
	}
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.status
}

// Data returns a snapshot of the instance.
func (i *Instance) Data() InstanceData {
	if i == nil {
		return InstanceData{}
	}
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.dataLocked()
}

func (i *Instance) dataLocked() InstanceData {
	d := i.base
	d.Status = i.status
	d.EndedAt = i.endedAt
	d.Error = i.err
	return d
}

// heldBytes is what an instance record holds beyond the fixed record
// overhead (its strings, metadata and error), which the queue charges
// against its byte cap.
func (d *InstanceData) heldBytes() int {
	n := len(d.Agent.Name) + len(d.Agent.Version) + len(d.Agent.ID) + len(d.Purpose) +
		len(d.UserID) + len(d.GroupID) + len(d.Channel) + len(d.SessionID)
	for k, v := range d.Metadata {
		n += len(k) + len(v) + 16
	}
	if d.Error != nil {
		n += len(d.Error.Type) + len(d.Error.Message)
	}
	return n
}

// SpanCounts counts an instance's spans by status, like the span_counts of
// the Prefactor API. Finished = Complete + Failed + Cancelled.
type SpanCounts struct {
	Total     int64 `json:"total"`
	Pending   int64 `json:"pending"`
	Active    int64 `json:"active"`
	Complete  int64 `json:"complete"`
	Failed    int64 `json:"failed"`
	Cancelled int64 `json:"cancelled"`
	Finished  int64 `json:"finished"`
}

// Summary is an instance's rollup.
type Summary struct {
	InstanceID ID        `json:"instance_id"`
	Agent      Agent     `json:"agent"`
	UserID     string    `json:"user_id,omitempty"`
	GroupID    string    `json:"group_id,omitempty"`
	Channel    string    `json:"channel,omitempty"`
	SessionID  string    `json:"session_id,omitempty"`
	Purpose    Purpose   `json:"purpose,omitempty"`
	Status     Status    `json:"status"`
	StartedAt  time.Time `json:"started_at"`
	// EndedAt is zero while the instance runs.
	EndedAt time.Time  `json:"ended_at,omitzero"`
	Spans   SpanCounts `json:"span_counts"`
	// LLMCalls counts finished spans of type "llm" (or "<ns>:llm").
	LLMCalls int64 `json:"llm_calls"`
	// Usage sums the token usage of the instance's finished spans, their
	// Details key by key; nil if none reported usage. A child agent's rolled-up totals are never added
	// again: each LLM call counts once, at its own span.
	Usage *Usage `json:"token_usage,omitempty"`
	// Cost sums the cost of the instance's finished spans; nil if none
	// reported a cost. Costs in a currency other than the first seen are
	// left out and CostMixedCurrency is set.
	Cost              *Cost `json:"cost,omitempty"`
	CostMixedCurrency bool  `json:"cost_mixed_currency,omitempty"`
	// TimeToFirstToken is that of the earliest-started span that marked a
	// first token (MarkFirstToken); 0 if none did.
	TimeToFirstToken time.Duration `json:"ttft_ns,omitempty"`
	// SpansAbandoned counts spans still open when the instance ended,
	// which ended then (see Instance.End); they are counted in Spans too,
	// as failed or cancelled.
	SpansAbandoned int64 `json:"spans_abandoned,omitempty"`
}

// Duration returns EndedAt - StartedAt, or the time since the start while
// the instance runs.
func (s Summary) Duration(now time.Time) time.Duration {
	if s.EndedAt.IsZero() {
		return now.Sub(s.StartedAt)
	}
	return s.EndedAt.Sub(s.StartedAt)
}

// Summary returns the instance's live rollups.
func (i *Instance) Summary() Summary {
	if i == nil {
		return Summary{}
	}
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.summaryLocked()
}

func (i *Instance) summaryLocked() Summary {
	s := Summary{
		InstanceID: i.id, Agent: i.base.Agent, UserID: i.base.UserID, GroupID: i.base.GroupID,
		Channel: i.base.Channel, SessionID: i.base.SessionID, Purpose: i.base.Purpose,
		Status: i.status, StartedAt: i.base.StartedAt, EndedAt: i.endedAt,
		TimeToFirstToken: i.ttft, CostMixedCurrency: i.mixed, SpansAbandoned: i.abandoned.Load(),
	}
	s.Spans, s.LLMCalls = i.spans.summary()
	if i.usageSeen.Load() {
		s.Usage = &Usage{
			PromptTokens:     i.promptTokens.Load(),
			CompletionTokens: i.completionTokens.Load(),
			TotalTokens:      i.totalTokens.Load(),
			Details:          maps.Clone(i.details),
		}
	}
	if i.costSeen.Load() {
		s.Cost = &Cost{
			Prompt:     fromNanos(i.costNanos[0].Load()),
			Completion: fromNanos(i.costNanos[1].Load()),
			Other:      fromNanos(i.costNanos[2].Load()),
			Total:      fromNanos(i.costNanos[3].Load()),
			Currency:   i.curr,
		}
	}
	return s
}

// spanCounts are an instance's span counters and open spans. The counters
// only grow, so that each transition adds to one of them:
// counts[StatusPending] counts spans started pending, counts[StatusActive]
// activations of pending spans, and the finished statuses the ends;
// summary derives the current counts.
type spanCounts struct {
	counts [StatusTerminated + 1]atomic.Int64
	total  atomic.Int64
	llm    atomic.Int64
	// end is read-held by a span while Start queues its start record and
	// from reading its end time through queuing its end record, and held
	// by the instance from reading its own end time through queuing its
	// end. So a span that ended before its instance is queued before the
	// instance's end, and a span starts before its instance ends or not at
	// all; spans of one instance start and end in parallel (read-held).
	end sync.RWMutex
	// openMu guards open while end is read-held; under end held, the
	// instance walks open alone.
	openMu sync.Mutex
	// open lists the spans that have started and not ended, most recent
	// first (Span.openPrev, Span.openNext).
	open *Span
}

// summary returns the current span counts and the LLM calls.
func (st *spanCounts) summary() (c SpanCounts, llm int64) {
	// Later transitions first: a span counted by one is then surely
	// counted by the ones it came from, so no count comes out negative.
	complete := st.counts[StatusComplete].Load()
	failed := st.counts[StatusFailed].Load()
	cancelled := st.counts[StatusCancelled].Load()
	activated := st.counts[StatusActive].Load()
	pending := st.counts[StatusPending].Load()
	total := st.total.Load()
	c.Total = total
	c.Pending = max(pending-activated-cancelled, 0)
	c.Active = max(total-pending+activated-complete-failed, 0)
	c.Complete, c.Failed, c.Cancelled = complete, failed, cancelled
	c.Finished = complete + failed + cancelled
	return c, st.llm.Load()
}

// link adds s to the open spans; st.end is read-held.
func (st *spanCounts) link(s *Span) {
	st.openMu.Lock()
	defer st.openMu.Unlock()
	s.openNext = st.open
	if st.open != nil {
		st.open.openPrev = s
	}
	st.open = s
}

// unlink removes s from the open spans, if it is there; st.end is held or
// read-held.
func (st *spanCounts) unlink(s *Span) {
	st.openMu.Lock()
	defer st.openMu.Unlock()
	switch {
	case s.openPrev != nil:
		s.openPrev.openNext = s.openNext
	case st.open == s:
		st.open = s.openNext
	default:
		return
	}
	if s.openNext != nil {
		s.openNext.openPrev = s.openPrev
	}
	s.openPrev, s.openNext = nil, nil
}

// endLock read-locks the instance's end lock for a span's transition and
// returns its read half, to unlock; see spanCounts.end.
func (i *Instance) endLock() sync.Locker {
	m := i.spans.end.RLocker()
	m.Lock()
	return m
}

// move updates the span counts for one transition of a span (from 0: a new
// span).
func (i *Instance) move(from, to Status) {
	st := &i.spans
	if from == 0 {
		st.total.Add(1)
		if to == StatusActive {
			return
		}
	}
	st.counts[to].Add(1)
}

// rollup adds a finished span's usage and cost; the span's mu is held.
func (i *Instance) rollup(s *Span) {
	if isLLMType(s.typ) {
		i.spans.llm.Add(1)
	}
	if u := s.usage; u != nil {
		i.promptTokens.Add(u.PromptTokens)
		i.completionTokens.Add(u.CompletionTokens)
		i.totalTokens.Add(u.TotalTokens)
		if len(u.Details) > 0 {
			i.mu.Lock()
			if i.details == nil {
				i.details = make(map[string]int64, len(u.Details))
			}
			for k, v := range u.Details {
				i.details[k] += v
			}
			i.mu.Unlock()
		}
		i.usageSeen.Store(true)
	}
	if c := s.cost; c != nil {
		i.mu.Lock()
		switch {
		case i.curr == "":
			i.curr = c.Currency
		case i.curr != c.Currency:
			i.mixed = true
			i.mu.Unlock()
			return
		}
		i.mu.Unlock()
		i.costNanos[0].Add(toNanos(c.Prompt))
		i.costNanos[1].Add(toNanos(c.Completion))
		i.costNanos[2].Add(toNanos(c.Other))
		i.costNanos[3].Add(toNanos(c.Total))
		i.costSeen.Store(true)
	}
}

func (i *Instance) noteFirstToken(spanStart time.Time, ttft time.Duration) {
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.ttftAt.IsZero() || spanStart.Before(i.ttftAt) {
		i.ttftAt, i.ttft = spanStart, ttft
	}
}

// Costs are summed in integer nano-units so that adding many small amounts
// does not drift.
func toNanos(v float64) int64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return 0
	}
	return int64(math.Round(v * 1e9))
}

func fromNanos(n int64) float64 { return float64(n) / 1e9 }

// endOpenInstances fails every instance still running, for Shutdown: its
// open spans end first (see Instance.End), then the instance, with an
// ErrorInfo of type ErrorTypeShutdown.
func (t *Tracer) endOpenInstances() {
	t.live.mu.Lock()
	open := make([]*Instance, 0, len(t.live.m))
	for _, inst := range t.live.m {
		open = append(open, inst)
	}
	t.live.mu.Unlock()
	for _, inst := range open {
		inst.finish(StatusFailed, &ErrorInfo{Type: ErrorTypeShutdown,
			Message: "the tracer shut down before the instance ended"}, false, time.Time{})
	}
}

// ErrorTypeShutdown is the ErrorInfo.Type of an instance still running at
// Shutdown, which fails it (see Tracer.Shutdown).
const ErrorTypeShutdown = "shutdown"

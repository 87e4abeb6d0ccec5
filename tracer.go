package agenttrace

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// Tracer records instances and spans and hands them to its exporters. Create
// one with New; several can live in one process. A nil *Tracer is a usable
// no-op. All methods are safe for concurrent use.
type Tracer struct {
	cfg    config
	types  map[string]struct{} // names of the registered span types
	schema *SchemaVersion
	queues []*queue
	stats  tracerCounters

	shut     atomic.Bool
	shutOnce sync.Once
	shutErr  error

	defMu sync.Mutex
	def   atomic.Pointer[Instance]

	terminable bool // an exporter is a Terminator
	live       liveInstances
}

type tracerCounters struct {
	spansStarted, spansEnded         atomic.Uint64
	instancesStarted, instancesEnded atomic.Uint64
	illegal, unknownTypes            atomic.Uint64
	truncated, payloadErrors         atomic.Uint64
	afterShutdown                    atomic.Uint64
	instancesTerminated              atomic.Uint64
	hookPanics                       atomic.Uint64
}

func (c *tracerCounters) spanCounts() (started, ended uint64) {
	// Ends first: a span counted ended is then surely counted started.
	ended = c.spansEnded.Load()
	return c.spansStarted.Load(), ended
}

// ErrShutdown is returned by Flush after Shutdown.
var ErrShutdown = errors.New("agenttrace: tracer is shut down")

// New returns a Tracer configured by opts. It starts one worker goroutine per
// exporter; call Shutdown to stop them.
func New(opts ...Option) (*Tracer, error) {
	cfg, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	types := map[string]SpanType{}
	if !cfg.noDefaultTypes {
		for _, st := range DefaultSpanTypes() {
			types[st.Name] = st.normalized()
		}
	}
	seen := map[string]bool{}
	var errs []error
	for _, st := range cfg.spanTypes {
		if err := st.validate(); err != nil {
			errs = append(errs, err)
			continue
		}
		if seen[st.Name] {
			errs = append(errs, fmt.Errorf("%w: %q registered twice", ErrInvalidSpanType, st.Name))
			continue
		}
		seen[st.Name] = true
		types[st.Name] = st.normalized()
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	sv := newSchemaVersion(types)
	t := &Tracer{cfg: cfg, types: make(map[string]struct{}, len(types)), schema: &sv}
	for name := range types {
		t.types[name] = struct{}{}
	}
	for i, e := range cfg.exporters {
		t.queues = append(t.queues, newQueue(t, i, e))
		if term, ok := e.(Terminator); ok {
			t.terminable = true
			term.SetTerminate(t.terminate)
		}
	}
	for _, q := range t.queues {
		go q.run()
	}
	return t, nil
}

// SchemaVersion returns the tracer's span types and their content-derived
// identifier.
func (t *Tracer) SchemaVersion() SchemaVersion {
	if t == nil {
		return SchemaVersion{}
	}
	return *t.schema
}

// Agent returns the agent the tracer records.
func (t *Tracer) Agent() Agent {
	if t == nil {
		return Agent{}
	}
	return t.cfg.agent
}

// now reads the tracer's clock; a clock given with WithClock that panics
// or returns the zero time is replaced by time.Now for that reading
// (counted in Stats.HookPanics when it panicked).
func (t *Tracer) now() time.Time {
	if !t.cfg.clockSet {
		return t.cfg.clock()
	}
	return t.userNow()
}

func (t *Tracer) illegal() { t.stats.illegal.Add(1) }

func (t *Tracer) encode(v any, spanType string, field PayloadField, s *Span) encoded {
	enc := encodePayload(v, spanType, field, t.cfg.payloadLimit, t.cfg.redactor, s)
	if enc.truncated {
		t.stats.truncated.Add(1)
	}
	if enc.err != nil {
		t.stats.payloadErrors.Add(1)
	}
	return enc
}

// Start starts an active span of type spanType (a schema name such as
// "llm", "tool", "agent", "chain" or a registered type) with payload as its
// inputs, snapshotted to JSON now. Its parent is the span in ctx; its
// instance is that of ctx, or the tracer's default instance. It returns a
// context carrying the span, which behaves as context.WithValue's would
// (and, like it, keeps ctx reachable while the span is). Start never
// blocks on I/O and never fails: a
// payload that cannot be encoded is recorded as an error marker, an
// unregistered type is recorded and counted.
//
// After Shutdown, Start returns ctx and a nil span (a no-op), counted.
func (t *Tracer) Start(ctx context.Context, spanType string, payload any, opts ...SpanOption) (context.Context, *Span) {
	return t.start(ctx, spanType, payload, StatusActive, opts)
}

// StartPending starts a pending span: work that is known but has not begun
// (a queued tool call, say). Activate it when the work begins, or Cancel it
// if it never does; End on a span still pending cancels it.
func (t *Tracer) StartPending(ctx context.Context, spanType string, payload any, opts ...SpanOption) (context.Context, *Span) {
	return t.start(ctx, spanType, payload, StatusPending, opts)
}

func (t *Tracer) start(ctx context.Context, spanType string, payload any, status Status, opts []SpanOption) (context.Context, *Span) {
	if ctx == nil {
		ctx = context.Background()
	}
	if t == nil {
		return ctx, nil
	}
	parent, inst := t.startIn(ctx)
	if inst == nil {
		return ctx, nil
	}
	s := t.newSpan(ctx, inst, parent, spanType, status, opts)
	if payload != nil {
		enc := t.encode(payload, s.typ, PayloadParams, s)
		s.payload = enc.data
		if enc.err != nil {
			s.payloadErr = clipString(safeErrorString(enc.err), MaxErrorMessage)
		}
	}
	// The instance's end lock orders this start with the instance's end:
	// the span joins the instance before it ends, or not at all.
	defer inst.endLock().Unlock()
	if inst.ended.Load() {
		t.illegal()
		return ctx, nil
	}
	t.stats.spansStarted.Add(1)
	inst.move(0, status)
	inst.spans.link(s)
	t.emitSpan(SpanStarted, s) // s is not shared yet: no lock needed
	return &s.ctx, s
}

// startIn returns the parent and the instance of a span started in ctx:
// the span and instance of ctx if they are this tracer's, else no parent
// and the default instance. A nil instance (counted) means no span can
// start: the tracer is shut down or the instance has ended.
func (t *Tracer) startIn(ctx context.Context) (*Span, *Instance) {
	if t.shut.Load() {
		t.stats.afterShutdown.Add(1)
		return nil, nil
	}
	parent, inst := fromContext(ctx)
	if parent != nil && parent.t != t {
		// A span of another tracer: start a root span here.
		parent, inst = nil, nil
	}
	if inst != nil && inst.t != t {
		inst = nil
	}
	if inst == nil {
		if inst = t.defaultInstance(); inst == nil {
			t.stats.afterShutdown.Add(1)
			return nil, nil
		}
	}
	if inst.ended.Load() {
		// The instance is over: a span cannot join it any more.
		t.illegal()
		return nil, nil
	}
	return parent, inst
}

// newSpan makes the span Start records, not yet shared: its options
// applied, its type and name clipped, its times read before any encoding.
func (t *Tracer) newSpan(ctx context.Context, inst *Instance, parent *Span, spanType string, status Status, opts []SpanOption) *Span {
	var sc spanConfig
	for _, o := range opts {
		if o != nil {
			sc = o.applySpan(sc)
		}
	}
	spanType = clipString(cmp.Or(spanType, "unknown"), MaxNameBytes)
	if _, ok := t.types[spanType]; !ok {
		t.stats.unknownTypes.Add(1)
	}
	now := sc.start
	if now.IsZero() {
		now = t.now()
	}
	s := &Span{
		t: t, inst: inst, parent: parent, id: newID(now), typ: spanType, name: clipString(sc.name, MaxNameBytes),
		status: status, createdAt: now, sensitive: sc.sensitive,
		traceParent: t.extractParent(ctx),
	}
	if status == StatusActive {
		s.startedAt = now
	}
	s.ctx = spanCtx{Context: ctx, s: s}
	return s
}

// StartInstance starts an instance (one agent run) and returns a context
// carrying it: spans started from that context join it. End or Fail it when
// the run is over.
//
// When an exporter can terminate runs (a Terminator, such as the Prefactor
// exporter), the returned context is also cancelled if the backend
// terminates the run, with a *TerminatedError cause:
// errors.Is(context.Cause(ctx), ErrTerminated) reports it. Ending the
// instance does not cancel the context, so code that goes on using it after
// End is unaffected; like any cancellable child context that is never
// cancelled, it stays registered with a cancellable parent until that
// parent is done.
func (t *Tracer) StartInstance(ctx context.Context, opts ...InstanceOption) (context.Context, *Instance) {
	if ctx == nil {
		ctx = context.Background()
	}
	if t == nil {
		return ctx, nil
	}
	if t.shut.Load() {
		t.stats.afterShutdown.Add(1)
		return ctx, nil
	}
	tp := t.extractParent(ctx)
	ctx, cancel := t.instanceContext(ctx)
	inst := t.newInstance(false, opts, cancel, tp)
	return context.WithValue(ctx, ctxKey{}, inst), inst
}

func (t *Tracer) newInstance(def bool, opts []InstanceOption, cancel context.CancelCauseFunc, tp *TraceParent) *Instance {
	d := InstanceData{Agent: t.cfg.agent, Schema: t.schema, Purpose: PurposeLive, Default: def, TraceParent: tp}
	for _, o := range opts {
		if o != nil {
			o.applyInstance(&d)
		}
	}
	if d.StartedAt.IsZero() {
		d.StartedAt = t.now()
	}
	d.ID = newID(d.StartedAt)
	d.Status = StatusActive
	inst := &Instance{t: t, id: d.ID, base: d, status: StatusActive, cancel: cancel}
	t.live.add(inst)
	t.stats.instancesStarted.Add(1)
	inst.mu.Lock()
	snap := d
	t.emitInstance(InstanceStarted, inst, &snap)
	inst.mu.Unlock()
	return inst
}

// defaultInstance returns the instance for spans started outside any
// instance, starting it on first use. If its start record could not be
// queued, a new default instance replaces it so its spans are not lost too.
func (t *Tracer) defaultInstance() *Instance {
	if d := t.def.Load(); d != nil && d.dropped.Load() == 0 {
		return d
	}
	t.defMu.Lock()
	defer t.defMu.Unlock()
	if t.shut.Load() {
		return nil
	}
	d := t.def.Load()
	if d != nil && d.dropped.Load() == 0 {
		return d
	}
	if d != nil {
		d.End()
	}
	d = t.newInstance(true, nil, nil, nil)
	t.def.Store(d)
	return d
}

// DefaultInstance returns the tracer's default instance, starting it if
// needed; nil after Shutdown.
func (t *Tracer) DefaultInstance() *Instance {
	if t == nil || t.shut.Load() {
		return nil
	}
	return t.defaultInstance()
}

// Flush exports everything recorded before the call and waits until every
// exporter has acknowledged it (an AsyncExporter acknowledges a record when
// it delivered it, failed it, or holds it: see Batch.Hold), or until ctx
// ends. It returns the export errors met since the previous Flush (records
// are also exported without one, at each flush interval and when an
// instance ends), ctx's error, or ErrShutdown after Shutdown.
func (t *Tracer) Flush(ctx context.Context) error {
	if t == nil {
		return nil
	}
	if t.shut.Load() {
		return ErrShutdown
	}
	if ctx == nil {
		ctx = context.Background()
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	reqs := make([]flushReq, len(t.queues))
	for i, q := range t.queues {
		reqs[i] = flushReq{done: make(chan flushResult, 1)}
		select {
		case q.flushCh <- reqs[i]:
		case <-q.stopped:
			return ErrShutdown
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	var errs []error
	for i, q := range t.queues {
		if err := q.awaitFlush(ctx, reqs[i].done); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			errs = append(errs, fmt.Errorf("%s: %w", q.name, err))
		}
	}
	return errors.Join(errs...)
}

// awaitFlush waits for the worker's answer to a flush and for the batches
// it names to be acknowledged; it returns ctx's error, or the export errors
// met since the previous flush.
func (q *queue) awaitFlush(ctx context.Context, done <-chan flushResult) error {
	var res flushResult
	select {
	case res = <-done:
	case <-ctx.Done():
		return ctx.Err()
	}
	for _, b := range res.batches {
		select {
		case <-b.ackedChan():
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return q.takeErrors()
}

// shutdownNotice is how long Shutdown waits before it logs why it is
// waiting; shutdownGrace how long it waits, once its context ended, for
// the workers to stop.
const (
	shutdownNotice = 2 * time.Second
	shutdownGrace  = 5 * time.Second
)

// Shutdown ends the default instance, exports what is queued, shuts the
// exporters down and stops every goroutine the tracer started. Recording
// after Shutdown is a counted no-op. Shutdown is idempotent: later calls
// return the first call's result.
//
// It waits until the exporters delivered what was queued or gave up on it:
// for the Prefactor exporter against a dead server, at most its retry
// deadline per operation (Retry.Deadline, 2 minutes by default) from when
// the record reached it; after 2 seconds of waiting it logs what it waits
// for. When ctx ends first, in-flight work is cancelled and waited for (an
// exporter that honours ctx stops at once; one that does not is given 5
// seconds), what was not delivered is counted as dropped (DropShutdown),
// and the error wraps ctx's error and says how many records were left.
//
// When Shutdown returns, every record is accounted for (Stats.Queued is 0).
// If an exporter did not deliver every record recorded for it over the
// tracer's life, the error includes a *DeliveryError per such exporter:
// the counts by reason and the last cause.
func (t *Tracer) Shutdown(ctx context.Context) error {
	if t == nil {
		return nil
	}
	if ctx == nil {
		ctx = context.Background()
	}
	t.shutOnce.Do(func() { t.shutErr = t.shutdown(ctx) })
	return t.shutErr
}

func (t *Tracer) shutdown(ctx context.Context) error {
	t.defMu.Lock()
	t.shut.Store(true)
	def := t.def.Load()
	t.defMu.Unlock()
	def.End()
	t.endOpenInstances()
	for _, q := range t.queues {
		q.close(ctx)
	}
	var errs []error
	if err := t.waitStopped(ctx); err != nil {
		errs = append(errs, err)
	}
	for _, q := range t.queues {
		if err := q.shutdownErr; err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", q.name, err))
		}
	}
	for _, q := range t.queues {
		if e := q.stats(); e.Failed+e.Dropped.Total() > 0 {
			errs = append(errs, &DeliveryError{Exporter: q.name, Failed: e.Failed, Dropped: e.Dropped, LastError: e.LastError})
		}
	}
	return errors.Join(errs...)
}

// waitStopped waits for the workers to stop, logging after shutdownNotice
// what they are waiting for. When ctx ends first it aborts them, waits for
// them to settle their accounts, and returns an error.
func (t *Tracer) waitStopped(ctx context.Context) error {
	notice := time.NewTimer(shutdownNotice)
	defer notice.Stop()
	for _, q := range t.queues {
		for waiting := true; waiting; {
			select {
			case <-q.stopped:
				waiting = false
			case <-notice.C:
				t.logWaiting()
			case <-ctx.Done():
				return t.abort(ctx)
			}
		}
	}
	return nil
}

// logWaiting says why Shutdown has not returned yet.
func (t *Tracer) logWaiting() {
	for _, q := range t.queues {
		select {
		case <-q.stopped:
			continue
		default:
		}
		e := q.stats()
		t.cfg.log().Warn("agenttrace: shutdown is waiting for an exporter to deliver or give up on its records; "+
			"pass Shutdown a context with a deadline to bound the wait",
			slog.String("exporter", q.name), slog.Int("records", e.Queued), slog.String("last_error", e.LastError))
	}
}

// abort cancels the exporters' work after Shutdown's ctx ended and waits,
// up to shutdownGrace, for the workers to stop; what is left is dropped.
func (t *Tracer) abort(ctx context.Context) error {
	left := 0
	for _, q := range t.queues {
		left += q.pending()
		q.abort()
	}
	grace := time.NewTimer(shutdownGrace)
	defer grace.Stop()
	expired := false
	for _, q := range t.queues {
		if !expired {
			select {
			case <-q.stopped:
			case <-grace.C:
				expired = true
			}
		}
		select {
		case <-q.stopped:
		default:
			t.cfg.log().Error("agenttrace: shutdown: an exporter did not stop when its context ended",
				slog.String("exporter", q.name))
		}
		q.abandon()
	}
	return fmt.Errorf("agenttrace: shutdown: %w (%d records not exported)", ctx.Err(), left)
}

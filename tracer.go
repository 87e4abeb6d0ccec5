package agenttrace

import (
	"context"
	"errors"
	"fmt"
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
	// The stripes are written by every span: padding keeps them off the
	// lines of the fields around them, which Start reads.
	_                                [64]byte
	spans                            [numStripes]spanStripe
	_                                [64]byte
	instancesStarted, instancesEnded atomic.Uint64
	illegal, unknownTypes            atomic.Uint64
	truncated, payloadErrors         atomic.Uint64
	afterShutdown                    atomic.Uint64
	instancesTerminated              atomic.Uint64
	hookPanics                       atomic.Uint64
}

// spanStripe is one cache line of the tracer's span counters.
type spanStripe struct {
	started, ended atomic.Uint64
	_              [48]byte
}

func (c *tracerCounters) spanCounts() (started, ended uint64) {
	for k := range c.spans {
		started += c.spans[k].started.Load()
		ended += c.spans[k].ended.Load()
	}
	return started, ended
}

// Exporter receives ordered batches of records. The pipeline calls Export
// from one goroutine per exporter, never concurrently, with records in an
// order that never shows a child before its parent, a span before its
// instance, an end before its start, or an instance end before the ends of
// its spans recorded before it. Retries, idempotency and backoff belong to
// the exporter; an error it returns is counted (Stats.Failed) and the batch
// is not offered again. Export must honour ctx and must not retain the
// records slice after it returns (the records themselves may be kept).
type Exporter interface {
	Export(ctx context.Context, records []Record) error
	// Shutdown is called once, after the last Export, and must honour ctx.
	Shutdown(ctx context.Context) error
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
	msg := "<nil>"
	if e.Err != nil {
		msg = e.Err.Error()
	}
	return fmt.Sprintf("%d records not exported: %s", len(e.Failed), msg)
}

// Unwrap returns Err.
func (e *PartialError) Unwrap() error { return e.Err }

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
	if t.shut.Load() {
		t.stats.afterShutdown.Add(1)
		return ctx, nil
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
			return ctx, nil
		}
	}
	if inst.ended.Load() {
		// The instance is over: a span cannot join it any more.
		t.illegal()
		return ctx, nil
	}
	var sc spanConfig
	for _, o := range opts {
		if o != nil {
			sc = o.applySpan(sc)
		}
	}
	if spanType == "" {
		spanType = "unknown"
	}
	spanType = clipString(spanType, MaxNameBytes)
	sc.name = clipString(sc.name, MaxNameBytes)
	if _, ok := t.types[spanType]; !ok {
		t.stats.unknownTypes.Add(1)
	}
	now := sc.start
	if now.IsZero() {
		now = t.now()
	}
	s := &Span{
		t: t, inst: inst, parent: parent, id: newID(now), typ: spanType, name: sc.name,
		status: status, createdAt: now, sensitive: sc.sensitive,
		traceParent: t.extractParent(ctx),
	}
	if status == StatusActive {
		s.startedAt = now
	}
	if payload != nil {
		enc := t.encode(payload, spanType, PayloadParams, s)
		s.payload = enc.data
		if enc.err != nil {
			s.payloadErr = clipString(safeErrorString(enc.err), MaxErrorMessage)
		}
	}
	s.ctx = spanCtx{Context: ctx, s: s}
	// The stripe's end lock orders this start with the instance's end:
	// the span joins the instance before it ends, or not at all.
	st := &inst.stripes[stripe(s.id)]
	st.end.Lock()
	defer st.end.Unlock()
	if inst.ended.Load() {
		t.illegal()
		return ctx, nil
	}
	t.stats.spans[stripe(s.id)].started.Add(1)
	inst.move(s.id, 0, status)
	st.link(s)
	t.emitSpan(SpanStarted, s) // s is not shared yet: no lock needed
	return &s.ctx, s
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
// exporter has acknowledged it, or until ctx ends. It returns the export
// errors met, ctx's error, or ErrShutdown after Shutdown.
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
		reqs[i] = flushReq{done: make(chan error, 1)}
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
		select {
		case err := <-reqs[i].done:
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", q.name, err))
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return errors.Join(errs...)
}

// Shutdown ends the default instance, exports what is queued, shuts the
// exporters down and stops every goroutine the tracer started. It honours
// ctx: when ctx ends first, what is still queued is dropped and counted
// (DropShutdown) and the error says how many records were left. Recording
// after Shutdown is a counted no-op. Shutdown is idempotent: later calls
// return the first call's result.
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
	for _, q := range t.queues {
		select {
		case <-q.stopped:
			if err := q.shutdownErr; err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", q.name, err))
			}
		case <-ctx.Done():
			left := 0
			for _, q := range t.queues {
				left += q.pending()
				q.abort()
			}
			return fmt.Errorf("agenttrace: shutdown: %w (%d records not exported)", ctx.Err(), left)
		}
	}
	return errors.Join(errs...)
}

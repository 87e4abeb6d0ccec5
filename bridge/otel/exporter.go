package otelbridge

import (
	"context"
	"errors"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/agenttrace/agenttrace"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// ErrShutdown is returned by Export after Shutdown.
var ErrShutdown = errors.New("otelbridge: exporter is shut down")

// Exporter is an agenttrace.Exporter that re-emits instances and spans
// through an OpenTelemetry TracerProvider, named and attributed by the GenAI
// semantic conventions:
//
//   - an instance becomes a trace whose root is an "invoke_agent {agent}"
//     span (kind internal) with the agent's name and version, the user,
//     group and channel, and, when the instance ends, its rollups (token
//     usage, cost, span counts, LLM calls, time to first token);
//   - an llm span becomes "{operation} {model}" (kind client, "chat gpt-4o"
//     say) with the gen_ai.request.*, gen_ai.response.* and gen_ai.usage.*
//     attributes, and its messages when content capture is on;
//   - a tool span becomes "execute_tool {tool}" with gen_ai.tool.name and
//     gen_ai.tool.call.id, and its arguments and result when content capture
//     is on;
//   - an agent span becomes "invoke_agent {agent}";
//   - any other span keeps its schema name as its span name and carries its
//     payload and result flattened into agenttrace.payload.* and
//     agenttrace.result.* attributes.
//
// Spans keep their original timestamps, parents and statuses: failed
// becomes codes.Error with the message and error.type (the ErrorInfo type);
// cancelled, which OTel lacks, keeps status Unset with
// agenttrace.span.status=cancelled. Every span carries agenttrace.span.id
// (the span ULID), and agenttrace.instance.id unless its trace ID is the
// instance ULID; agenttrace.span.type when gen_ai.operation.name does not
// name the type; agenttrace.usage.total_tokens when it is not the sum of
// input and output tokens. Leaving out what the OTel span already says keeps
// an llm span within the 8 attributes the SDK records without a map on the
// heap; IdentityOf reads it all back, and WithImpliedAttributes emits it
// anyway. An instance or span whose
// record carries a TraceParent (see CaptureParent) is placed under that
// OTel span, in its trace, when it is nearer than its agenttrace parent.
//
// IDs are deterministic when the provider uses IDGenerator: the trace ID is
// the instance ULID, a span ID is the last 8 bytes of the span ULID, and the
// root's span ID that of the instance ULID. See IDGenerator for providers
// without it.
//
// A span delivered as started is started in OTel at once and ended when its
// end arrives; the Exporter keeps a bounded set of such open spans (see
// WithMaxOpenSpans) and ends those still open at Shutdown, marked
// agenttrace.unfinished. An instance's root ends when the instance ends,
// even if some of its spans are still open: they end later, as OTel allows.
//
// The Exporter never touches the global TracerProvider and never shuts the
// given one down. Its methods are safe for concurrent use.
type Exporter struct {
	tp     trace.TracerProvider
	tracer trace.Tracer
	cfg    config

	mu        sync.Mutex
	instances map[agenttrace.ID]*instState
	open      map[agenttrace.ID]*openSpan
	ended     endedRing
	recent    recentLinks
	closed    bool

	// copies is set when the provider is the OTel SDK's, which copies the
	// attributes it is given (span start and SetAttributes) and reads its
	// options during the call: the Exporter then collects every span's
	// attributes in scratch and its options in opts and endOpts, reused
	// under mu. names interns the repeating strings of payloads; cache
	// keeps the span names and finish-reason attributes made of them.
	copies  bool
	scratch []attribute.KeyValue
	opts    []trace.SpanStartOption
	endOpts []trace.SpanEndOption
	names   names
	cache   *spanNames

	// deterministic is set once the provider was seen to honour the wanted
	// IDs (IDGenerator is installed).
	deterministic atomic.Bool
}

// instState is what the Exporter keeps of an instance while it runs.
type instState struct {
	id     string // the instance ULID, for agenttrace.instance.id
	trace  trace.TraceID
	root   trace.Span        // nil when the start was not seen
	parent trace.SpanContext // parent of the instance's root spans
	ext    trace.SpanContext // OTel span the instance was started in
	// links holds what the deterministic IDs do not say about the
	// instance's open spans (see spanLinks); when a span ends, its links
	// move to Exporter.recent, so the map is bounded by the open spans.
	links map[agenttrace.ID]spanLinks
	lazy  bool // made up for a span whose instance start was not seen
	// rootCtx carries parent, for starting the instance's root spans;
	// made on first use (see rootContext).
	rootCtx context.Context
}

// spanLinks is what a span's children need to know about it beyond its
// IDs; the zero value says nothing.
type spanLinks struct {
	// over is the span's OTel context when it is not where the
	// deterministic IDs put it: the provider gave it other IDs, or context
	// interop moved it into another trace.
	over trace.SpanContext
	// ambient is the OTel span current where the span was started
	// (captured with CaptureParent).
	ambient trace.SpanContext
}

func (l spanLinks) isZero() bool { return !l.over.IsValid() && !l.ambient.IsValid() }

type openSpan struct {
	span  trace.Span
	class spanClass
}

var _ agenttrace.Exporter = (*Exporter)(nil)

// NewExporter returns an Exporter emitting through tp, which must not be
// nil. Use IDGenerator on tp for deterministic IDs.
func NewExporter(tp trace.TracerProvider, opts ...Option) *Exporter {
	cfg := newConfig(opts)
	_, copies := tp.(*sdktrace.TracerProvider)
	return &Exporter{
		copies:    copies,
		names:     names{},
		cache:     newSpanNames(),
		tp:        tp,
		tracer:    tp.Tracer(ScopeName),
		cfg:       cfg,
		instances: map[agenttrace.ID]*instState{},
		open:      map[agenttrace.ID]*openSpan{},
	}
}

// Name returns "otel", the exporter's name in agenttrace.Stats.
func (e *Exporter) Name() string { return "otel" }

// Export implements agenttrace.Exporter: it emits the records' spans
// through the provider. It returns ErrShutdown after Shutdown, or ctx's
// error if ctx is already done.
func (e *Exporter) Export(ctx context.Context, records []agenttrace.Record) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return ErrShutdown
	}
	for i := range records {
		r := &records[i]
		switch r.Kind {
		case agenttrace.InstanceStarted:
			if r.Instance != nil {
				e.instanceStarted(r.Instance)
			}
		case agenttrace.InstanceEnded:
			if r.Instance != nil {
				e.instanceEnded(r.Instance)
			}
		case agenttrace.SpanStarted:
			e.spanStarted(&r.Span)
		case agenttrace.SpanEnded:
			e.spanEnded(&r.Span)
		}
	}
	return nil
}

// Shutdown implements agenttrace.Exporter. It ends the spans and instance
// roots still open, marked agenttrace.unfinished, then calls the provider's
// ForceFlush if it has one (see WithoutFlushOnShutdown). Later calls do
// nothing.
func (e *Exporter) Shutdown(ctx context.Context) error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil
	}
	e.closed = true
	now := time.Now()
	for id, o := range e.open {
		o.span.SetAttributes(KeyUnfinished.Bool(true))
		o.span.End(trace.WithTimestamp(now))
		delete(e.open, id)
	}
	for id, st := range e.instances {
		if st.root != nil {
			st.root.SetAttributes(KeyUnfinished.Bool(true))
			st.root.End(trace.WithTimestamp(now))
		}
		delete(e.instances, id)
	}
	e.recent = recentLinks{}
	e.mu.Unlock()
	if f, ok := e.tp.(interface{ ForceFlush(context.Context) error }); ok && !e.cfg.noFlush {
		return f.ForceFlush(ctx)
	}
	return nil
}

func (e *Exporter) instanceStarted(d *agenttrace.InstanceData) *instState {
	st := &instState{id: d.ID.String(), trace: TraceID(d.ID)}
	parent := context.Background()
	if ext := fromTraceParent(d.TraceParent); ext.IsValid() {
		st.ext = ext
		st.trace = ext.TraceID()
		parent = trace.ContextWithRemoteSpanContext(parent, ext)
	}
	name := OperationInvokeAgent
	if d.Agent.Name != "" {
		name += " " + d.Agent.Name
	}
	a := attrs{maxLen: e.cfg.maxValueLen, kv: make([]attribute.KeyValue, 0, 12+len(d.Metadata))}
	a.str(KeyOperationName, OperationInvokeAgent)
	a.str(KeyAgentName, d.Agent.Name)
	a.str(KeyAgentVersion, d.Agent.Version)
	a.str(KeyAgentID, d.Agent.ID)
	a.str(KeyInstanceID, d.ID.String())
	a.str(KeyConversationID, d.SessionID)
	a.str(KeyUserID, d.UserID)
	a.str(KeyGroupID, d.GroupID)
	a.str(KeyChannel, d.Channel)
	a.str(KeyPurpose, string(d.Purpose))
	if d.Default {
		a.boolean(KeyInstanceDefault, true)
	}
	for _, k := range slices.Sorted(maps.Keys(d.Metadata)) {
		a.str(attribute.Key(PrefixMetadata+k), d.Metadata[k])
	}
	sctx := &startCtx{Context: parent, ids: wantIDs{trace: st.trace, span: SpanID(d.ID)}}
	_, st.root = e.tracer.Start(sctx, name,
		trace.WithSpanKind(trace.SpanKindInternal),
		trace.WithTimestamp(d.StartedAt),
		trace.WithAttributes(a.finish()...))
	st.parent = st.root.SpanContext()
	if st.parent.TraceID() == st.trace && st.parent.SpanID() == SpanID(d.ID) {
		e.deterministic.Store(true)
	} else if st.parent.IsValid() {
		st.trace = st.parent.TraceID()
	}
	e.instances[d.ID] = st
	return st
}

func (e *Exporter) instanceEnded(d *agenttrace.InstanceData) {
	st := e.instances[d.ID]
	if st == nil || st.lazy {
		// The start was not seen (or only made up for a span): emit the
		// whole root now.
		st = e.instanceStarted(d)
	}
	delete(e.instances, d.ID)
	e.ended.add(d.ID)
	a := attrs{maxLen: e.cfg.maxValueLen, implied: e.cfg.implied, kv: make([]attribute.KeyValue, 0, 16)}
	a.str(KeyInstanceStatus, d.Status.String())
	if s := d.Summary; s != nil {
		a.usage(s.Usage)
		a.cost(s.Cost)
		a.int(PrefixSpanCounts+"total", s.Spans.Total)
		a.int(PrefixSpanCounts+"complete", s.Spans.Complete)
		a.int(PrefixSpanCounts+"failed", s.Spans.Failed)
		a.int(PrefixSpanCounts+"cancelled", s.Spans.Cancelled)
		if s.Spans.Pending+s.Spans.Active > 0 {
			a.int(PrefixSpanCounts+"pending", s.Spans.Pending)
			a.int(PrefixSpanCounts+"active", s.Spans.Active)
		}
		a.int(KeyLLMCalls, s.LLMCalls)
		if s.TimeToFirstToken > 0 {
			a.float(KeyTimeToFirstToken, s.TimeToFirstToken.Seconds())
		}
	}
	if d.Status == agenttrace.StatusFailed {
		setError(&a, st.root, d.Error)
	}
	st.root.SetAttributes(a.finish()...)
	end := d.EndedAt
	if end.IsZero() {
		end = time.Now()
	}
	st.root.End(trace.WithTimestamp(end))
	st.root = nil
}

// setError sets codes.Error with the error's message and adds error.type.
func setError(a *attrs, span trace.Span, info *agenttrace.ErrorInfo) {
	typ, msg := "_OTHER", ""
	if info != nil {
		msg = info.Message
		if info.Type != "" {
			typ = info.Type
		}
	}
	a.str(KeyErrorType, typ)
	span.SetStatus(codes.Error, msg)
}

// state returns the instance of a span, made up if its start was not seen
// (it ended already, or its record was lost).
func (e *Exporter) state(id agenttrace.ID) *instState {
	if st := e.instances[id]; st != nil {
		return st
	}
	st := &instState{id: id.String(), trace: TraceID(id), lazy: true}
	if e.deterministic.Load() {
		// Its root exists, or will: hang the span below it.
		st.parent = trace.NewSpanContext(trace.SpanContextConfig{
			TraceID: st.trace, SpanID: SpanID(id), TraceFlags: trace.FlagsSampled,
		})
	}
	if !e.ended.has(id) {
		e.instances[id] = st
	}
	return st
}

// parentOf returns the OTel context of span id of instance st.
func (e *Exporter) parentOf(st *instState, id agenttrace.ID) trace.SpanContext {
	if id.IsZero() {
		return st.parent
	}
	if l, ok := e.linksOf(st, id); ok && l.over.IsValid() {
		return l.over
	}
	if !e.deterministic.Load() {
		// Its IDs are the provider's and were not kept: fall back to the
		// instance root.
		return st.parent
	}
	flags := trace.FlagsSampled
	if st.parent.IsValid() {
		// Follow the root's sampling decision.
		flags = st.parent.TraceFlags()
	}
	return trace.NewSpanContext(trace.SpanContextConfig{TraceID: st.trace, SpanID: SpanID(id), TraceFlags: flags})
}

// inInstanceTrace reports whether a span started in ctx lands in the trace
// whose ID is the ULID of instance id: a child takes its parent's trace ID.
func inInstanceTrace(ctx context.Context, id agenttrace.ID) bool {
	sc := trace.SpanContextFromContext(ctx)
	return sc.IsValid() && sc.TraceID() == TraceID(id)
}

// sameSpan reports whether a and b name the same span.
func sameSpan(a, b trace.SpanContext) bool {
	return a.TraceID() == b.TraceID() && a.SpanID() == b.SpanID()
}

func (e *Exporter) spanStarted(d *agenttrace.SpanData) {
	st := e.state(d.InstanceID)
	pctx, want, links := e.placeSpan(st, d)
	class := classify(d.Type)
	var m spanMeta
	name := spanName(d, class, &m, e.names, e.cache)
	final := d.Status.Finished()
	a := e.newAttrs(16)
	instID := st.id
	if !a.implied && inInstanceTrace(pctx, d.InstanceID) {
		instID = "" // the trace ID says it
	}
	a.startAttrs(d, instID, class, &m, e.cfg.content)
	if final {
		a.endAttrs(d, class, e.cfg.content)
	}
	kind := kindInternal
	if class == classLLM {
		kind = kindClient
	}
	span := e.start(&startCtx{Context: pctx, ids: want}, name, kind, d.CreatedAt, &a)
	if sc := span.SpanContext(); sc.IsValid() && (sc.TraceID() != st.trace || sc.SpanID() != want.span) {
		links.over = sc
	}
	if final || len(e.open) >= e.cfg.maxOpen {
		if !links.isZero() {
			e.recent.add(d.ID, links)
		}
		if final {
			e.endSpan(span, d)
			return
		}
		span.SetAttributes(KeyUnfinished.Bool(true))
		span.End(trace.WithTimestamp(d.CreatedAt))
		return
	}
	if !links.isZero() {
		if st.links == nil {
			st.links = map[agenttrace.ID]spanLinks{}
		}
		st.links[d.ID] = links
	}
	e.open[d.ID] = &openSpan{span: span, class: class}
}

// placeSpan returns the context to start span d of instance st in, the
// IDs it should get and the links its children will need.
func (e *Exporter) placeSpan(st *instState, d *agenttrace.SpanData) (context.Context, wantIDs, spanLinks) {
	want := wantIDs{trace: st.trace, span: SpanID(d.ID)}
	var links spanLinks
	if d.ParentID.IsZero() && d.TraceParent == nil {
		// The common case: a span under its instance's root.
		if st.parent.IsValid() {
			want.trace = st.parent.TraceID()
		}
		return st.rootContext(), want, links
	}
	parent := e.parentOf(st, d.ParentID)
	// Context interop: the OTel span current when the span started
	// (captured with CaptureParent), other than its agenttrace parent and
	// than what was current around that parent, is its nearer parent.
	if ext := fromTraceParent(d.TraceParent); ext.IsValid() {
		around := st.ext
		if !d.ParentID.IsZero() {
			if l, ok := e.linksOf(st, d.ParentID); ok && l.ambient.IsValid() {
				around = l.ambient
			}
		}
		if !sameSpan(ext, parent) && !sameSpan(ext, around) {
			parent = ext
		}
		links.ambient = ext
	}
	if !parent.IsValid() {
		return context.Background(), want, links
	}
	want.trace = parent.TraceID()
	return trace.ContextWithSpanContext(context.Background(), parent), want, links
}

// rootContext returns the context of the instance's root spans, made once
// per instance.
func (st *instState) rootContext() context.Context {
	if st.rootCtx == nil {
		st.rootCtx = context.Background()
		if st.parent.IsValid() {
			st.rootCtx = trace.ContextWithSpanContext(st.rootCtx, st.parent)
		}
	}
	return st.rootCtx
}

// Span kinds as start options, made once.
var (
	kindInternal = trace.WithSpanKind(trace.SpanKindInternal)
	kindClient   = trace.WithSpanKind(trace.SpanKindClient)
)

// newAttrs returns an attribute collector for one span. Its slice is the
// Exporter's scratch slice when the provider copies what it is given (see
// start), so that a span costs no slice of its own.
func (e *Exporter) newAttrs(size int) attrs {
	a := attrs{maxLen: e.cfg.maxValueLen, flatLeft: e.cfg.maxAttrs, names: e.names, cache: e.cache, implied: e.cfg.implied}
	if e.copies {
		a.kv = e.scratch[:0]
	} else {
		a.kv = make([]attribute.KeyValue, 0, size)
	}
	return a
}

// maxScratch bounds the scratch slice the Exporter keeps between spans.
const maxScratch = 256

// start starts a span with the attributes collected in a, then takes a's
// slice back as scratch when the provider copied it.
func (e *Exporter) start(ctx context.Context, name string, kind trace.SpanStartOption, at time.Time, a *attrs) trace.Span {
	opts := append(e.opts[:0], kind, trace.WithTimestamp(at), trace.WithAttributes(a.finish()...))
	_, span := e.tracer.Start(ctx, name, opts...)
	e.reclaim(a)
	if e.copies {
		clear(opts)
		e.opts = opts[:0]
	}
	return span
}

// reclaim takes a's slice back as scratch once the provider copied it.
func (e *Exporter) reclaim(a *attrs) {
	if e.copies && cap(a.kv) <= maxScratch {
		clear(a.kv) // drop the references to the span's strings
		e.scratch = a.kv[:0]
	}
}

// linksOf returns the links of span id of instance st: kept with the
// instance while the span is open, among the recent ones once it ended.
func (e *Exporter) linksOf(st *instState, id agenttrace.ID) (spanLinks, bool) {
	if l, ok := st.links[id]; ok {
		return l, true
	}
	return e.recent.get(id)
}

func (e *Exporter) spanEnded(d *agenttrace.SpanData) {
	o := e.open[d.ID]
	if o == nil {
		return
	}
	delete(e.open, d.ID)
	if st := e.instances[d.InstanceID]; st != nil {
		if l, ok := st.links[d.ID]; ok {
			// Children may still start (and be delivered) after it ended.
			delete(st.links, d.ID)
			e.recent.add(d.ID, l)
		}
	}
	a := e.newAttrs(12)
	a.endAttrs(d, o.class, e.cfg.content)
	o.span.SetAttributes(a.finish()...)
	e.reclaim(&a)
	e.endSpan(o.span, d)
}

// endSpan sets the status of a finished span and ends it at its end time.
func (e *Exporter) endSpan(span trace.Span, d *agenttrace.SpanData) {
	if d.Status == agenttrace.StatusFailed {
		msg := ""
		if d.Error != nil {
			msg = d.Error.Message
		}
		span.SetStatus(codes.Error, msg)
	}
	end := d.EndedAt
	if end.IsZero() {
		end = d.CreatedAt
	}
	opts := append(e.endOpts[:0], trace.WithTimestamp(end))
	span.End(opts...)
	if e.copies {
		// The SDK reads its end options during End.
		clear(opts)
		e.endOpts = opts[:0]
	}
}

// recentLinksSize is how many ended spans' links the Exporter keeps for
// children started after their parent's end was delivered (or in the same
// batch, when a parent is delivered already finished).
const recentLinksSize = 4096

// recentLinks keeps the links of the last spans that ended, bounded.
type recentLinks struct {
	ids  [recentLinksSize]agenttrace.ID
	m    map[agenttrace.ID]spanLinks
	next int
}

func (r *recentLinks) add(id agenttrace.ID, l spanLinks) {
	if r.m == nil {
		r.m = make(map[agenttrace.ID]spanLinks)
	}
	if old := r.ids[r.next]; !old.IsZero() {
		delete(r.m, old)
	}
	r.ids[r.next] = id
	r.m[id] = l
	r.next = (r.next + 1) % len(r.ids)
}

func (r *recentLinks) get(id agenttrace.ID) (spanLinks, bool) {
	l, ok := r.m[id]
	return l, ok
}

// endedRing remembers the last instances that ended, so that a straggling
// span does not make up a state that would never be released.
type endedRing struct {
	ids  [256]agenttrace.ID
	next int
}

func (r *endedRing) add(id agenttrace.ID) {
	r.ids[r.next] = id
	r.next = (r.next + 1) % len(r.ids)
}

func (r *endedRing) has(id agenttrace.ID) bool {
	for i := range r.ids {
		if r.ids[i] == id {
			return true
		}
	}
	return false
}

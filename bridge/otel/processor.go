package otelbridge

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/agenttrace/agenttrace"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// SpanProcessor is an sdktrace.SpanProcessor that turns ended OTel spans into
// agenttrace spans of a Tracer. Register it on a provider with
// sdktrace.WithSpanProcessor; it never touches the global provider.
//
// Each local root (a span without a parent, or with a remote one) and the
// spans below it become one instance, unless the context the local root
// started in carries an agenttrace span or instance of the tracer (as the
// context an instrumented call receives inside tracer.Start does, with or
// without ContextWithSpan): then they join that span, as its children, and
// its instance, which the processor neither starts nor ends. That is how
// the OTel spans an SDK emits natively (anthropic-sdk-go's, for one) nest
// in the agenttrace run that made the call.
//
// Spans are mapped by gen_ai.operation.name: chat,
// text_completion, generate_content and embeddings spans become llm spans
// (LLMRequest and LLMResponse payloads, with token usage); execute_tool
// spans become tool spans (ToolInput and ToolOutput); invoke_agent and
// create_agent spans become agent spans (AgentInput and AgentOutput).
// Message content, tool arguments and results are copied only with
// WithContentCapture(true). Other spans are skipped, or, with
// WithGenericSpans, become spans of the given type with their attributes as
// payload. A kept span's parent is its nearest kept ancestor; the span
// name becomes the agenttrace span's name, and an Error status makes it
// fail with the status description (or, when it has none, its error.type),
// its error.type attribute as the agenttrace error type
// (agenttrace.ErrorTyper).
//
// Token usage is read from gen_ai.usage.input_tokens and output_tokens
// (inclusive of cache tokens, as the conventions define them), with the
// details agenttrace.UsageCacheRead (gen_ai.usage.cache_read.input_tokens),
// UsageCacheWrite (gen_ai.usage.cache_creation.input_tokens, or the
// gen_ai.usage.cache_write.input_tokens anthropic-sdk-go emits), its
// UsageCacheWrite5m and UsageCacheWrite1h parts (anthropic-sdk-go's
// anthropic.usage.cache_creation.ephemeral_5m/1h_input_tokens) and
// UsageReasoning (gen_ai.usage.reasoning.output_tokens).
//
// Times are the OTel spans': a span starts at its start time
// (agenttrace.WithStartTime) and ends at its end time (EndAt, FailAt), its
// gen_ai.response.time_to_first_chunk marks its first token
// (MarkFirstTokenAt), and the instance spans the trace, from its earliest
// start to its latest end.
//
// OTel spans end children first, so the processor buffers a local root's
// spans until the root ends, then replays them parents first. A local root
// that has not ended after the trace timeout (WithTraceTimeout) since the
// first of its spans ended is replayed with what it has; the buffer is
// bounded (WithTraceLimits: local roots, and spans per root). Spans of the
// Exporter's scope (ScopeName) are ignored, so one provider can carry both
// directions without a loop.
//
// The OTel trace ID is kept in the instance metadata ("otel.trace_id"), and
// a remote parent of the local root (a trace continued from another
// process) becomes the instance's trace parent (InstanceData.TraceParent),
// so an Exporter puts the instance back under that parent.
//
// The processor starts one goroutine for the trace timeout; Shutdown (which
// the provider's Shutdown calls) stops it. It is safe for concurrent use.
type SpanProcessor struct {
	tracer *agenttrace.Tracer
	cfg    config

	mu      sync.Mutex
	traces  map[groupKey]*pendingTrace
	members map[trace.SpanID]groupKey // started spans below a buffered local root
	// maxMembers bounds members; a span started beyond it is grouped
	// with its trace (groupKey.root zero), as one OnStart did not see.
	maxMembers int
	replayed   traceRing
	closed     bool

	dropped atomic.Uint64

	stop     chan struct{}
	done     chan struct{}
	stopOnce sync.Once
}

// groupKey names the spans replayed together: a local root and the spans
// below it. A zero root groups the spans of a trace whose local root the
// processor did not see start (it was registered late); they are replayed
// with the first local root of their trace that ends.
type groupKey struct {
	trace trace.TraceID
	root  trace.SpanID
}

type pendingTrace struct {
	spans   []sdktrace.ReadOnlySpan
	members []trace.SpanID
	created time.Time // OnStart of the local root
	since   time.Time // arrival of the first ended span; zero before
	// attach is the agenttrace span or instance the local root started
	// under, carried by an otherwise empty context; nil if none.
	attach context.Context
}

// age is what the trace limit evicts by: the oldest first.
func (pt *pendingTrace) age() time.Time {
	if pt.since.IsZero() {
		return pt.created
	}
	return pt.since
}

var _ sdktrace.SpanProcessor = (*SpanProcessor)(nil)

// NewSpanProcessor returns a SpanProcessor recording into tracer.
func NewSpanProcessor(tracer *agenttrace.Tracer, opts ...Option) *SpanProcessor {
	p := &SpanProcessor{
		tracer:  tracer,
		cfg:     newConfig(opts),
		traces:  map[groupKey]*pendingTrace{},
		members: map[trace.SpanID]groupKey{},
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
	}
	p.maxMembers = min(4*p.cfg.maxTraces*p.cfg.maxTraceSpans, 1<<20)
	go p.timeouts()
	return p
}

// Dropped returns the number of spans left out: beyond the per-trace limit,
// or ended after their trace was replayed.
func (p *SpanProcessor) Dropped() uint64 { return p.dropped.Load() }

// isLocalRoot reports whether s has no parent in this process.
func isLocalRoot(parent trace.SpanContext) bool { return !parent.IsValid() || parent.IsRemote() }

// OnStart implements sdktrace.SpanProcessor: it notes which local root s
// belongs to and, for a local root, the agenttrace span or instance in ctx.
func (p *SpanProcessor) OnStart(ctx context.Context, s sdktrace.ReadWriteSpan) {
	if s.InstrumentationScope().Name == ScopeName {
		return
	}
	sc, parent := s.SpanContext(), s.Parent()
	var ready [][]sdktrace.ReadOnlySpan
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	var key groupKey
	var pt *pendingTrace
	if isLocalRoot(parent) {
		key = groupKey{trace: sc.TraceID(), root: sc.SpanID()}
		if len(p.traces) >= p.cfg.maxTraces {
			if spans := p.takeOldestLocked(); len(spans) > 0 {
				ready = append(ready, spans)
			}
		}
		pt = &pendingTrace{created: time.Now(), attach: attachContext(ctx)}
		p.traces[key] = pt
	} else if k, ok := p.members[parent.SpanID()]; ok {
		key, pt = k, p.traces[k]
	}
	// A member's children find the group through it. A group's members are
	// bounded (a span beyond the bound is grouped with its trace), and so
	// are all members.
	if pt != nil && len(pt.members) < 4*p.cfg.maxTraceSpans && len(p.members) < p.maxMembers {
		pt.members = append(pt.members, sc.SpanID())
		p.members[sc.SpanID()] = key
	}
	p.mu.Unlock()
	for _, spans := range ready {
		p.replay(spans)
	}
}

// attachContext returns a context carrying only the agenttrace span (or,
// without one, the instance) in ctx, or nil if ctx has neither.
func attachContext(ctx context.Context) context.Context {
	if ctx == nil {
		return nil
	}
	if span := agenttrace.SpanFromContext(ctx); span != nil {
		return agenttrace.ContextWithSpan(context.Background(), span)
	}
	if inst := agenttrace.InstanceFromContext(ctx); inst != nil {
		return agenttrace.ContextWithInstance(context.Background(), inst)
	}
	return nil
}

// OnEnd implements sdktrace.SpanProcessor: it buffers s, and replays its
// group if s is the group's local root.
func (p *SpanProcessor) OnEnd(s sdktrace.ReadOnlySpan) {
	if s.InstrumentationScope().Name == ScopeName {
		return
	}
	sc := s.SpanContext()
	local := isLocalRoot(s.Parent())
	var ready [][]sdktrace.ReadOnlySpan
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	key := groupKey{trace: sc.TraceID()}
	if local {
		key.root = sc.SpanID()
	} else if k, ok := p.members[sc.SpanID()]; ok {
		key = k
	}
	pt := p.traces[key]
	switch {
	case pt == nil && p.replayed.has(key):
		p.mu.Unlock()
		p.dropped.Add(1)
		return
	case pt == nil:
		if len(p.traces) >= p.cfg.maxTraces {
			if spans := p.takeOldestLocked(); len(spans) > 0 {
				ready = append(ready, spans)
			}
		}
		pt = &pendingTrace{created: time.Now()}
		p.traces[key] = pt
	}
	if pt.since.IsZero() {
		pt.since = time.Now()
	}
	if len(pt.spans) < p.cfg.maxTraceSpans {
		pt.spans = append(pt.spans, s)
	} else {
		p.dropped.Add(1)
	}
	if local {
		spans, attach := p.takeLocked(key)
		// Spans of the trace whose root the processor did not see start
		// go with the first local root of the trace that ends.
		if orphans := (groupKey{trace: key.trace}); p.traces[orphans] != nil {
			more, _ := p.takeLocked(orphans)
			for _, o := range more {
				if len(spans) < p.cfg.maxTraceSpans {
					spans = append(spans, o)
				} else {
					p.dropped.Add(1)
				}
			}
		}
		p.mu.Unlock()
		for _, spans := range ready {
			p.replay(spans)
		}
		p.replayInto(attach, spans)
		return
	}
	p.mu.Unlock()
	for _, spans := range ready {
		p.replay(spans)
	}
}

// ForceFlush implements sdktrace.SpanProcessor: it replays every buffered
// trace, complete or not, then flushes the tracer (ignoring
// agenttrace.ErrShutdown).
func (p *SpanProcessor) ForceFlush(ctx context.Context) error {
	p.replayAll(p.takeAll(time.Time{}))
	if err := p.tracer.Flush(ctx); err != nil && !errors.Is(err, agenttrace.ErrShutdown) {
		return err
	}
	return nil
}

// Shutdown implements sdktrace.SpanProcessor: it replays every buffered
// trace, flushes the tracer and stops the processor's goroutine. The tracer
// is not shut down: it belongs to the caller. Later calls do nothing.
func (p *SpanProcessor) Shutdown(ctx context.Context) error {
	var err error
	p.stopOnce.Do(func() {
		close(p.stop)
		<-p.done
		err = p.ForceFlush(ctx)
		p.mu.Lock()
		p.closed = true
		clear(p.traces)
		clear(p.members)
		p.mu.Unlock()
	})
	return err
}

// timeouts replays the traces whose root has not ended in time.
func (p *SpanProcessor) timeouts() {
	defer close(p.done)
	tick := min(max(p.cfg.traceTimeout/4, 10*time.Millisecond), time.Second)
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		select {
		case <-p.stop:
			return
		case now := <-t.C:
			p.replayAll(p.takeAll(now.Add(-p.cfg.traceTimeout)))
		}
	}
}

type takenGroup struct {
	attach context.Context
	spans  []sdktrace.ReadOnlySpan
}

func (p *SpanProcessor) replayAll(groups []takenGroup) {
	for _, g := range groups {
		p.replayInto(g.attach, g.spans)
	}
}

// takeAll removes the groups with ended spans whose first span ended before
// cutoff (all of them for the zero cutoff). Groups none of whose spans
// ended stay: there is nothing to replay yet.
func (p *SpanProcessor) takeAll(cutoff time.Time) []takenGroup {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []takenGroup
	for key, pt := range p.traces {
		if len(pt.spans) > 0 && (cutoff.IsZero() || pt.since.Before(cutoff)) {
			spans, attach := p.takeLocked(key)
			out = append(out, takenGroup{attach: attach, spans: spans})
		}
	}
	return out
}

// takeLocked removes a group and remembers it as replayed, so that its late
// spans are counted rather than starting a group of their own.
func (p *SpanProcessor) takeLocked(key groupKey) ([]sdktrace.ReadOnlySpan, context.Context) {
	pt := p.traces[key]
	delete(p.traces, key)
	for _, id := range pt.members {
		delete(p.members, id)
	}
	p.replayed.add(key)
	if key.root.IsValid() {
		// A late span below it is no longer a member: it falls to the
		// trace's group.
		p.replayed.add(groupKey{trace: key.trace})
	}
	return pt.spans, pt.attach
}

func (p *SpanProcessor) takeOldestLocked() []sdktrace.ReadOnlySpan {
	var oldest groupKey
	var since time.Time
	for key, pt := range p.traces {
		if since.IsZero() || pt.age().Before(since) {
			oldest, since = key, pt.age()
		}
	}
	spans, _ := p.takeLocked(oldest)
	return spans
}

// replay records one group's spans into an instance of their own.
func (p *SpanProcessor) replay(spans []sdktrace.ReadOnlySpan) { p.replayInto(nil, spans) }

// replayInto records one group's spans into the tracer, parents first: below
// the agenttrace span or instance in attach when it is set and its instance
// still runs, else into an instance of their own.
func (p *SpanProcessor) replayInto(attach context.Context, spans []sdktrace.ReadOnlySpan) {
	type node struct {
		s        sdktrace.ReadOnlySpan
		typ      string
		children []*node
	}
	nodes := make(map[trace.SpanID]*node, len(spans))
	kept := 0
	for _, s := range spans {
		n := &node{s: s, typ: p.spanType(s)}
		if n.typ != "" {
			kept++
		}
		nodes[s.SpanContext().SpanID()] = n
	}
	if kept == 0 {
		return
	}
	var roots []*node
	for _, n := range nodes {
		if parent := nodes[n.s.Parent().SpanID()]; parent != nil && n.s.Parent().IsValid() {
			parent.children = append(parent.children, n)
		} else {
			roots = append(roots, n)
		}
	}
	byStart := func(a, b *node) int { return a.s.StartTime().Compare(b.s.StartTime()) }
	slices.SortFunc(roots, byStart)

	var failed *node
	var walk func(ctx context.Context, n *node)
	walk = func(ctx context.Context, n *node) {
		if n.typ != "" {
			ctx = p.replaySpan(ctx, n.s, n.typ)
		}
		if n.s.Status().Code == codes.Error && failed == nil && isLocalRoot(n.s.Parent()) {
			failed = n
		}
		slices.SortFunc(n.children, byStart)
		for _, c := range n.children {
			walk(ctx, c)
		}
	}
	if attach != nil {
		if inst := agenttrace.InstanceFromContext(attach); inst != nil && !inst.Status().Finished() {
			// The spans join the run that made the call; its instance is
			// the caller's to end.
			for _, r := range roots {
				walk(attach, r)
			}
			return
		}
	}
	ctx, inst := p.tracer.StartInstance(context.Background(), p.instanceOptions(roots[0].s, spans)...)
	for _, r := range roots {
		walk(ctx, r)
	}
	var end time.Time
	for _, sp := range spans {
		if sp.EndTime().After(end) {
			end = sp.EndTime()
		}
	}
	if failed != nil {
		inst.FailAt(newStatusError(failed.s), end)
		return
	}
	inst.EndAt(end)
}

// instanceOptions derive the instance from the trace: its start, the
// conversation and user found on its spans, the OTel trace ID in the
// metadata, and the remote parent of its root as its trace parent.
func (p *SpanProcessor) instanceOptions(root sdktrace.ReadOnlySpan, spans []sdktrace.ReadOnlySpan) []agenttrace.InstanceOption {
	start := root.StartTime()
	var session, user string
	for _, s := range spans {
		if s.StartTime().Before(start) {
			start = s.StartTime()
		}
		for _, kv := range s.Attributes() {
			switch kv.Key {
			case KeyConversationID:
				if session == "" {
					session = kv.Value.Emit()
				}
			case KeyUserID:
				if user == "" {
					user = kv.Value.Emit()
				}
			}
		}
	}
	tid := root.SpanContext().TraceID()
	md := map[string]string{"otel.trace_id": hex.EncodeToString(tid[:])}
	opts := []agenttrace.InstanceOption{agenttrace.WithInstanceStartTime(start), agenttrace.WithMetadata(md)}
	if parent := root.Parent(); parent.IsValid() && parent.IsRemote() {
		opts = append(opts, agenttrace.WithTraceParent(agenttrace.TraceParent{
			TraceID: parent.TraceID(), SpanID: parent.SpanID(), Flags: byte(parent.TraceFlags()),
		}))
	}
	if session != "" {
		opts = append(opts, agenttrace.WithSessionID(session))
	}
	if user != "" {
		opts = append(opts, agenttrace.WithUserID(user))
	}
	return opts
}

// spanType returns the agenttrace type s maps to, or "" to skip it.
func (p *SpanProcessor) spanType(s sdktrace.ReadOnlySpan) string {
	var op string
	var model bool
	for _, kv := range s.Attributes() {
		switch kv.Key {
		case KeyOperationName:
			op = kv.Value.AsString()
		case KeyRequestModel:
			model = true
		}
	}
	switch op {
	case OperationChat, OperationTextCompletion, OperationGenerateContent, OperationEmbeddings:
		return agenttrace.TypeLLM
	case OperationExecuteTool:
		return agenttrace.TypeTool
	case OperationInvokeAgent, OperationCreateAgent:
		return agenttrace.TypeAgent
	case "":
		if model {
			return agenttrace.TypeLLM
		}
	}
	return p.cfg.genericType
}

// statusError is the error a replayed span or instance fails with: the
// OTel status description, and error.type as its ErrorType.
type statusError struct{ msg, typ string }

// newStatusError is the error of a span with an Error status: its
// description, or its error.type when it has none (anthropic-sdk-go sets
// only the type).
func newStatusError(s sdktrace.ReadOnlySpan) *statusError {
	e := &statusError{msg: s.Status().Description}
	for _, kv := range s.Attributes() {
		if kv.Key == KeyErrorType {
			e.typ = kv.Value.Emit()
		}
	}
	if e.msg == "" {
		e.msg = e.typ
	}
	return e
}

func (e *statusError) Error() string { return e.msg }

// ErrorType implements agenttrace.ErrorTyper.
func (e *statusError) ErrorType() string {
	if e.typ == "" {
		return "error"
	}
	return e.typ
}

// replaySpan records one span and returns the context its children start
// from.
func (p *SpanProcessor) replaySpan(ctx context.Context, s sdktrace.ReadOnlySpan, typ string) context.Context {
	a := indexAttrs(s.Attributes())
	var payload, result any
	switch typ {
	case agenttrace.TypeLLM:
		payload, result = p.llmPayloads(a)
	case agenttrace.TypeTool:
		in := agenttrace.ToolInput{Name: a.str(KeyToolName), CallID: a.str(KeyToolCallID)}
		out := agenttrace.ToolOutput{}
		if p.cfg.content {
			if v, ok := a[KeyToolCallArguments]; ok {
				in.Arguments = jsonValue(v)
			}
			if v, ok := a[KeyToolCallResult]; ok {
				out.Output = jsonValue(v)
			}
		}
		out.IsError = a[KeyToolIsError].AsBool()
		payload, result = in, out
	case agenttrace.TypeAgent:
		in := agenttrace.AgentInput{Name: a.str(KeyAgentName), SessionID: a.str(KeyConversationID), Model: a.str(KeyRequestModel)}
		out := agenttrace.AgentOutput{StopReason: a.str(PrefixResult + "stop_reason"), Turns: int(a[PrefixResult+"turns"].AsInt64())}
		if p.cfg.content {
			if v, ok := a[PrefixPayload+"input"]; ok {
				in.Input = jsonValue(v)
			}
			if v, ok := a[PrefixResult+"output"]; ok {
				out.Output = jsonValue(v)
			}
		}
		out.Usage = a.usage()
		payload, result = in, out
	default:
		m := make(map[string]any, len(s.Attributes()))
		for _, kv := range s.Attributes() {
			m[string(kv.Key)] = kv.Value.AsInterface()
		}
		payload = m
	}
	ctx, span := p.tracer.Start(ctx, typ, payload, agenttrace.WithStartTime(s.StartTime()), agenttrace.WithName(s.Name()))
	if result != nil {
		span.SetResult(result)
	}
	if v, ok := a[KeyResponseTimeToFirstChunk]; ok && v.AsFloat64() > 0 {
		span.MarkFirstTokenAt(s.StartTime().Add(time.Duration(v.AsFloat64() * float64(time.Second))))
	}
	if s.Status().Code == codes.Error {
		span.FailAt(newStatusError(s), s.EndTime())
	} else {
		span.EndAt(s.EndTime())
	}
	return ctx
}

func (p *SpanProcessor) llmPayloads(a attrIndex) (agenttrace.LLMRequest, agenttrace.LLMResponse) {
	req := agenttrace.LLMRequest{
		Operation: a.str(KeyOperationName),
		Provider:  a.str(KeyProviderName),
		Model:     a.str(KeyRequestModel),
		Stream:    a[KeyRequestStream].AsBool(),
	}
	if req.Provider == "" {
		req.Provider = a.str(KeySystem)
	}
	var set agenttrace.LLMSettings
	hasSet := false
	if v, ok := a[KeyRequestTemperature]; ok {
		set.Temperature, hasSet = ptrTo(v.AsFloat64()), true
	}
	if v, ok := a[KeyRequestTopP]; ok {
		set.TopP, hasSet = ptrTo(v.AsFloat64()), true
	}
	if v, ok := a[KeyRequestMaxTokens]; ok {
		set.MaxTokens, hasSet = ptrTo(v.AsInt64()), true
	}
	if v, ok := a[KeyRequestSeed]; ok {
		set.Seed, hasSet = ptrTo(v.AsInt64()), true
	}
	if v, ok := a[KeyRequestFrequencyPenalty]; ok {
		set.FrequencyPenalty, hasSet = ptrTo(v.AsFloat64()), true
	}
	if v, ok := a[KeyRequestPresencePenalty]; ok {
		set.PresencePenalty, hasSet = ptrTo(v.AsFloat64()), true
	}
	if v, ok := a[KeyRequestStopSequences]; ok {
		set.Stop, hasSet = v.AsStringSlice(), true
	}
	if hasSet {
		req.Settings = &set
	}
	resp := agenttrace.LLMResponse{ID: a.str(KeyResponseID), Model: a.str(KeyResponseModel), Usage: a.usage()}
	if fr := a[KeyResponseFinishReasons].AsStringSlice(); len(fr) > 0 {
		resp.FinishReason = fr[0]
	} else {
		resp.FinishReason = a.str(keyAnthropicStopReason)
	}
	if !p.cfg.content {
		return req, resp
	}
	var parts []otelPart
	if json.Unmarshal([]byte(a.str(KeySystemInstructions)), &parts) == nil {
		var text []string
		for _, pt := range parts {
			if pt.Type == "text" {
				text = append(text, pt.Content)
			}
		}
		req.System = strings.Join(text, "\n")
	}
	var msgs []otelMessage
	if json.Unmarshal([]byte(a.str(KeyInputMessages)), &msgs) == nil {
		req.Messages = fromOTelMessages(msgs)
	}
	var tools []agenttrace.ToolDefinition
	if json.Unmarshal([]byte(a.str(KeyToolDefinitions)), &tools) == nil {
		req.Tools = tools
	}
	msgs = nil
	if json.Unmarshal([]byte(a.str(KeyOutputMessages)), &msgs) == nil && len(msgs) > 0 {
		out := fromOTelMessages(msgs)
		if len(out) == 1 && out[0].Role == "assistant" && out[0].Name == "" {
			resp.Text, resp.ToolCalls = out[0].Content, out[0].ToolCalls
		} else {
			resp.Messages = out
		}
		if resp.FinishReason == "" {
			resp.FinishReason = msgs[len(msgs)-1].FinishReason
		}
	}
	return req, resp
}

func ptrTo[T any](v T) *T { return &v }

// attrIndex is a span's attributes by key.
type attrIndex map[attribute.Key]attribute.Value

func indexAttrs(kvs []attribute.KeyValue) attrIndex {
	m := make(attrIndex, len(kvs))
	for _, kv := range kvs {
		m[kv.Key] = kv.Value
	}
	return m
}

// str returns the value of k as a string ("" if absent).
func (a attrIndex) str(k attribute.Key) string {
	v, ok := a[k]
	if !ok {
		return ""
	}
	return v.Emit()
}

// usage returns the token usage of a GenAI span (reading the deprecated
// prompt and completion keys too), or nil if it has none.
func (a attrIndex) usage() *agenttrace.Usage {
	in, okIn := a[KeyUsageInputTokens]
	if !okIn {
		in, okIn = a[KeyUsagePromptTokens]
	}
	out, okOut := a[KeyUsageOutputTokens]
	if !okOut {
		out, okOut = a[KeyUsageCompletionTokens]
	}
	if !okIn && !okOut {
		return nil
	}
	u := &agenttrace.Usage{PromptTokens: in.AsInt64(), CompletionTokens: out.AsInt64()}
	if v, ok := a[KeyTotalTokens]; ok {
		u.TotalTokens = v.AsInt64()
	}
	for _, d := range usageDetailKeys {
		k, name := d.key, d.name
		if _, done := u.Details[name]; done {
			continue
		}
		if v, ok := a[k]; ok {
			if u.Details == nil {
				u.Details = map[string]int64{}
			}
			u.Details[name] = v.AsInt64()
		}
	}
	return u
}

// usageDetailKeys map usage attributes to agenttrace.Usage.Details names; of
// two keys for one name, the first present wins.
var usageDetailKeys = []struct {
	key  attribute.Key
	name string
}{
	{KeyUsageCacheReadInputTokens, agenttrace.UsageCacheRead},
	{KeyUsageCacheCreationInputTokens, agenttrace.UsageCacheWrite},
	{keyUsageCacheWriteInputTokens, agenttrace.UsageCacheWrite},
	{keyAnthropicCacheCreation5m, agenttrace.UsageCacheWrite5m},
	{keyAnthropicCacheCreation1h, agenttrace.UsageCacheWrite1h},
	{KeyUsageReasoningOutputTokens, agenttrace.UsageReasoning},
}

// Usage keys read besides the conventions' (semconv.go belongs to the
// Exporter's side, which writes only the registry's spelling).
const (
	// keyUsageCacheWriteInputTokens is the spelling anthropic-sdk-go
	// emits for gen_ai.usage.cache_creation.input_tokens.
	keyUsageCacheWriteInputTokens = attribute.Key("gen_ai.usage.cache_write.input_tokens")
	keyAnthropicCacheCreation5m   = attribute.Key("anthropic.usage.cache_creation.ephemeral_5m_input_tokens")
	keyAnthropicCacheCreation1h   = attribute.Key("anthropic.usage.cache_creation.ephemeral_1h_input_tokens")
	keyAnthropicStopReason        = attribute.Key("anthropic.message.stop_reason")
)

// jsonValue returns a JSON attribute as raw JSON, or a plain string value as
// itself.
func jsonValue(v attribute.Value) any {
	s := v.Emit()
	if v.Type() == attribute.STRING && json.Valid([]byte(s)) {
		return json.RawMessage(s)
	}
	return v.AsInterface()
}

// traceRing remembers the last groups replayed, so that a span ending after
// its group was replayed is counted as late rather than starting a new
// trace.
type traceRing struct {
	ids  [2048]groupKey
	set  map[groupKey]struct{}
	next int
}

func (r *traceRing) add(id groupKey) {
	if _, ok := r.set[id]; ok {
		return
	}
	if r.set == nil {
		r.set = make(map[groupKey]struct{}, len(r.ids))
	}
	delete(r.set, r.ids[r.next])
	r.ids[r.next] = id
	r.set[id] = struct{}{}
	r.next = (r.next + 1) % len(r.ids)
}

func (r *traceRing) has(id groupKey) bool {
	_, ok := r.set[id]
	return ok
}

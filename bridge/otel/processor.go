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
// Each trace (more exactly, each local root and the spans below it) becomes
// one instance. Spans are mapped by gen_ai.operation.name: chat,
// text_completion, generate_content and embeddings spans become llm spans
// (LLMRequest and LLMResponse payloads, with token usage); execute_tool
// spans become tool spans (ToolInput and ToolOutput); invoke_agent and
// create_agent spans become agent spans (AgentInput and AgentOutput).
// Message content, tool arguments and results are copied only with
// WithContentCapture(true). Other spans are skipped, or, with
// WithGenericSpans, become spans of the given type with their attributes as
// payload. A kept span's parent is its nearest kept ancestor; the span
// name becomes the agenttrace span's name, and an Error status makes it
// fail with the status description, its error.type attribute as the
// agenttrace error type (agenttrace.ErrorTyper).
//
// Times are the OTel spans': a span starts at its start time
// (agenttrace.WithStartTime) and ends at its end time (EndAt, FailAt), its
// gen_ai.response.time_to_first_chunk marks its first token
// (MarkFirstTokenAt), and the instance spans the trace, from its earliest
// start to its latest end.
//
// OTel spans end children first, so the processor buffers a trace's spans
// until its local root ends, then replays them parents first. A trace whose
// root has not ended after the trace timeout (WithTraceTimeout) is replayed
// with what it has; the buffer is bounded (WithTraceLimits). Spans of the
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

	mu       sync.Mutex
	traces   map[trace.TraceID]*pendingTrace
	replayed traceRing
	closed   bool

	dropped atomic.Uint64

	stop     chan struct{}
	done     chan struct{}
	stopOnce sync.Once
}

type pendingTrace struct {
	spans []sdktrace.ReadOnlySpan
	since time.Time // arrival of the first span
}

var _ sdktrace.SpanProcessor = (*SpanProcessor)(nil)

// NewSpanProcessor returns a SpanProcessor recording into tracer.
func NewSpanProcessor(tracer *agenttrace.Tracer, opts ...Option) *SpanProcessor {
	p := &SpanProcessor{
		tracer: tracer,
		cfg:    newConfig(opts),
		traces: map[trace.TraceID]*pendingTrace{},
		stop:   make(chan struct{}),
		done:   make(chan struct{}),
	}
	go p.timeouts()
	return p
}

// Dropped returns the number of spans left out: beyond the per-trace limit,
// or ended after their trace was replayed.
func (p *SpanProcessor) Dropped() uint64 { return p.dropped.Load() }

// OnStart implements sdktrace.SpanProcessor; it does nothing.
func (p *SpanProcessor) OnStart(context.Context, sdktrace.ReadWriteSpan) {}

// OnEnd implements sdktrace.SpanProcessor: it buffers s, and replays its
// trace if s is the trace's local root.
func (p *SpanProcessor) OnEnd(s sdktrace.ReadOnlySpan) {
	if s.InstrumentationScope().Name == ScopeName {
		return
	}
	tid := s.SpanContext().TraceID()
	local := !s.Parent().IsValid() || s.Parent().IsRemote()
	var ready [][]sdktrace.ReadOnlySpan
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	pt := p.traces[tid]
	switch {
	case pt == nil && p.replayed.has(tid):
		p.mu.Unlock()
		p.dropped.Add(1)
		return
	case pt == nil:
		if len(p.traces) >= p.cfg.maxTraces {
			ready = append(ready, p.takeOldestLocked())
		}
		pt = &pendingTrace{since: time.Now()}
		p.traces[tid] = pt
	}
	if len(pt.spans) < p.cfg.maxTraceSpans {
		pt.spans = append(pt.spans, s)
	} else {
		p.dropped.Add(1)
	}
	if local {
		ready = append(ready, p.takeLocked(tid))
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
	for _, spans := range p.takeAll(time.Time{}) {
		p.replay(spans)
	}
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
			for _, spans := range p.takeAll(now.Add(-p.cfg.traceTimeout)) {
				p.replay(spans)
			}
		}
	}
}

// takeAll removes the traces that started buffering before cutoff (all of
// them for the zero cutoff).
func (p *SpanProcessor) takeAll(cutoff time.Time) [][]sdktrace.ReadOnlySpan {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out [][]sdktrace.ReadOnlySpan
	for tid, pt := range p.traces {
		if cutoff.IsZero() || pt.since.Before(cutoff) {
			out = append(out, p.takeLocked(tid))
		}
	}
	return out
}

func (p *SpanProcessor) takeLocked(tid trace.TraceID) []sdktrace.ReadOnlySpan {
	pt := p.traces[tid]
	delete(p.traces, tid)
	p.replayed.add(tid)
	return pt.spans
}

func (p *SpanProcessor) takeOldestLocked() []sdktrace.ReadOnlySpan {
	var oldest trace.TraceID
	var since time.Time
	for tid, pt := range p.traces {
		if since.IsZero() || pt.since.Before(since) {
			oldest, since = tid, pt.since
		}
	}
	return p.takeLocked(oldest)
}

// replay records one trace's spans into the tracer, parents first.
func (p *SpanProcessor) replay(spans []sdktrace.ReadOnlySpan) {
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

	ctx, inst := p.tracer.StartInstance(context.Background(), p.instanceOptions(roots[0].s, spans)...)
	var failed *node
	var walk func(ctx context.Context, n *node)
	walk = func(ctx context.Context, n *node) {
		if n.typ != "" {
			ctx = p.replaySpan(ctx, n.s, n.typ)
		}
		if n.s.Status().Code == codes.Error && failed == nil && (!n.s.Parent().IsValid() || n.s.Parent().IsRemote()) {
			failed = n
		}
		slices.SortFunc(n.children, byStart)
		for _, c := range n.children {
			walk(ctx, c)
		}
	}
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
		inst.FailAt(&statusError{msg: failed.s.Status().Description, typ: indexAttrs(failed.s.Attributes()).str(KeyErrorType)}, end)
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
		span.FailAt(&statusError{msg: s.Status().Description, typ: a.str(KeyErrorType)}, s.EndTime())
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
	for k, name := range map[attribute.Key]string{
		KeyUsageCacheReadInputTokens:     "cache_read",
		KeyUsageCacheCreationInputTokens: "cache_creation",
		KeyUsageReasoningOutputTokens:    "reasoning",
	} {
		if v, ok := a[k]; ok {
			if u.Details == nil {
				u.Details = map[string]int64{}
			}
			u.Details[name] = v.AsInt64()
		}
	}
	return u
}

// jsonValue returns a JSON attribute as raw JSON, or a plain string value as
// itself.
func jsonValue(v attribute.Value) any {
	s := v.Emit()
	if v.Type() == attribute.STRING && json.Valid([]byte(s)) {
		return json.RawMessage(s)
	}
	return v.AsInterface()
}

// traceRing remembers the last traces replayed, so that a span ending after
// its trace was replayed is counted as late rather than starting a new
// trace.
type traceRing struct {
	ids  [1024]trace.TraceID
	set  map[trace.TraceID]struct{}
	next int
}

func (r *traceRing) add(id trace.TraceID) {
	if r.set == nil {
		r.set = make(map[trace.TraceID]struct{}, len(r.ids))
	}
	delete(r.set, r.ids[r.next])
	r.ids[r.next] = id
	r.set[id] = struct{}{}
	r.next = (r.next + 1) % len(r.ids)
}

func (r *traceRing) has(id trace.TraceID) bool {
	_, ok := r.set[id]
	return ok
}

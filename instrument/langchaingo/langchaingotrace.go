// Package langchaingotrace records tmc/langchaingo runs with agenttrace:
// a callbacks.Handler that turns chains, LLM calls, agent actions and tool
// calls into spans.
//
//	h := langchaingotrace.NewHandler(tracer, langchaingotrace.WithModel("openai", "gpt-4o"))
//	llm, _ := openai.New(openai.WithCallback(h))
//	executor := agents.NewExecutor(agents.NewOpenAIFunctionsAgent(llm, tools), agents.WithCallbacksHandler(h))
//	out, err := chains.Run(ctx, executor, "What is the weather in Paris?")
//
// # How spans nest
//
// langchaingo's callbacks cannot return a context, so the handler cannot
// make its spans current the way tracer.Start does. It nests them itself:
// the callbacks of one run all receive the context the run was started
// with (chains.Run, chains.Call, LLM.GenerateContent and Tool.Call pass it
// down unchanged), so the handler keeps, per such context, a stack of the
// spans it opened. A span's parent is the innermost open span of its
// run's stack, or, for the first, the agenttrace span in the context (the
// run joins that span's instance, or the instance in the context, or the
// tracer's default instance). The outermost chain of a run becomes an agent
// span when the context holds no span (an agents.Executor run is the
// agent), other chains chain spans.
//
// Consequences, all tested:
//   - Give each concurrent run a context of its own (tracer.StartInstance or
//     tracer.Start returns one). Runs that share one context (two goroutines
//     both passing context.Background()) share one stack and mix their
//     spans; a context type that cannot be a map key is not tracked (its
//     spans are flat children of the span in the context).
//   - Code inside a tool or a chain that starts spans from the context it
//     receives nests them under the span in that context, not under the
//     handler's tool span, because that context was not changed. Pass it
//     through Handler.Context to nest under the handler's current span.
//   - agents.Executor does not call the tool callbacks; tools that do
//     (tools.Calculator, a tool with a CallbacksHandler) report their
//     output. The handler opens a tool span at each HandleAgentAction
//     (name, tool-call id and input from the action) and ends it at the
//     tool's HandleToolEnd or HandleToolError, or else when the next
//     callback of the run arrives (the next LLM call, action, finish or
//     the chain's end); a chain error fails the spans it leaves open.
//   - Of the LLMs, only some call HandleLLMError (anthropic does, openai
//     does not): an LLM span left open by a failed call fails with the error
//     of the chain that ends around it.
//   - To stream, pass the handler as a call option too:
//     chains.Run(ctx, executor, input, chains.WithCallback(h)) gives the LLM a
//     streaming function that reaches HandleStreamingFunc, which marks the
//     first token (in langchaingo v0.1.14 the chain's call options replace
//     the streaming function an agent's own handler would set). The openai
//     LLM calls it with a context derived from the run's; the handler finds
//     the run through the instance in it, so this needs one run per
//     instance.
//   - The LLM callbacks carry no model name; name it per handler with
//     WithModel (one handler per LLM), or let llmhttp trace the HTTP client
//     and turn the handler's LLM spans off with WithoutLLMSpans.
//
// Token usage is read from ContentChoice.GenerationInfo, with each
// provider's keys and semantics: OpenAI's PromptTokens include
// PromptCachedTokens; Anthropic's InputTokens exclude
// CacheReadInputTokens and CacheCreationInputTokens, which are added.
package langchaingotrace

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/agenttrace/agenttrace"
	"github.com/agenttrace/agenttrace/instrument/llmhttp"
	"github.com/tmc/langchaingo/callbacks"
	"github.com/tmc/langchaingo/llms"
	"github.com/tmc/langchaingo/schema"
)

// DefaultMaxRuns bounds the runs a Handler tracks at once.
const DefaultMaxRuns = 4096

// ErrNoEnd is the error of a span whose end callback never came, failed
// because an enclosing span failed.
var ErrNoEnd = errors.New("langchaingotrace: ended without its end callback")

// Option configures a Handler.
type Option func(*config)

type config struct {
	capture    llmhttp.CaptureMode
	maxContent int
	provider   string
	model      string
	noLLM      bool
	maxRuns    int
	agentRoot  bool
}

// WithCapture sets the content capture mode, as llmhttp.WithCapture does
// for the transport: llmhttp.CaptureFull records prompts, messages,
// outputs, tool inputs and outputs, chain values and retrieved documents;
// llmhttp.CaptureMetadata (the default, unless
// OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT turns content on)
// records the messages' roles, tool call names and ids and the sizes of
// their texts; llmhttp.CaptureOff records no messages at all. Every mode
// keeps models, tool names, call ids, finish reasons and usage.
func WithCapture(m llmhttp.CaptureMode) Option { return func(c *config) { c.capture = m } }

// WithContent is WithCapture(llmhttp.CaptureFull) when on, and
// WithCapture(llmhttp.CaptureMetadata) when not.
func WithContent(on bool) Option {
	if on {
		return WithCapture(llmhttp.CaptureFull)
	}
	return WithCapture(llmhttp.CaptureMetadata)
}

// WithMaxContentBytes caps the content captured per span (default
// llmhttp.DefaultMaxContentBytes): what is cut is marked on llm spans
// (content_truncated) and counted in llmhttp.ReadStats; a cut JSON value is
// kept as a string. n <= 0 keeps the default.
func WithMaxContentBytes(n int) Option {
	return func(c *config) {
		if n > 0 {
			c.maxContent = n
		}
	}
}

// WithModel names the provider and model of the LLM the handler is set on
// (langchaingo's callbacks do not say).
func WithModel(provider, model string) Option {
	return func(c *config) { c.provider, c.model = provider, model }
}

// WithoutLLMSpans leaves LLM calls to another instrumentation (llmhttp on
// the LLM's HTTP client): the handler records chains, actions and tools only.
func WithoutLLMSpans() Option { return func(c *config) { c.noLLM = true } }

// WithoutAgentSpans makes the outermost chain of a run a chain span too.
func WithoutAgentSpans() Option { return func(c *config) { c.agentRoot = false } }

// WithMaxRuns bounds the runs tracked at once (default DefaultMaxRuns);
// beyond it a run's spans are flat children of the span in its context,
// counted by Untracked. The handler cannot match the end of such a span to
// its start, so it stays open until its instance ends, which fails it with
// the instance_ended marker.
func WithMaxRuns(n int) Option {
	return func(c *config) {
		if n > 0 {
			c.maxRuns = n
		}
	}
}

// Handler is a langchaingo callbacks.Handler recording into a tracer.
// It is safe for concurrent use by runs with distinct contexts.
type Handler struct {
	tracer *agenttrace.Tracer
	cfg    config

	mu   sync.Mutex
	runs map[context.Context]*run
	// byInst finds the run of a context derived from a run's (the openai
	// LLM streams with one): the one run of the instance in it.
	byInst    map[*agenttrace.Instance]*instRuns
	untracked atomic.Uint64
}

type instRuns struct {
	n   int
	run *run // the last run added; meaningful when n == 1
}

var _ callbacks.Handler = (*Handler)(nil)

type run struct {
	stack []*frame
	inst  *agenttrace.Instance
}

type kind uint8

const (
	kindChain kind = iota + 1
	kindLLM
	kindTool
	kindRetriever
)

type frame struct {
	kind kind
	span *agenttrace.Span
	ctx  context.Context // carries span, for its children
	// action: a tool span opened at HandleAgentAction; started: its
	// tool's HandleToolStart came.
	action, started bool
	// content is the span's capture, shared by its payload and result.
	content *llmhttp.Content
}

// NewHandler returns a Handler recording into tracer.
func NewHandler(tracer *agenttrace.Tracer, opts ...Option) *Handler {
	c := config{maxRuns: DefaultMaxRuns, agentRoot: true}
	for _, o := range opts {
		if o != nil {
			o(&c)
		}
	}
	c.capture = llmhttp.ResolveCapture(c.capture)
	return &Handler{tracer: tracer, cfg: c, runs: map[context.Context]*run{}, byInst: map[*agenttrace.Instance]*instRuns{}}
}

// Untracked returns the number of spans started for runs the handler could
// not track (a context that cannot be a map key, or more than the maximum
// number of runs): they were recorded, as children of the span in their
// context.
func (h *Handler) Untracked() uint64 { return h.untracked.Load() }

// Context returns ctx carrying the handler's innermost open span of the
// run ctx belongs to, so that spans started from it nest under that span
// (a tool's own work under the tool span). It returns ctx when the run has
// no open span.
func (h *Handler) Context(ctx context.Context) context.Context {
	if !keyable(ctx) {
		return ctx
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if r := h.runs[ctx]; r != nil && len(r.stack) > 0 {
		return r.stack[len(r.stack)-1].ctx
	}
	return ctx
}

func keyable(ctx context.Context) bool {
	return ctx != nil && reflect.TypeOf(ctx).Comparable()
}

// push starts a span under the run's innermost open span and pushes it.
func (h *Handler) push(ctx context.Context, k kind, typ string, payload any, name string, action bool, cc *llmhttp.Content) *frame {
	if ctx == nil {
		ctx = context.Background()
	}
	parent := ctx
	var r *run
	if keyable(ctx) {
		h.mu.Lock()
		r = h.runs[ctx]
		if r == nil && len(h.runs) < h.cfg.maxRuns {
			r = &run{inst: agenttrace.InstanceFromContext(ctx)}
			h.addRunLocked(ctx, r)
		}
		if r != nil && len(r.stack) > 0 {
			parent = r.stack[len(r.stack)-1].ctx
		}
		h.mu.Unlock()
	}
	if r == nil {
		h.untracked.Add(1)
	}
	var opts []agenttrace.SpanOption
	if name != "" {
		opts = append(opts, agenttrace.WithName(name))
	}
	sctx, span := h.tracer.Start(parent, typ, payload, opts...)
	f := &frame{kind: k, span: span, ctx: sctx, action: action, content: cc}
	if r != nil {
		h.mu.Lock()
		// The run may have been emptied and dropped meanwhile.
		if h.runs[ctx] != r {
			if len(h.runs) < h.cfg.maxRuns && h.runs[ctx] == nil {
				h.addRunLocked(ctx, r)
			} else {
				r = nil
			}
		}
		if r != nil {
			r.stack = append(r.stack, f)
		}
		h.mu.Unlock()
	}
	return f
}

func (h *Handler) addRunLocked(ctx context.Context, r *run) {
	h.runs[ctx] = r
	if r.inst == nil {
		return
	}
	ir := h.byInst[r.inst]
	if ir == nil {
		ir = &instRuns{}
		h.byInst[r.inst] = ir
	}
	ir.n++
	ir.run = r
}

func (h *Handler) deleteRunLocked(ctx context.Context, r *run) {
	delete(h.runs, ctx)
	if r.inst == nil {
		return
	}
	if ir := h.byInst[r.inst]; ir != nil {
		if ir.n--; ir.n <= 0 {
			delete(h.byInst, r.inst)
		}
	}
}

// pop removes the innermost open frame of kind k and the frames opened
// after it, which it returns in the order to end them (innermost first),
// before the frame itself; nil when the run has no open frame of kind k.
func (h *Handler) pop(ctx context.Context, k kind) (*frame, []*frame) {
	if !keyable(ctx) {
		return nil, nil
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	r := h.runs[ctx]
	if r == nil {
		return nil, nil
	}
	for i := len(r.stack) - 1; i >= 0; i-- {
		if r.stack[i].kind != k {
			continue
		}
		f := r.stack[i]
		var above []*frame
		for j := len(r.stack) - 1; j > i; j-- {
			above = append(above, r.stack[j])
		}
		clear(r.stack[i:])
		r.stack = r.stack[:i]
		if len(r.stack) == 0 {
			h.deleteRunLocked(ctx, r)
		}
		return f, above
	}
	return nil, nil
}

// top returns the run's innermost open frame, or nil.
func (h *Handler) top(ctx context.Context) *frame {
	if !keyable(ctx) {
		return nil
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if r := h.runs[ctx]; r != nil && len(r.stack) > 0 {
		return r.stack[len(r.stack)-1]
	}
	return nil
}

// closeAction ends a tool span opened at an agent action whose tool did not
// report its end: the next callback of the run shows that it returned.
func (h *Handler) closeAction(ctx context.Context) {
	if f := h.top(ctx); f != nil && f.kind == kindTool && f.action {
		if f, _ := h.pop(ctx, kindTool); f != nil {
			f.span.End()
		}
	}
}

// end ends the frames left open inside a frame that ended: complete when it
// completed, failed with err when it failed.
func endAbove(above []*frame, err error) {
	for _, f := range above {
		if err == nil {
			f.span.End()
		} else {
			f.span.Fail(err)
		}
	}
}

// HandleText implements callbacks.Handler; it records nothing.
func (h *Handler) HandleText(context.Context, string) {}

// HandleLLMStart implements callbacks.Handler: an llm span for a
// completion of prompts.
func (h *Handler) HandleLLMStart(ctx context.Context, prompts []string) {
	if h.cfg.noLLM {
		return
	}
	h.closeAction(ctx)
	req := agenttrace.LLMRequest{Operation: "text_completion", Provider: h.cfg.provider, Model: h.cfg.model}
	cc := h.content()
	if cc.Structure() {
		for _, p := range prompts {
			m := agenttrace.Message{Role: "user"}
			cc.MessageText(&m, p)
			req.Messages = append(req.Messages, m)
		}
	}
	req.Metadata = cc.Mark(nil)
	h.push(ctx, kindLLM, agenttrace.TypeLLM, req, h.llmName(), false, cc)
}

// content returns the capture of a new span.
func (h *Handler) content() *llmhttp.Content {
	return llmhttp.NewContent(h.cfg.capture, h.cfg.maxContent)
}

func (h *Handler) llmName() string {
	if h.cfg.model != "" {
		return "chat " + h.cfg.model
	}
	return ""
}

// HandleLLMGenerateContentStart implements callbacks.Handler: an llm span
// for a chat call.
func (h *Handler) HandleLLMGenerateContentStart(ctx context.Context, ms []llms.MessageContent) {
	if h.cfg.noLLM {
		return
	}
	h.closeAction(ctx)
	req := agenttrace.LLMRequest{Operation: "chat", Provider: h.cfg.provider, Model: h.cfg.model}
	cc := h.content()
	if cc.Structure() {
		for _, m := range ms {
			msg := message(m, cc)
			if cc.Full() && m.Role == llms.ChatMessageTypeSystem && req.System == "" && len(req.Messages) == 0 && len(msg.Parts) == 0 {
				req.System = msg.Content
				continue
			}
			req.Messages = append(req.Messages, msg)
		}
	}
	req.Metadata = cc.Mark(nil)
	h.push(ctx, kindLLM, agenttrace.TypeLLM, req, h.llmName(), false, cc)
}

// HandleStreamingFunc implements callbacks.Handler: the first chunk of a
// streamed LLM call marks its first token.
func (h *Handler) HandleStreamingFunc(ctx context.Context, chunk []byte) {
	if len(chunk) == 0 {
		return
	}
	f := h.top(ctx)
	if f == nil {
		f = h.topOfInstance(ctx)
	}
	if f != nil && f.kind == kindLLM {
		f.span.MarkFirstToken()
	}
}

// topOfInstance returns the innermost open frame of the one run of the
// instance in ctx, for a context derived from the run's; nil when the
// instance has no run or several.
func (h *Handler) topOfInstance(ctx context.Context) *frame {
	inst := agenttrace.InstanceFromContext(ctx)
	if inst == nil {
		return nil
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if ir := h.byInst[inst]; ir != nil && ir.n == 1 && len(ir.run.stack) > 0 {
		return ir.run.stack[len(ir.run.stack)-1]
	}
	return nil
}

// HandleLLMGenerateContentEnd implements callbacks.Handler: the llm span
// ends with the response.
func (h *Handler) HandleLLMGenerateContentEnd(ctx context.Context, res *llms.ContentResponse) {
	f, above := h.pop(ctx, kindLLM)
	if f == nil {
		return
	}
	endAbove(above, nil)
	if res != nil {
		f.span.SetResult(h.llmResponse(res, f.content))
	}
	f.span.End()
}

// HandleLLMError implements callbacks.Handler: the llm span fails.
func (h *Handler) HandleLLMError(ctx context.Context, err error) {
	f, above := h.pop(ctx, kindLLM)
	if f == nil {
		return
	}
	endAbove(above, ErrNoEnd)
	f.span.Fail(err)
}

// HandleChainStart implements callbacks.Handler: a chain span (an agent
// span for the outermost chain of a run whose context holds no span).
func (h *Handler) HandleChainStart(ctx context.Context, inputs map[string]any) {
	h.closeAction(ctx)
	typ := agenttrace.TypeChain
	if h.cfg.agentRoot && h.top(ctx) == nil && agenttrace.SpanFromContext(ctx) == nil {
		typ = agenttrace.TypeAgent
	}
	cc := h.content()
	var in any
	if inputs != nil {
		in = cc.Value(inputs)
	}
	var payload any = agenttrace.ChainInput{Inputs: in}
	if typ == agenttrace.TypeAgent {
		payload = agenttrace.AgentInput{Input: in}
	}
	cc.Mark(nil)
	h.push(ctx, kindChain, typ, payload, "", false, cc)
}

// HandleChainEnd implements callbacks.Handler: the chain span ends with
// its outputs.
func (h *Handler) HandleChainEnd(ctx context.Context, outputs map[string]any) {
	f, above := h.pop(ctx, kindChain)
	if f == nil {
		return
	}
	endAbove(above, nil)
	if cc := f.content; cc.Full() && outputs != nil {
		out := cc.Value(outputs)
		cc.Mark(nil)
		if f.span.Type() == agenttrace.TypeAgent {
			f.span.SetResult(agenttrace.AgentOutput{Output: out})
		} else {
			f.span.SetResult(agenttrace.ChainOutput{Outputs: out})
		}
	}
	f.span.End()
}

// HandleChainError implements callbacks.Handler: the chain span, and every
// span left open inside it, fail with err.
func (h *Handler) HandleChainError(ctx context.Context, err error) {
	f, above := h.pop(ctx, kindChain)
	if f == nil {
		return
	}
	endAbove(above, err)
	f.span.Fail(err)
}

// HandleAgentAction implements callbacks.Handler: a tool span for the
// action's tool call.
func (h *Handler) HandleAgentAction(ctx context.Context, action schema.AgentAction) {
	h.closeAction(ctx)
	in := agenttrace.ToolInput{Name: action.Tool, CallID: action.ToolID}
	cc := h.content()
	in.Arguments = jsonOrText(cc, action.ToolInput)
	cc.Mark(nil)
	h.push(ctx, kindTool, agenttrace.TypeTool, in, action.Tool, true, cc)
}

// HandleAgentFinish implements callbacks.Handler: the last action's tool
// span ends.
func (h *Handler) HandleAgentFinish(ctx context.Context, _ schema.AgentFinish) { h.closeAction(ctx) }

// HandleToolStart implements callbacks.Handler: it continues the tool span
// of the agent action that called the tool, or starts a tool span.
func (h *Handler) HandleToolStart(ctx context.Context, input string) {
	if f := h.top(ctx); f != nil && f.kind == kindTool && f.action && !f.started {
		f.started = true
		return
	}
	in := agenttrace.ToolInput{Name: "tool"}
	cc := h.content()
	in.Arguments = jsonOrText(cc, input)
	cc.Mark(nil)
	h.push(ctx, kindTool, agenttrace.TypeTool, in, "", false, cc)
}

// HandleToolEnd implements callbacks.Handler: the tool span ends with the
// tool's output.
func (h *Handler) HandleToolEnd(ctx context.Context, output string) {
	f, above := h.pop(ctx, kindTool)
	if f == nil {
		return
	}
	endAbove(above, nil)
	if cc := f.content; cc.Full() {
		f.span.SetResult(agenttrace.ToolOutput{Output: jsonOrText(cc, output)})
		cc.Mark(nil)
	}
	f.span.End()
}

// HandleToolError implements callbacks.Handler: the tool span fails.
func (h *Handler) HandleToolError(ctx context.Context, err error) {
	f, above := h.pop(ctx, kindTool)
	if f == nil {
		return
	}
	endAbove(above, ErrNoEnd)
	f.span.Fail(err)
}

// HandleRetrieverStart implements callbacks.Handler: a chain span named
// "retriever".
func (h *Handler) HandleRetrieverStart(ctx context.Context, query string) {
	in := agenttrace.ChainInput{Name: "retriever"}
	cc := h.content()
	if cc.Full() {
		in.Inputs = map[string]any{"query": cc.Text(query)}
	}
	cc.Mark(nil)
	h.push(ctx, kindRetriever, agenttrace.TypeChain, in, "retriever", false, cc)
}

// HandleRetrieverEnd implements callbacks.Handler: the retriever span ends
// with the number of documents (and, with content, the documents).
func (h *Handler) HandleRetrieverEnd(ctx context.Context, _ string, documents []schema.Document) {
	f, above := h.pop(ctx, kindRetriever)
	if f == nil {
		return
	}
	endAbove(above, nil)
	out := map[string]any{"documents": len(documents)}
	if cc := f.content; cc.Full() && len(documents) > 0 {
		out["content"] = cc.Value(documents)
		cc.Mark(nil)
	}
	f.span.SetResult(agenttrace.ChainOutput{Outputs: out})
	f.span.End()
}

// llmResponse is the LLM's response as the span's result: the first
// choice's text as Text (full) and its reasoning, and in metadata mode its
// text size, as an assistant message of parts; further choices as
// assistant messages.
func (h *Handler) llmResponse(res *llms.ContentResponse, cc *llmhttp.Content) agenttrace.LLMResponse {
	if cc == nil {
		cc = h.content()
	}
	resp := agenttrace.LLMResponse{Model: h.cfg.model}
	for i, c := range res.Choices {
		if c == nil {
			continue
		}
		if resp.Usage == nil {
			resp.Usage = usage(c.GenerationInfo)
		}
		msg := agenttrace.Message{Role: "assistant"}
		if c.ReasoningContent != "" {
			cc.Part(&msg, agenttrace.ContentPart{Type: agenttrace.PartThinking, Text: c.ReasoningContent})
		}
		if i == 0 {
			resp.FinishReason = c.StopReason
			resp.Text = cc.Text(c.Content)
			if !cc.Full() {
				cc.MessageText(&msg, c.Content)
			}
		} else {
			cc.MessageText(&msg, c.Content)
		}
		if len(msg.Parts) > 0 || msg.Content != "" {
			resp.Messages = append(resp.Messages, msg)
		}
		for _, tc := range c.ToolCalls {
			call := agenttrace.ToolCall{ID: tc.ID}
			if tc.FunctionCall != nil {
				call.Name = tc.FunctionCall.Name
				call.Arguments = cc.JSON(tc.FunctionCall.Arguments)
			}
			resp.ToolCalls = append(resp.ToolCalls, call)
		}
		if len(c.ToolCalls) == 0 && c.FuncCall != nil {
			resp.ToolCalls = append(resp.ToolCalls, agenttrace.ToolCall{Name: c.FuncCall.Name, Arguments: cc.JSON(c.FuncCall.Arguments)})
		}
	}
	resp.Metadata = cc.Mark(nil)
	return resp
}

// usage normalises GenerationInfo's token counts into an inclusive Usage,
// or nil when it has none.
func usage(info map[string]any) *agenttrace.Usage {
	n := func(k string) (int64, bool) {
		switch v := info[k].(type) {
		case int:
			return int64(v), true
		case int32:
			return int64(v), true
		case int64:
			return v, true
		case float64:
			return int64(v), true
		}
		return 0, false
	}
	var u agenttrace.Usage
	details := map[string]int64{}
	if in, ok := n("InputTokens"); ok {
		// Anthropic: input_tokens excludes the cache tokens.
		read, _ := n("CacheReadInputTokens")
		write, _ := n("CacheCreationInputTokens")
		out, _ := n("OutputTokens")
		u.PromptTokens, u.CompletionTokens = in+read+write, out
		if read > 0 {
			details[agenttrace.UsageCacheRead] = read
		}
		if write > 0 {
			details[agenttrace.UsageCacheWrite] = write
		}
	} else if in, ok := n("PromptTokens"); ok {
		// OpenAI, Gemini, Ollama: prompt tokens include the cached ones.
		out, _ := n("CompletionTokens")
		u.PromptTokens, u.CompletionTokens = in, out
		u.TotalTokens, _ = n("TotalTokens")
		if c, _ := n("PromptCachedTokens"); c > 0 {
			details[agenttrace.UsageCacheRead] = c
		} else if c, _ := n("CachedTokens"); c > 0 {
			details[agenttrace.UsageCacheRead] = c
		}
		if r, _ := n("ReasoningTokens"); r > 0 {
			details[agenttrace.UsageReasoning] = r
		}
	} else {
		return nil
	}
	if u.TotalTokens == 0 {
		u.TotalTokens = u.PromptTokens + u.CompletionTokens
	}
	if len(details) > 0 {
		u.Details = details
	}
	return &u
}

// message is an input message by the capture mode: its text (full) or its
// texts' sizes (metadata), images and binary parts as typed parts (by URL,
// or inline data by size), its role, tool calls and tool result id.
func message(m llms.MessageContent, cc *llmhttp.Content) agenttrace.Message {
	out := agenttrace.Message{Role: string(m.Role)}
	switch m.Role {
	case llms.ChatMessageTypeHuman:
		out.Role = "user"
	case llms.ChatMessageTypeAI:
		out.Role = "assistant"
	}
	for _, p := range m.Parts {
		switch p := p.(type) {
		case llms.TextContent:
			cc.MessageText(&out, p.Text)
		case llms.ToolCall:
			call := agenttrace.ToolCall{ID: p.ID}
			if p.FunctionCall != nil {
				call.Name, call.Arguments = p.FunctionCall.Name, cc.JSON(p.FunctionCall.Arguments)
			}
			out.ToolCalls = append(out.ToolCalls, call)
		case llms.ToolCallResponse:
			out.ToolCallID, out.Name = p.ToolCallID, p.Name
			cc.MessageText(&out, p.Content)
		case llms.ImageURLContent:
			part := agenttrace.ContentPart{Type: agenttrace.PartImage, URL: p.URL}
			if strings.HasPrefix(p.URL, "data:") {
				part.URL, part.Size = "", int64(len(p.URL))
			}
			cc.Part(&out, part)
		case llms.BinaryContent:
			cc.Part(&out, agenttrace.ContentPart{Type: agenttrace.PartFile, MIMEType: p.MIMEType, Size: int64(len(p.Data))})
		}
	}
	return out
}

// jsonOrText is s, within the budget, as raw JSON when it is JSON and as
// text otherwise; nil unless content is captured.
func jsonOrText(cc *llmhttp.Content, s string) any {
	if !cc.Full() || s == "" {
		return nil
	}
	if json.Valid([]byte(s)) {
		return cc.JSON(s)
	}
	return cc.Text(s)
}

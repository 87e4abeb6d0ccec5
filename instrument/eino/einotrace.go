// Package einotrace records cloudwego/eino runs with agenttrace: an eino
// callbacks.Handler that turns every component run into a span.
//
//	handler := einotrace.NewHandler(tracer)
//	out, err := agent.Generate(ctx, msgs, agent.WithComposeOptions(compose.WithCallbacks(handler)))
//
// or, once at start-up, callbacks.AppendGlobalHandlers(einotrace.NewHandler(tracer)).
//
// eino's callbacks return the context the component goes on with, so every
// span is the current one while its component runs: a graph run (the
// outermost one an agent span, nested graphs, chains, workflows, lambdas
// and tools nodes chain spans), chat models (llm spans with messages, tools
// offered, settings, output, tool calls, finish reason and token usage) and
// tools (tool spans with the call id and arguments) nest as the run does,
// and spans started by the user's code or by llmhttp inside a component
// nest under its span. Passthrough nodes are skipped. A streamed chat model
// output is read from eino's copy of the stream: the span marks its first
// token at the first chunk with content and ends when the stream does,
// with the concatenated message as its result.
//
// Spans join the instance in the context of the run (tracer.StartInstance),
// or the tracer's default instance.
package einotrace

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"strings"

	"github.com/agenttrace/agenttrace"
	"github.com/cloudwego/eino/callbacks"
	"github.com/cloudwego/eino/components"
	"github.com/cloudwego/eino/components/embedding"
	"github.com/cloudwego/eino/components/model"
	"github.com/cloudwego/eino/components/tool"
	"github.com/cloudwego/eino/compose"
	"github.com/cloudwego/eino/schema"
)

// Option configures a handler.
type Option func(*config)

type config struct {
	content  bool
	spanType func(info *callbacks.RunInfo, nested bool) string
}

// WithContent turns the capture of message content, tool arguments and
// tool results on or off. The default is off, as the OpenTelemetry GenAI
// conventions ask, unless OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT
// is "true". Without content, spans still carry models, settings, tool
// names, call ids, finish reasons and usage.
func WithContent(on bool) Option { return func(c *config) { c.content = on } }

// WithSpanTypes replaces the choice of span type per component: f receives
// the component's run info and whether it runs inside another traced
// component, and returns the agenttrace span type, or "" to skip the
// component (its children then nest under its nearest traced ancestor).
// DefaultSpanType is the default.
func WithSpanTypes(f func(info *callbacks.RunInfo, nested bool) string) Option {
	return func(c *config) {
		if f != nil {
			c.spanType = f
		}
	}
}

// DefaultSpanType maps eino components to span types: ChatModel and
// Embedding to llm, Tool to tool, an outermost Graph, Chain or Workflow to
// agent, Passthrough to none (skipped), and everything else (nested graphs,
// ToolsNode, Lambda, ChatTemplate, Retriever, ...) to chain.
func DefaultSpanType(info *callbacks.RunInfo, nested bool) string {
	switch info.Component {
	case components.ComponentOfChatModel, components.ComponentOfEmbedding:
		return agenttrace.TypeLLM
	case components.ComponentOfTool:
		return agenttrace.TypeTool
	case compose.ComponentOfPassthrough:
		return ""
	case compose.ComponentOfGraph, compose.ComponentOfChain, compose.ComponentOfWorkflow:
		if !nested {
			return agenttrace.TypeAgent
		}
	}
	return agenttrace.TypeChain
}

// NewHandler returns an eino callbacks.Handler recording into tracer.
// It is safe for concurrent use.
func NewHandler(tracer *agenttrace.Tracer, opts ...Option) callbacks.Handler {
	c := config{
		content:  strings.EqualFold(os.Getenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"), "true"),
		spanType: DefaultSpanType,
	}
	for _, o := range opts {
		if o != nil {
			o(&c)
		}
	}
	return &handler{tracer: tracer, cfg: c}
}

type handler struct {
	tracer *agenttrace.Tracer
	cfg    config
}

// spanKey holds the span this handler started for the component whose
// callbacks get the context; nil for a skipped component, so that its end
// never ends an ancestor's span.
type spanKey struct{}

type current struct {
	span *agenttrace.Span
	typ  string
}

func ours(ctx context.Context) *current {
	c, _ := ctx.Value(spanKey{}).(*current)
	return c
}

func (h *handler) start(ctx context.Context, info *callbacks.RunInfo, input callbacks.CallbackInput) context.Context {
	if info == nil {
		info = &callbacks.RunInfo{}
	}
	parent := ours(ctx)
	typ := h.cfg.spanType(info, parent != nil && parent.span != nil || parentSkipped(ctx))
	if typ == "" {
		return context.WithValue(ctx, spanKey{}, &current{})
	}
	ctx, span := h.tracer.Start(ctx, typ, h.payload(ctx, typ, info, input), agenttrace.WithName(spanName(info)))
	return context.WithValue(ctx, spanKey{}, &current{span: span, typ: typ})
}

// parentSkipped reports whether ctx is inside a component this handler
// skipped, which still counts as nesting.
func parentSkipped(ctx context.Context) bool { return ours(ctx) != nil }

func spanName(info *callbacks.RunInfo) string {
	switch {
	case info.Name != "":
		return info.Name
	case info.Type != "":
		return info.Type + string(info.Component)
	}
	return string(info.Component)
}

// OnStart implements callbacks.Handler: it starts the component's span.
func (h *handler) OnStart(ctx context.Context, info *callbacks.RunInfo, input callbacks.CallbackInput) context.Context {
	return h.start(ctx, info, input)
}

// OnStartWithStreamInput implements callbacks.Handler: it starts the
// component's span and closes its copy of the input stream (the inputs of a
// streamed run are not recorded).
func (h *handler) OnStartWithStreamInput(ctx context.Context, info *callbacks.RunInfo, input *schema.StreamReader[callbacks.CallbackInput]) context.Context {
	if input != nil {
		input.Close()
	}
	return h.start(ctx, info, nil)
}

// OnEnd implements callbacks.Handler: it ends the component's span with its
// output.
func (h *handler) OnEnd(ctx context.Context, info *callbacks.RunInfo, output callbacks.CallbackOutput) context.Context {
	c := ours(ctx)
	if c == nil || c.span == nil {
		return ctx
	}
	if r := h.result(c.typ, info, output); r != nil {
		c.span.SetResult(r)
	}
	c.span.End()
	return ctx
}

// OnError implements callbacks.Handler: it fails the component's span.
func (h *handler) OnError(ctx context.Context, _ *callbacks.RunInfo, err error) context.Context {
	if c := ours(ctx); c != nil && c.span != nil {
		c.span.Fail(err)
	}
	return ctx
}

// OnEndWithStreamOutput implements callbacks.Handler: it reads its copy of
// the output stream on a goroutine of its own and ends the span when the
// stream ends: complete at io.EOF, failed at an error. A chat model's first
// chunk with content marks the first token.
func (h *handler) OnEndWithStreamOutput(ctx context.Context, info *callbacks.RunInfo, output *schema.StreamReader[callbacks.CallbackOutput]) context.Context {
	c := ours(ctx)
	if output == nil {
		if c != nil && c.span != nil {
			c.span.End()
		}
		return ctx
	}
	if c == nil || c.span == nil {
		output.Close()
		return ctx
	}
	go h.drain(c, info, output)
	return ctx
}

func (h *handler) drain(c *current, info *callbacks.RunInfo, output *schema.StreamReader[callbacks.CallbackOutput]) {
	defer output.Close()
	var msgs []*schema.Message
	var last callbacks.CallbackOutput
	var usage *agenttrace.Usage
	var chunks []string
	for {
		chunk, err := output.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			c.span.Fail(err)
			return
		}
		last = chunk
		if c.typ != agenttrace.TypeLLM {
			if h.cfg.content {
				if s, ok := chunk.(string); ok {
					chunks = append(chunks, s)
				}
			}
			continue
		}
		out := model.ConvCallbackOutput(chunk)
		if out == nil || out.Message == nil {
			continue
		}
		if len(msgs) == 0 || !hasContent(msgs) {
			if m := out.Message; m.Content != "" || len(m.ToolCalls) > 0 || m.ReasoningContent != "" {
				c.span.MarkFirstToken()
			}
		}
		msgs = append(msgs, out.Message)
		if u := tokenUsage(out); u != nil {
			usage = u
		}
	}
	switch {
	case c.typ == agenttrace.TypeLLM && len(msgs) > 0:
		msg, err := schema.ConcatMessages(msgs)
		if err != nil {
			msg = msgs[len(msgs)-1]
		}
		resp := h.llmResponse(msg)
		if usage != nil {
			resp.Usage = usage
		}
		c.span.SetResult(resp)
	case c.typ == agenttrace.TypeLLM:
	case len(chunks) > 0:
		c.span.SetResult(agenttrace.ToolOutput{Output: strings.Join(chunks, "")})
	case last != nil:
		if r := h.result(c.typ, info, last); r != nil {
			c.span.SetResult(r)
		}
	}
	c.span.End()
}

func hasContent(msgs []*schema.Message) bool {
	for _, m := range msgs {
		if m.Content != "" || len(m.ToolCalls) > 0 || m.ReasoningContent != "" {
			return true
		}
	}
	return false
}

// payload is a component's span payload.
func (h *handler) payload(ctx context.Context, typ string, info *callbacks.RunInfo, input callbacks.CallbackInput) any {
	switch typ {
	case agenttrace.TypeLLM:
		if info.Component == components.ComponentOfEmbedding {
			req := agenttrace.LLMRequest{Operation: "embeddings", Provider: provider(info)}
			if in := embedding.ConvCallbackInput(input); in != nil && in.Config != nil {
				req.Model = in.Config.Model
			}
			return req
		}
		req := agenttrace.LLMRequest{Operation: "chat", Provider: provider(info)}
		in := model.ConvCallbackInput(input)
		if in == nil {
			return req
		}
		if in.Config != nil {
			req.Model = in.Config.Model
			req.Settings = settings(in.Config)
		}
		for _, t := range in.Tools {
			if t == nil {
				continue
			}
			def := agenttrace.ToolDefinition{Name: t.Name, Description: t.Desc}
			if t.ParamsOneOf != nil {
				if s, err := t.ToJSONSchema(); err == nil && s != nil {
					def.Parameters, _ = json.Marshal(s)
				}
			}
			req.Tools = append(req.Tools, def)
		}
		if h.cfg.content {
			for _, m := range in.Messages {
				if m == nil {
					continue
				}
				if m.Role == schema.System && req.System == "" && len(req.Messages) == 0 {
					req.System = m.Content
					continue
				}
				req.Messages = append(req.Messages, message(m))
			}
		}
		return req
	case agenttrace.TypeTool:
		in := agenttrace.ToolInput{Name: info.Name, CallID: compose.GetToolCallID(ctx)}
		if h.cfg.content {
			if t := tool.ConvCallbackInput(input); t != nil && t.ArgumentsInJSON != "" {
				in.Arguments = rawOrString(t.ArgumentsInJSON)
			}
		}
		return in
	case agenttrace.TypeAgent:
		in := agenttrace.AgentInput{Name: info.Name}
		if h.cfg.content {
			in.Input = input
		}
		return in
	default:
		in := agenttrace.ChainInput{Name: spanName(info)}
		if h.cfg.content {
			in.Inputs = input
		}
		return in
	}
}

// result is a component's span result, or nil.
func (h *handler) result(typ string, info *callbacks.RunInfo, output callbacks.CallbackOutput) any {
	switch typ {
	case agenttrace.TypeLLM:
		if info != nil && info.Component == components.ComponentOfEmbedding {
			out := embedding.ConvCallbackOutput(output)
			if out == nil || out.TokenUsage == nil {
				return nil
			}
			return agenttrace.LLMResponse{Usage: &agenttrace.Usage{
				PromptTokens: int64(out.TokenUsage.PromptTokens), CompletionTokens: int64(out.TokenUsage.CompletionTokens),
				TotalTokens: int64(out.TokenUsage.TotalTokens),
			}}
		}
		out := model.ConvCallbackOutput(output)
		if out == nil || out.Message == nil {
			return nil
		}
		resp := h.llmResponse(out.Message)
		if u := tokenUsage(out); u != nil {
			resp.Usage = u
		}
		if out.Config != nil && resp.Model == "" {
			resp.Model = out.Config.Model
		}
		return resp
	case agenttrace.TypeTool:
		if !h.cfg.content {
			return nil
		}
		out := tool.ConvCallbackOutput(output)
		if out == nil {
			return nil
		}
		if out.ToolOutput != nil {
			return agenttrace.ToolOutput{Output: out.ToolOutput}
		}
		return agenttrace.ToolOutput{Output: rawOrString(out.Response)}
	case agenttrace.TypeAgent:
		if !h.cfg.content {
			return nil
		}
		return agenttrace.AgentOutput{Output: output}
	default:
		if !h.cfg.content {
			return nil
		}
		return agenttrace.ChainOutput{Outputs: output}
	}
}

func (h *handler) llmResponse(m *schema.Message) agenttrace.LLMResponse {
	var resp agenttrace.LLMResponse
	if m.ResponseMeta != nil {
		resp.FinishReason = m.ResponseMeta.FinishReason
		if u := m.ResponseMeta.Usage; u != nil {
			resp.Usage = usageOf(u.PromptTokens, u.CompletionTokens, u.TotalTokens, u.PromptTokenDetails.CachedTokens, u.CompletionTokensDetails.ReasoningTokens)
		}
	}
	for _, tc := range m.ToolCalls {
		call := agenttrace.ToolCall{ID: tc.ID, Name: tc.Function.Name}
		if h.cfg.content && tc.Function.Arguments != "" {
			call.Arguments = rawJSON(tc.Function.Arguments)
		}
		resp.ToolCalls = append(resp.ToolCalls, call)
	}
	if h.cfg.content {
		resp.Text = m.Content
	}
	return resp
}

func tokenUsage(out *model.CallbackOutput) *agenttrace.Usage {
	if out == nil || out.TokenUsage == nil {
		return nil
	}
	u := out.TokenUsage
	return usageOf(u.PromptTokens, u.CompletionTokens, u.TotalTokens, u.PromptTokenDetails.CachedTokens, u.CompletionTokensDetails.ReasoningTokens)
}

// usageOf builds a Usage from eino's counts, which are inclusive (prompt
// tokens include the cached ones, completion tokens the reasoning ones).
func usageOf(prompt, completion, total, cached, reasoning int) *agenttrace.Usage {
	u := &agenttrace.Usage{PromptTokens: int64(prompt), CompletionTokens: int64(completion), TotalTokens: int64(total)}
	if u.TotalTokens == 0 {
		u.TotalTokens = u.PromptTokens + u.CompletionTokens
	}
	if cached > 0 || reasoning > 0 {
		u.Details = map[string]int64{}
		if cached > 0 {
			u.Details[agenttrace.UsageCacheRead] = int64(cached)
		}
		if reasoning > 0 {
			u.Details[agenttrace.UsageReasoning] = int64(reasoning)
		}
	}
	return u
}

func settings(c *model.Config) *agenttrace.LLMSettings {
	var s agenttrace.LLMSettings
	set := false
	if c.Temperature != 0 {
		t := float64(c.Temperature)
		s.Temperature, set = &t, true
	}
	if c.TopP != 0 {
		p := float64(c.TopP)
		s.TopP, set = &p, true
	}
	if c.MaxTokens != 0 {
		m := int64(c.MaxTokens)
		s.MaxTokens, set = &m, true
	}
	if len(c.Stop) > 0 {
		s.Stop, set = c.Stop, true
	}
	if !set {
		return nil
	}
	return &s
}

func message(m *schema.Message) agenttrace.Message {
	out := agenttrace.Message{Role: string(m.Role), Content: m.Content, Name: m.Name, ToolCallID: m.ToolCallID}
	if m.Role == schema.Tool && out.Name == "" {
		out.Name = m.ToolName
	}
	for _, tc := range m.ToolCalls {
		out.ToolCalls = append(out.ToolCalls, agenttrace.ToolCall{ID: tc.ID, Name: tc.Function.Name, Arguments: rawJSON(tc.Function.Arguments)})
	}
	return out
}

// provider names the model provider from the component's type ("OpenAI",
// "Ark", ...), lower-cased.
func provider(info *callbacks.RunInfo) string { return strings.ToLower(info.Type) }

// rawJSON returns s as raw JSON, or s quoted when it is not valid JSON
// (a model's truncated arguments, say), so nothing is lost.
func rawJSON(s string) json.RawMessage {
	if s == "" {
		return nil
	}
	if json.Valid([]byte(s)) {
		return json.RawMessage(s)
	}
	b, _ := json.Marshal(s)
	return b
}

func rawOrString(s string) any {
	if json.Valid([]byte(s)) {
		return json.RawMessage(s)
	}
	return s
}

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
// or the tracer's default instance. Register the handler once: globally or
// per run, not both, or every component is recorded twice.
package einotrace

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"strings"

	"github.com/agenttrace/agenttrace"
	"github.com/agenttrace/agenttrace/instrument/llmhttp"
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
	capture    llmhttp.CaptureMode
	maxContent int
	spanType   func(info *callbacks.RunInfo, nested bool) string
}

// WithCapture sets the content capture mode, as llmhttp.WithCapture does
// for the transport: llmhttp.CaptureFull records message content, tool
// definitions, arguments and results and component inputs and outputs;
// llmhttp.CaptureMetadata (the default, unless
// OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT turns content on)
// records the messages' roles, tool call names and ids and the sizes of
// their texts; llmhttp.CaptureOff records no messages at all. Every mode
// keeps models, settings, tool names, call ids, finish reasons and usage.
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
	c := config{spanType: DefaultSpanType}
	for _, o := range opts {
		if o != nil {
			o(&c)
		}
	}
	c.capture = llmhttp.ResolveCapture(c.capture)
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
	// content is the span's capture, shared by its payload and result.
	content *llmhttp.Content
}

func ours(ctx context.Context) *current {
	c, _ := ctx.Value(spanKey{}).(*current)
	return c
}

func (h *handler) start(ctx context.Context, info *callbacks.RunInfo, input callbacks.CallbackInput) context.Context {
	if info == nil {
		info = &callbacks.RunInfo{}
	}
	// Inside a component this handler saw (traced or skipped) is nested.
	typ := h.cfg.spanType(info, ours(ctx) != nil)
	if typ == "" {
		return context.WithValue(ctx, spanKey{}, &current{})
	}
	cc := llmhttp.NewContent(h.cfg.capture, h.cfg.maxContent)
	ctx, span := h.tracer.Start(ctx, typ, h.payload(ctx, typ, info, input, cc), agenttrace.WithName(spanName(info)))
	return context.WithValue(ctx, spanKey{}, &current{span: span, typ: typ, content: cc})
}

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
	if r := h.result(c.typ, info, output, c.content); r != nil {
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
// chunk with content marks the first token. As with any eino handler that
// reads its copy, the goroutine lives as long as the component's stream:
// the span ends when the stream does, not when the application stops
// reading or closes its own copy.
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
	cc := c.content
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
			if cc.Full() {
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
		resp := h.llmResponse(msg, cc)
		if usage != nil {
			resp.Usage = usage
		}
		c.span.SetResult(resp)
	case c.typ == agenttrace.TypeLLM:
	case len(chunks) > 0:
		out := cc.Text(strings.Join(chunks, ""))
		cc.Mark(nil)
		switch c.typ {
		case agenttrace.TypeTool:
			c.span.SetResult(agenttrace.ToolOutput{Output: out})
		case agenttrace.TypeAgent:
			c.span.SetResult(agenttrace.AgentOutput{Output: out})
		default:
			c.span.SetResult(agenttrace.ChainOutput{Outputs: out})
		}
	case last != nil:
		if r := h.result(c.typ, info, last, cc); r != nil {
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
func (h *handler) payload(ctx context.Context, typ string, info *callbacks.RunInfo, input callbacks.CallbackInput, cc *llmhttp.Content) any {
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
		// Messages first: what is left of the budget goes to the tools.
		if cc.Structure() {
			for _, m := range in.Messages {
				if m == nil {
					continue
				}
				if m.Role == schema.System && req.System == "" && len(req.Messages) == 0 {
					if cc.Full() {
						req.System = cc.Text(m.Content)
						continue
					}
				}
				req.Messages = append(req.Messages, message(m, cc))
			}
		}
		for _, t := range in.Tools {
			if t == nil {
				continue
			}
			def := agenttrace.ToolDefinition{Name: t.Name}
			if cc.Full() {
				// Tool definitions are content (gen_ai.tool.definitions is
				// opt-in): only their names are metadata.
				def.Description = cc.Text(t.Desc)
			}
			if cc.Full() && t.ParamsOneOf != nil {
				if s, err := t.ToJSONSchema(); err == nil && s != nil {
					if b, err := json.Marshal(s); err == nil {
						def.Parameters = cc.JSON(string(b))
					}
				}
			}
			req.Tools = append(req.Tools, def)
		}
		req.Metadata = cc.Mark(nil)
		return req
	case agenttrace.TypeTool:
		in := agenttrace.ToolInput{Name: info.Name, CallID: compose.GetToolCallID(ctx)}
		if cc.Full() {
			if t := tool.ConvCallbackInput(input); t != nil && t.ArgumentsInJSON != "" {
				in.Arguments = cc.JSON(t.ArgumentsInJSON)
			}
		}
		cc.Mark(nil)
		return in
	case agenttrace.TypeAgent:
		in := agenttrace.AgentInput{Name: info.Name}
		if cc.Full() && input != nil {
			in.Input = cc.Value(input)
		}
		cc.Mark(nil)
		return in
	default:
		in := agenttrace.ChainInput{Name: spanName(info)}
		if cc.Full() && input != nil {
			in.Inputs = cc.Value(input)
		}
		cc.Mark(nil)
		return in
	}
}

// result is a component's span result, or nil.
func (h *handler) result(typ string, info *callbacks.RunInfo, output callbacks.CallbackOutput, cc *llmhttp.Content) any {
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
		resp := h.llmResponse(out.Message, cc)
		if u := tokenUsage(out); u != nil {
			resp.Usage = u
		}
		if out.Config != nil && resp.Model == "" {
			resp.Model = out.Config.Model
		}
		return resp
	case agenttrace.TypeTool:
		if !cc.Full() {
			return nil
		}
		out := tool.ConvCallbackOutput(output)
		if out == nil {
			return nil
		}
		defer cc.Mark(nil)
		if out.ToolOutput != nil {
			return agenttrace.ToolOutput{Output: cc.Value(out.ToolOutput)}
		}
		return agenttrace.ToolOutput{Output: jsonOrText(cc, out.Response)}
	case agenttrace.TypeAgent:
		if !cc.Full() || output == nil {
			return nil
		}
		defer cc.Mark(nil)
		return agenttrace.AgentOutput{Output: cc.Value(output)}
	default:
		if !cc.Full() || output == nil {
			return nil
		}
		defer cc.Mark(nil)
		return agenttrace.ChainOutput{Outputs: cc.Value(output)}
	}
}

// llmResponse is a chat model's output message as the span's result.
func (h *handler) llmResponse(m *schema.Message, cc *llmhttp.Content) agenttrace.LLMResponse {
	var resp agenttrace.LLMResponse
	if m.ResponseMeta != nil {
		resp.FinishReason = m.ResponseMeta.FinishReason
		if u := m.ResponseMeta.Usage; u != nil {
			resp.Usage = usageOf(u.PromptTokens, u.CompletionTokens, u.TotalTokens, u.PromptTokenDetails.CachedTokens, u.CompletionTokensDetails.ReasoningTokens)
		}
	}
	for _, tc := range m.ToolCalls {
		call := agenttrace.ToolCall{ID: tc.ID, Name: tc.Function.Name, Arguments: cc.JSON(tc.Function.Arguments)}
		resp.ToolCalls = append(resp.ToolCalls, call)
	}
	resp.Text = cc.Text(m.Content)
	// Reasoning, and in metadata mode the text's size, as the transport
	// records them: an assistant message of parts.
	msg := agenttrace.Message{Role: "assistant"}
	if m.ReasoningContent != "" {
		cc.Part(&msg, agenttrace.ContentPart{Type: agenttrace.PartThinking, Text: m.ReasoningContent})
	}
	if !cc.Full() {
		cc.MessageText(&msg, m.Content)
	}
	if len(msg.Parts) > 0 {
		resp.Messages = []agenttrace.Message{msg}
	}
	resp.Metadata = cc.Mark(nil)
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

// message is an input message by the capture mode: its text (full) or
// the text's size (metadata), with its role, name and tool calls.
func message(m *schema.Message, cc *llmhttp.Content) agenttrace.Message {
	out := agenttrace.Message{Role: string(m.Role), Name: m.Name, ToolCallID: m.ToolCallID}
	if m.Role == schema.Tool && out.Name == "" {
		out.Name = m.ToolName
	}
	cc.MessageText(&out, m.Content)
	if m.ReasoningContent != "" {
		cc.Part(&out, agenttrace.ContentPart{Type: agenttrace.PartThinking, Text: m.ReasoningContent})
	}
	for _, p := range m.UserInputMultiContent {
		inputPart(cc, &out, p)
	}
	for _, tc := range m.ToolCalls {
		out.ToolCalls = append(out.ToolCalls, agenttrace.ToolCall{ID: tc.ID, Name: tc.Function.Name, Arguments: cc.JSON(tc.Function.Arguments)})
	}
	return out
}

// provider names the model provider from the component's type ("OpenAI",
// "Ark", ...), lower-cased.
func provider(info *callbacks.RunInfo) string { return strings.ToLower(info.Type) }

// inputPart records a multimodal input part of a message: text as text,
// media by type, MIME type and URL (inline data by its size only).
func inputPart(cc *llmhttp.Content, out *agenttrace.Message, p schema.MessageInputPart) {
	if p.Type == schema.ChatMessagePartTypeText {
		cc.MessageText(out, p.Text)
		return
	}
	part := agenttrace.ContentPart{Type: string(p.Type)}
	var common *schema.MessagePartCommon
	switch {
	case p.Image != nil:
		common, part.Type = &p.Image.MessagePartCommon, agenttrace.PartImage
	case p.Audio != nil:
		common, part.Type = &p.Audio.MessagePartCommon, agenttrace.PartAudio
	case p.Video != nil:
		common, part.Type = &p.Video.MessagePartCommon, "video"
	case p.File != nil:
		common, part.Type = &p.File.MessagePartCommon, agenttrace.PartFile
	}
	if common != nil {
		part.MIMEType = common.MIMEType
		if u := common.URL; u != nil {
			if strings.HasPrefix(*u, "data:") {
				part.Size = int64(len(*u))
			} else {
				part.URL = *u
			}
		}
		if d := common.Base64Data; d != nil {
			part.Size = int64(len(*d))
		}
	}
	cc.Part(out, part)
}

// jsonOrText is s, within the budget, as raw JSON when it is JSON and as
// text otherwise.
func jsonOrText(cc *llmhttp.Content, s string) any {
	if s != "" && json.Valid([]byte(s)) {
		return cc.JSON(s)
	}
	return cc.Text(s)
}

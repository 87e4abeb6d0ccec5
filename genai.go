package agenttrace

import (
	"encoding/json"
	"maps"
	"slices"
	"strconv"

	"github.com/agenttrace/agenttrace/internal/jsonesc"
)

// Typed payloads for the conventional span types. They carry the fields the
// Prefactor integrations and the OpenTelemetry GenAI conventions use, so
// exporters can map them; they encode to JSON without reflection. Any other
// JSON-encodable value works as a payload too.

// Usage is the token usage of an LLM call. The totals are inclusive, as in
// the OpenAI API: TotalTokens = PromptTokens + CompletionTokens, and Details
// (for example "cache_read" or "reasoning") are subsets of those totals,
// never extra addends. It encodes as the token_usage object the Prefactor
// SDKs use.
type Usage struct {
	PromptTokens     int64            `json:"prompt_tokens"`
	CompletionTokens int64            `json:"completion_tokens"`
	TotalTokens      int64            `json:"total_tokens"`
	Details          map[string]int64 `json:"details,omitempty"`
}

// normalized fills TotalTokens when it was left zero.
func (u Usage) normalized() Usage {
	if u.TotalTokens == 0 {
		u.TotalTokens = u.PromptTokens + u.CompletionTokens
	}
	return u
}

// Keys of Usage.Details. Each is a subset of PromptTokens or
// CompletionTokens, never an extra addend.
const (
	// UsageCacheRead counts input tokens read from the provider's prompt
	// cache (part of PromptTokens).
	UsageCacheRead = "cache_read"
	// UsageCacheWrite counts input tokens written to the prompt cache (part
	// of PromptTokens); UsageCacheWrite5m and UsageCacheWrite1h split it by
	// the cache entry's lifetime where the provider prices them apart.
	UsageCacheWrite   = "cache_write"
	UsageCacheWrite5m = "cache_write_5m"
	UsageCacheWrite1h = "cache_write_1h"
	// UsageReasoning counts reasoning (thinking) tokens (part of
	// CompletionTokens).
	UsageReasoning = "reasoning"
	// UsageAudioInput and UsageAudioOutput count audio tokens (parts of
	// PromptTokens and CompletionTokens).
	UsageAudioInput  = "audio_input"
	UsageAudioOutput = "audio_output"
	// UsageToolPrompt counts prompt tokens of tool results a provider adds
	// on its side (Gemini's toolUsePromptTokenCount, part of PromptTokens).
	UsageToolPrompt = "tool_prompt"
)

func (u Usage) appendJSON(b []byte, err error) ([]byte, error) {
	w := newObj(b)
	w.Int("prompt_tokens", u.PromptTokens)
	w.Int("completion_tokens", u.CompletionTokens)
	w.Int("total_tokens", u.normalized().TotalTokens)
	if len(u.Details) > 0 {
		w.Key("details")
		d := newObj(w.B)
		for _, k := range slices.Sorted(maps.Keys(u.Details)) {
			d.AnyKey(k)
			d.B = strconv.AppendInt(d.B, u.Details[k], 10)
		}
		w.B = d.End()
	}
	return w.End(), err
}

// Cost is what a call cost, as reported by a provider or gateway or filled
// in by the user. Total is the sum of the parts when left zero. Currency
// defaults to "USD".
type Cost struct {
	Prompt     float64 `json:"prompt,omitempty"`
	Completion float64 `json:"completion,omitempty"`
	Other      float64 `json:"other,omitempty"`
	Total      float64 `json:"total"`
	Currency   string  `json:"currency"`
}

func (c Cost) normalized() Cost {
	if c.Total == 0 {
		c.Total = c.Prompt + c.Completion + c.Other
	}
	if c.Currency == "" {
		c.Currency = "USD"
	}
	return c
}

func (c Cost) appendJSON(b []byte, err error) ([]byte, error) {
	n := c.normalized()
	w := newObj(b)
	if n.Prompt != 0 {
		w.Float("prompt", n.Prompt)
	}
	if n.Completion != 0 {
		w.Float("completion", n.Completion)
	}
	if n.Other != 0 {
		w.Float("other", n.Other)
	}
	w.Float("total", n.Total)
	w.String("currency", n.Currency)
	return w.End(), err
}

// Message is one chat message sent to or received from a model.
type Message struct {
	Role       string     `json:"role"`
	Content    string     `json:"content,omitempty"`
	Name       string     `json:"name,omitempty"`
	ToolCalls  []ToolCall `json:"tool_calls,omitempty"`
	ToolCallID string     `json:"tool_call_id,omitempty"`
	// Parts holds the message's content beyond plain text (images, audio,
	// files, refusals, thinking), in order; Content keeps the text.
	Parts []ContentPart `json:"parts,omitempty"`
}

// Content part types.
const (
	PartText     = "text"
	PartImage    = "image"
	PartAudio    = "audio"
	PartFile     = "file"
	PartRefusal  = "refusal"
	PartThinking = "thinking"
)

// ContentPart is one non-text part of a message: an image, audio or file
// (by URL, or inline data recorded by its size only), a refusal or the
// model's thinking.
type ContentPart struct {
	// Type is one of the Part constants, or the provider's own type name.
	Type string `json:"type"`
	// Text is a refusal's or thinking's text.
	Text string `json:"text,omitempty"`
	// MIMEType is the media type of an image, audio or file.
	MIMEType string `json:"mime_type,omitempty"`
	// URL locates the media, when it was sent by reference.
	URL string `json:"url,omitempty"`
	// Size is the length in bytes of inline data, which is not recorded.
	Size int64 `json:"size,omitempty"`
}

func (p *ContentPart) appendJSON(b []byte, err error) ([]byte, error) {
	w := newObj(b)
	w.String("type", p.Type)
	w.NonEmpty("text", p.Text)
	w.NonEmpty("mime_type", p.MIMEType)
	w.NonEmpty("url", p.URL)
	w.NonZero("size", p.Size)
	return w.End(), err
}

func (m *Message) appendJSON(b []byte, err error) ([]byte, error) {
	w := newObj(b)
	w.String("role", m.Role)
	w.NonEmpty("content", m.Content)
	w.NonEmpty("name", m.Name)
	if len(m.ToolCalls) > 0 {
		w.Key("tool_calls")
		w.B, w.err = appendSlice(w.B, w.err, m.ToolCalls)
	}
	w.NonEmpty("tool_call_id", m.ToolCallID)
	if len(m.Parts) > 0 {
		w.Key("parts")
		w.B, w.err = appendSlice(w.B, w.err, m.Parts)
	}
	if w.err != nil && err == nil {
		err = w.err
	}
	return w.End(), err
}

// ToolCall is a model's request to call a tool.
type ToolCall struct {
	ID        string          `json:"id,omitempty"`
	Name      string          `json:"name"`
	Arguments json.RawMessage `json:"arguments,omitempty"`
}

func (c *ToolCall) appendJSON(b []byte, err error) ([]byte, error) {
	w := newObj(b)
	w.NonEmpty("id", c.ID)
	w.String("name", c.Name)
	w.raw("arguments", c.Arguments)
	return w.End(), err
}

// ToolDefinition describes a tool offered to a model.
type ToolDefinition struct {
	Name        string          `json:"name"`
	Description string          `json:"description,omitempty"`
	Parameters  json.RawMessage `json:"parameters,omitempty"`
}

func (d *ToolDefinition) appendJSON(b []byte, err error) ([]byte, error) {
	w := newObj(b)
	w.String("name", d.Name)
	w.NonEmpty("description", d.Description)
	w.raw("parameters", d.Parameters)
	return w.End(), err
}

// LLMSettings are the sampling settings of a request. Nil fields were not
// set.
type LLMSettings struct {
	Temperature      *float64 `json:"temperature,omitempty"`
	TopP             *float64 `json:"top_p,omitempty"`
	MaxTokens        *int64   `json:"max_tokens,omitempty"`
	Stop             []string `json:"stop,omitempty"`
	Seed             *int64   `json:"seed,omitempty"`
	FrequencyPenalty *float64 `json:"frequency_penalty,omitempty"`
	PresencePenalty  *float64 `json:"presence_penalty,omitempty"`
	// ResponseFormat is the requested output format: "text",
	// "json_object", "json_schema" or a provider's MIME type.
	ResponseFormat string `json:"response_format,omitempty"`
	// ToolChoice is the tool choice: "auto", "none", "required" or the
	// name of the forced tool.
	ToolChoice string `json:"tool_choice,omitempty"`
	// ReasoningEffort is the requested reasoning effort or thinking budget,
	// such as "low" or "budget:2048".
	ReasoningEffort string `json:"reasoning_effort,omitempty"`
}

func (s *LLMSettings) appendJSON(b []byte, err error) ([]byte, error) {
	w := newObj(b)
	optFloat(&w, "temperature", s.Temperature)
	optFloat(&w, "top_p", s.TopP)
	optInt(&w, "max_tokens", s.MaxTokens)
	if len(s.Stop) > 0 {
		w.Key("stop")
		w.B = append(w.B, '[')
		for i, v := range s.Stop {
			if i > 0 {
				w.B = append(w.B, ',')
			}
			w.B = jsonesc.AppendString(w.B, v)
		}
		w.B = append(w.B, ']')
	}
	optInt(&w, "seed", s.Seed)
	optFloat(&w, "frequency_penalty", s.FrequencyPenalty)
	optFloat(&w, "presence_penalty", s.PresencePenalty)
	w.NonEmpty("response_format", s.ResponseFormat)
	w.NonEmpty("tool_choice", s.ToolChoice)
	w.NonEmpty("reasoning_effort", s.ReasoningEffort)
	return w.End(), err
}

// LLMRequest is the payload of an llm span: what was asked of the model.
type LLMRequest struct {
	// Operation is the GenAI operation: "chat" (the default when empty),
	// "text_completion", "generate_content" or "embeddings".
	Operation string `json:"operation,omitempty"`
	// Provider names the model provider, such as "openai" or "anthropic".
	Provider string `json:"provider,omitempty"`
	// Model is the requested model.
	Model string `json:"model,omitempty"`
	// System holds system instructions sent apart from Messages.
	System   string           `json:"system,omitempty"`
	Messages []Message        `json:"messages,omitempty"`
	Tools    []ToolDefinition `json:"tools,omitempty"`
	Settings *LLMSettings     `json:"settings,omitempty"`
	// Stream reports whether the response is streamed.
	Stream   bool           `json:"stream,omitempty"`
	Metadata map[string]any `json:"metadata,omitempty"`
}

func (r LLMRequest) appendJSON(b []byte, err error) ([]byte, error) {
	w := newObj(b)
	w.NonEmpty("operation", r.Operation)
	w.NonEmpty("provider", r.Provider)
	w.NonEmpty("model", r.Model)
	w.NonEmpty("system", r.System)
	if len(r.Messages) > 0 {
		w.Key("messages")
		w.B, w.err = appendSlice(w.B, w.err, r.Messages)
	}
	if len(r.Tools) > 0 {
		w.Key("tools")
		w.B, w.err = appendSlice(w.B, w.err, r.Tools)
	}
	if r.Settings != nil {
		w.Key("settings")
		w.B, w.err = r.Settings.appendJSON(w.B, w.err)
	}
	w.True("stream", r.Stream)
	if len(r.Metadata) > 0 {
		w.any("metadata", r.Metadata)
	}
	return w.End(), firstErr(err, w.err)
}

// LLMResponse is the result payload of an llm span: what the model returned.
// Setting it as a result also records its Usage and Cost on the span.
type LLMResponse struct {
	// ID is the provider's response id.
	ID string `json:"id,omitempty"`
	// Model is the model that answered (it may differ from the request's).
	Model string `json:"model,omitempty"`
	// Text is the generated text.
	Text string `json:"text,omitempty"`
	// Messages holds structured output messages, when Text is not enough.
	Messages     []Message  `json:"messages,omitempty"`
	ToolCalls    []ToolCall `json:"tool_calls,omitempty"`
	FinishReason string     `json:"finish_reason,omitempty"`
	// ServiceTier is the service tier that served the call, when the
	// provider reports it.
	ServiceTier string         `json:"service_tier,omitempty"`
	Usage       *Usage         `json:"token_usage,omitempty"`
	Cost        *Cost          `json:"cost,omitempty"`
	Metadata    map[string]any `json:"metadata,omitempty"`
}

func (r LLMResponse) appendJSON(b []byte, err error) ([]byte, error) {
	w := newObj(b)
	w.NonEmpty("id", r.ID)
	w.NonEmpty("model", r.Model)
	w.NonEmpty("text", r.Text)
	if len(r.Messages) > 0 {
		w.Key("messages")
		w.B, w.err = appendSlice(w.B, w.err, r.Messages)
	}
	if len(r.ToolCalls) > 0 {
		w.Key("tool_calls")
		w.B, w.err = appendSlice(w.B, w.err, r.ToolCalls)
	}
	w.NonEmpty("finish_reason", r.FinishReason)
	w.NonEmpty("service_tier", r.ServiceTier)
	if r.Usage != nil {
		w.Key("token_usage")
		w.B, w.err = r.Usage.appendJSON(w.B, w.err)
	}
	if r.Cost != nil {
		w.Key("cost")
		w.B, w.err = r.Cost.appendJSON(w.B, w.err)
	}
	if len(r.Metadata) > 0 {
		w.any("metadata", r.Metadata)
	}
	return w.End(), firstErr(err, w.err)
}

func (r LLMResponse) payloadUsage() (*Usage, *Cost) { return r.Usage, r.Cost }

// ToolInput is the payload of a tool span: which tool was called, with what.
type ToolInput struct {
	Name string `json:"tool_name"`
	// CallID is the model's tool-call id, linking this span to the
	// ToolCall in the LLM response.
	CallID string `json:"call_id,omitempty"`
	// Arguments are the tool's arguments: a json.RawMessage, a struct or a
	// map.
	Arguments any `json:"arguments,omitempty"`
}

func (t ToolInput) appendJSON(b []byte, err error) ([]byte, error) {
	w := newObj(b)
	w.String("tool_name", t.Name)
	w.NonEmpty("call_id", t.CallID)
	w.any("arguments", t.Arguments)
	return w.End(), firstErr(err, w.err)
}

// ToolOutput is the result payload of a tool span.
type ToolOutput struct {
	Output any `json:"output"`
	// IsError reports that the tool returned an error result to the model
	// (the call itself still succeeded).
	IsError bool `json:"is_error,omitempty"`
}

func (t ToolOutput) appendJSON(b []byte, err error) ([]byte, error) {
	w := newObj(b)
	w.Key("output")
	w.anyValue(t.Output)
	w.True("is_error", t.IsError)
	return w.End(), firstErr(err, w.err)
}

// AgentInput is the payload of an agent span: the root of one agent's work.
type AgentInput struct {
	Name      string `json:"agent_name,omitempty"`
	SessionID string `json:"session_id,omitempty"`
	Model     string `json:"model,omitempty"`
	Input     any    `json:"input,omitempty"`
}

func (a AgentInput) appendJSON(b []byte, err error) ([]byte, error) {
	w := newObj(b)
	w.NonEmpty("agent_name", a.Name)
	w.NonEmpty("session_id", a.SessionID)
	w.NonEmpty("model", a.Model)
	w.any("input", a.Input)
	return w.End(), firstErr(err, w.err)
}

// AgentOutput is the result payload of an agent span.
type AgentOutput struct {
	Output     any    `json:"output,omitempty"`
	StopReason string `json:"stop_reason,omitempty"`
	Turns      int    `json:"turns,omitempty"`
	Usage      *Usage `json:"token_usage,omitempty"`
	Cost       *Cost  `json:"cost,omitempty"`
}

func (a AgentOutput) appendJSON(b []byte, err error) ([]byte, error) {
	w := newObj(b)
	w.any("output", a.Output)
	w.NonEmpty("stop_reason", a.StopReason)
	w.NonZero("turns", int64(a.Turns))
	if a.Usage != nil {
		w.Key("token_usage")
		w.B, w.err = a.Usage.appendJSON(w.B, w.err)
	}
	if a.Cost != nil {
		w.Key("cost")
		w.B, w.err = a.Cost.appendJSON(w.B, w.err)
	}
	return w.End(), firstErr(err, w.err)
}

// ChainInput is the payload of a chain span: one step of a pipeline.
type ChainInput struct {
	Name   string `json:"name,omitempty"`
	Inputs any    `json:"inputs,omitempty"`
}

func (c ChainInput) appendJSON(b []byte, err error) ([]byte, error) {
	w := newObj(b)
	w.NonEmpty("name", c.Name)
	w.any("inputs", c.Inputs)
	return w.End(), firstErr(err, w.err)
}

// ChainOutput is the result payload of a chain span.
type ChainOutput struct {
	Outputs any `json:"outputs,omitempty"`
}

func (c ChainOutput) appendJSON(b []byte, err error) ([]byte, error) {
	w := newObj(b)
	w.any("outputs", c.Outputs)
	return w.End(), firstErr(err, w.err)
}

// helpers

type appenderPtr[T any] interface {
	*T
	appender
}

func appendSlice[T any, P appenderPtr[T]](b []byte, err error, s []T) ([]byte, error) {
	b = append(b, '[')
	for i := range s {
		if i > 0 {
			b = append(b, ',')
		}
		b, err = P(&s[i]).appendJSON(b, err)
	}
	return append(b, ']'), err
}

func optFloat(w *objWriter, k string, v *float64) {
	if v != nil {
		w.Float(k, *v)
	}
}

func optInt(w *objWriter, k string, v *int64) {
	if v != nil {
		w.Int(k, *v)
	}
}

func firstErr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

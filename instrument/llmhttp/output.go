package llmhttp

import (
	"bytes"
	"cmp"
	"encoding/json"

	"github.com/agenttrace/agenttrace"
)

// usage is a call's token usage as the provider reported it, already
// normalised to agenttrace's inclusive totals with subset details.
type usage struct {
	seen                       bool
	prompt, completion, tot    int64
	cacheRead, cacheWrite      int64
	cacheWrite5m, cacheWrite1h int64
	reasoning                  int64
	audioIn, audioOut          int64
	toolPrompt                 int64
	// cost is a provider-reported cost in USD (OpenRouter's usage.cost).
	cost     float64
	costSeen bool
}

func (u *usage) add(o usage) {
	if !o.seen {
		return
	}
	u.seen = true
	u.prompt += o.prompt
	u.completion += o.completion
	u.tot += o.tot
	u.cacheRead += o.cacheRead
	u.cacheWrite += o.cacheWrite
	u.cacheWrite5m += o.cacheWrite5m
	u.cacheWrite1h += o.cacheWrite1h
	u.reasoning += o.reasoning
	u.audioIn += o.audioIn
	u.audioOut += o.audioOut
	u.toolPrompt += o.toolPrompt
	if o.costSeen {
		u.cost += o.cost
		u.costSeen = true
	}
}

func (u *usage) public() *agenttrace.Usage {
	if !u.seen {
		return nil
	}
	out := &agenttrace.Usage{PromptTokens: u.prompt, CompletionTokens: u.completion, TotalTokens: u.tot}
	if out.TotalTokens == 0 {
		out.TotalTokens = u.prompt + u.completion
	}
	var d map[string]int64
	put := func(k string, v int64) {
		if v > 0 {
			if d == nil {
				d = make(map[string]int64, 2)
			}
			d[k] = v
		}
	}
	put(agenttrace.UsageCacheRead, u.cacheRead)
	put(agenttrace.UsageCacheWrite, u.cacheWrite)
	put(agenttrace.UsageCacheWrite5m, u.cacheWrite5m)
	put(agenttrace.UsageCacheWrite1h, u.cacheWrite1h)
	put(agenttrace.UsageReasoning, u.reasoning)
	put(agenttrace.UsageAudioInput, u.audioIn)
	put(agenttrace.UsageAudioOutput, u.audioOut)
	put(agenttrace.UsageToolPrompt, u.toolPrompt)
	if len(d) > 0 {
		out.Details = d
	}
	return out
}

// toolAcc is a tool call being reassembled from stream deltas.
type toolAcc struct {
	key  int64 // the provider's index of the call or of its content block
	id   string
	name string
	args []byte
}

// output accumulates what the model returned, from one JSON body or the
// events of a stream.
type output struct {
	id, model, finish, tier string
	text                    []byte
	thinking                []byte
	refusal                 []byte
	tools                   []toolAcc
	usage                   usage
	// prior is the usage of earlier hops of a continued stream (Gemini).
	prior usage
	// terminal is set when the stream's terminal event arrived (or the
	// JSON body was complete).
	terminal bool
	apiErr   *APIError
	// contentBytes counts the content bytes seen, captured or not.
	contentBytes int64
	truncated    bool
	// parseErrors counts events or bodies that could not be read.
	parseErrors int
}

// tool returns the tool call accumulator for key, adding one.
func (o *output) tool(key int64) *toolAcc {
	for i := range o.tools {
		if o.tools[i].key == key {
			return &o.tools[i]
		}
	}
	o.tools = append(o.tools, toolAcc{key: key})
	return &o.tools[len(o.tools)-1]
}

// capture appends content p to dst within the call's budget, or only
// counts it when content is not captured.
func (c *call) capture(dst []byte, p []byte) []byte {
	c.out.contentBytes += int64(len(p))
	if c.cfg.capture != CaptureFull {
		return dst
	}
	room := c.budget
	if room <= 0 {
		if len(p) > 0 {
			c.out.truncated = true
		}
		return dst
	}
	if len(p) > room {
		p = p[:room]
		c.out.truncated = true
	}
	c.budget -= len(p)
	return append(dst, p...)
}

// result builds the span's result payload.
func (c *call) result() agenttrace.LLMResponse {
	o := &c.out
	r := agenttrace.LLMResponse{ID: o.id, Model: o.model, FinishReason: o.finish, ServiceTier: o.tier}
	full := c.cfg.capture == CaptureFull
	if full {
		r.Text = string(o.text)
	}
	r.ToolCalls = c.toolCalls(full)
	r.Messages = c.parts(full)
	u := o.prior
	u.add(o.usage)
	r.Usage = u.public()
	var md metadata
	if c.attempts > 1 {
		md.set("attempts", c.attempts)
		md.set("attempt_errors", c.attemptErrs)
	}
	if c.hops > 1 {
		md.set("requests", c.hops)
	}
	if o.truncated || c.reqTruncated {
		md.set("content_truncated", true)
		stats.contentTruncated.Add(1)
	}
	if o.parseErrors > 0 {
		md.set("parse_errors", o.parseErrors)
		stats.parseErrors.Add(uint64(o.parseErrors))
	}
	if r.Usage == nil && c.status < 400 {
		md.set("usage_missing", true)
		stats.usageMissing.Add(1)
	}
	if r.Usage != nil {
		r.Cost = c.cost(&u, &md)
	}
	r.Metadata = md
	return r
}

// metadata is an LLMResponse's metadata, made on its first entry.
type metadata map[string]any

func (m *metadata) set(k string, v any) {
	if *m == nil {
		*m = make(map[string]any, 2)
	}
	(*m)[k] = v
}

// toolCalls returns the tool calls of the response, with their arguments
// when content is captured in full: JSON as it is, or, cut by the cap or
// by the stream, as a string.
func (c *call) toolCalls(full bool) []agenttrace.ToolCall {
	if len(c.out.tools) == 0 {
		return nil
	}
	calls := make([]agenttrace.ToolCall, len(c.out.tools))
	for i, t := range c.out.tools {
		calls[i] = agenttrace.ToolCall{ID: t.id, Name: t.name}
		if full && len(t.args) > 0 {
			if json.Valid(t.args) {
				calls[i].Arguments = json.RawMessage(t.args)
			} else {
				b, _ := json.Marshal(string(t.args))
				calls[i].Arguments = b
			}
		}
	}
	return calls
}

// parts returns the response's content beyond its text as one assistant
// message of typed parts (thinking, refusal), with their text when
// captured in full and else their sizes (the text's too); nil if there
// are none or capture is off.
func (c *call) parts(full bool) []agenttrace.Message {
	o := &c.out
	if c.cfg.capture == CaptureOff || len(o.thinking) == 0 && len(o.refusal) == 0 && o.contentBytes == 0 {
		return nil
	}
	// The message and its parts in one allocation.
	mem := &struct {
		msg   [1]agenttrace.Message
		parts [3]agenttrace.ContentPart
	}{}
	msg := agenttrace.Message{Role: "assistant", Parts: mem.parts[:0]}
	if len(o.thinking) > 0 || (!full && c.thinkingBytes > 0) {
		p := agenttrace.ContentPart{Type: agenttrace.PartThinking, Text: string(o.thinking)}
		if !full {
			p.Size = c.thinkingBytes
		}
		msg.Parts = append(msg.Parts, p)
	}
	if len(o.refusal) > 0 || (!full && c.refusalBytes > 0) {
		p := agenttrace.ContentPart{Type: agenttrace.PartRefusal, Text: string(o.refusal)}
		if !full {
			p.Size = c.refusalBytes
		}
		msg.Parts = append(msg.Parts, p)
	}
	if !full && c.textBytes > 0 {
		msg.Parts = append(msg.Parts, agenttrace.ContentPart{Type: agenttrace.PartText, Size: c.textBytes})
	}
	if len(msg.Parts) == 0 {
		return nil
	}
	mem.msg[0] = msg
	return mem.msg[:]
}

// cost is the call's cost: the provider's when it reported one (so
// marked), else the price table's for the response's model (the request's
// if the response named none); nil, marked and counted, for a model the
// table does not know.
func (c *call) cost(u *usage, md *metadata) *agenttrace.Cost {
	if u.costSeen {
		md.set("cost_source", "provider")
		return &agenttrace.Cost{Total: u.cost, Currency: "USD"}
	}
	model := cmp.Or(c.out.model, c.req.Model)
	if cost, ok := c.cfg.prices.cost(c.route.provider, model, *u, c.started); ok {
		return &cost
	}
	md.set("cost_unknown", true)
	stats.costUnknown.Add(1)
	return nil
}

// unescaped returns the JSON string body raw unescaped, in c's scratch
// buffer when it has escapes (valid until the next call).
func (c *call) unescaped(raw []byte) []byte {
	if bytes.IndexByte(raw, '\\') < 0 {
		return raw
	}
	c.scratch = unescape(c.scratch[:0], raw)
	return c.scratch
}

// captureRaw is capture of a still-escaped JSON string body.
func (c *call) captureRaw(dst, raw []byte) []byte { return c.capture(dst, c.unescaped(raw)) }

func (c *call) appendText(p []byte) {
	c.textBytes += int64(len(p))
	c.out.text = c.capture(c.out.text, p)
}

func (c *call) appendTextRaw(raw []byte) { c.appendText(c.unescaped(raw)) }

func (c *call) appendThinking(p []byte) {
	c.thinkingBytes += int64(len(p))
	c.out.thinking = c.capture(c.out.thinking, p)
}

func (c *call) appendThinkingRaw(raw []byte) { c.appendThinking(c.unescaped(raw)) }

func (c *call) appendRefusal(p []byte) {
	c.refusalBytes += int64(len(p))
	c.out.refusal = c.capture(c.out.refusal, p)
}

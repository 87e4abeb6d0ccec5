package otelbridge

import (
	"encoding/json"
	"strings"

	"github.com/agenttrace/agenttrace"
)

// The GenAI message format (gen-ai-input-messages.json and
// gen-ai-output-messages.json): a message is a role and a list of parts.

type otelMessage struct {
	Role         string     `json:"role"`
	Name         string     `json:"name,omitempty"`
	Parts        []otelPart `json:"parts"`
	FinishReason string     `json:"finish_reason,omitempty"`
}

type otelPart struct {
	Type      string          `json:"type"`
	Content   string          `json:"content,omitempty"`
	ID        string          `json:"id,omitempty"`
	Name      string          `json:"name,omitempty"`
	Arguments json.RawMessage `json:"arguments,omitempty"`
	Response  json.RawMessage `json:"response,omitempty"`
}

// inputMessages converts agenttrace messages to GenAI input messages: text
// content as a text part, tool calls as tool_call parts, and a message
// answering a tool call (ToolCallID set) as a tool_call_response part.
func inputMessages(msgs []agenttrace.Message) []otelMessage {
	out := make([]otelMessage, 0, len(msgs))
	for i := range msgs {
		out = append(out, toOTelMessage(&msgs[i]))
	}
	return out
}

func toOTelMessage(m *agenttrace.Message) otelMessage {
	om := otelMessage{Role: m.Role, Name: m.Name, Parts: []otelPart{}}
	switch {
	case m.ToolCallID != "":
		om.Parts = append(om.Parts, otelPart{Type: "tool_call_response", ID: m.ToolCallID, Response: jsonText(m.Content)})
	case m.Content != "":
		om.Parts = append(om.Parts, otelPart{Type: "text", Content: m.Content})
	}
	for _, tc := range m.ToolCalls {
		om.Parts = append(om.Parts, otelPart{Type: "tool_call", ID: tc.ID, Name: tc.Name, Arguments: tc.Arguments})
	}
	return om
}

// jsonText returns s as a JSON string value.
func jsonText(s string) json.RawMessage { return marshal(s) }

// outputMessages converts an LLM response to GenAI output messages: its
// Messages if it has any, else one assistant message from Text and
// ToolCalls. The last message carries the finish reason.
func outputMessages(r *llmResponseContent) []otelMessage {
	var out []otelMessage
	if len(r.Messages) > 0 {
		out = inputMessages(r.Messages)
	} else if r.Text != "" || len(r.ToolCalls) > 0 {
		out = []otelMessage{toOTelMessage(&agenttrace.Message{Role: "assistant", Content: r.Text, ToolCalls: r.ToolCalls})}
	}
	if len(out) > 0 {
		out[len(out)-1].FinishReason = otelFinishReason(r.FinishReason, len(r.ToolCalls) > 0)
	}
	return out
}

// otelFinishReason maps a provider's finish reason onto the GenAI output
// message values: stop, length, content_filter, tool_call or error. The
// provider's own value is kept in gen_ai.response.finish_reasons.
func otelFinishReason(r string, toolCalls bool) string {
	switch r {
	case "stop", "end_turn", "stop_sequence", "STOP":
		return "stop"
	case "length", "max_tokens", "MAX_TOKENS":
		return "length"
	case "content_filter", "SAFETY", "refusal":
		return "content_filter"
	case "tool_call", "tool_calls", "tool_use", "function_call":
		return "tool_call"
	case "error":
		return "error"
	case "":
		if toolCalls {
			return "tool_call"
		}
		return "stop"
	}
	return r
}

// fromOTelMessages converts GenAI messages back: text parts join into
// Content, tool_call parts become ToolCalls, a tool_call_response part
// becomes ToolCallID and Content (its response, unquoted if a JSON string).
func fromOTelMessages(msgs []otelMessage) []agenttrace.Message {
	out := make([]agenttrace.Message, 0, len(msgs))
	for _, om := range msgs {
		m := agenttrace.Message{Role: om.Role, Name: om.Name}
		var text []string
		for _, p := range om.Parts {
			switch p.Type {
			case "text", "reasoning":
				text = append(text, p.Content)
			case "tool_call":
				m.ToolCalls = append(m.ToolCalls, agenttrace.ToolCall{ID: p.ID, Name: p.Name, Arguments: p.Arguments})
			case "tool_call_response":
				m.ToolCallID = p.ID
				text = append(text, unquote(p.Response))
			}
		}
		m.Content = strings.Join(text, "")
		out = append(out, m)
	}
	return out
}

// unquote returns the string a JSON string holds, or the JSON text itself.
func unquote(b json.RawMessage) string {
	var s string
	if json.Unmarshal(b, &s) == nil {
		return s
	}
	return string(b)
}

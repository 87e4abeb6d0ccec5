package llmhttp

import (
	"encoding/json"
	"os"
	"unicode/utf8"

	"github.com/agenttrace/agenttrace"
)

// ResolveCapture returns m, or for CaptureDefault the mode
// OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT asks for
// (CaptureMetadata when it is unset), as the transport does.
func ResolveCapture(m CaptureMode) CaptureMode {
	switch m {
	case CaptureOff, CaptureMetadata, CaptureFull:
		return m
	}
	return captureFromEnv(os.Getenv(EnvCaptureContent))
}

// Content captures the content of one call (one span) by a capture mode
// and within a byte budget. It is how the agent framework integrations
// (instrument/eino, instrument/langchaingo, instrument/mcp), which record
// what the framework hands them rather than what goes over the wire,
// follow the same modes and per-call cap as the transport; the tracer's
// Redactor then sees the payloads as it sees every payload. A Content is
// not safe for concurrent use.
type Content struct {
	mode      CaptureMode
	left      int
	truncated bool
	counted   bool
}

// NewContent returns the capture of one call: mode (CaptureDefault is
// resolved with ResolveCapture) within maxBytes of content (<= 0:
// DefaultMaxContentBytes).
func NewContent(mode CaptureMode, maxBytes int) *Content {
	if maxBytes <= 0 {
		maxBytes = DefaultMaxContentBytes
	}
	return &Content{mode: ResolveCapture(mode), left: maxBytes}
}

// Mode returns the capture mode (never CaptureDefault).
func (c *Content) Mode() CaptureMode { return c.mode }

// Full reports whether content (text, arguments, results) is captured.
func (c *Content) Full() bool { return c.mode == CaptureFull }

// Structure reports whether the structure of messages (roles, tool call
// names and ids, part types and sizes) is recorded: CaptureMetadata and
// CaptureFull.
func (c *Content) Structure() bool { return c.mode == CaptureMetadata || c.mode == CaptureFull }

// Text returns s when content is captured, cut at a UTF-8 boundary to what
// is left of the budget; "" otherwise.
func (c *Content) Text(s string) string {
	if c.mode != CaptureFull || s == "" {
		return ""
	}
	if len(s) > c.left {
		n := max(c.left, 0)
		for n > 0 && !utf8.RuneStart(s[n]) {
			n--
		}
		s = s[:n]
		c.truncated = true
	}
	c.left -= len(s)
	return s
}

// JSON returns s, a JSON text such as a tool call's arguments, as raw JSON
// when content is captured and s fits the budget; a cut s, or one that is
// not valid JSON, is kept as a JSON string. It returns nil when content is
// not captured or s is empty.
func (c *Content) JSON(s string) json.RawMessage {
	if c.mode != CaptureFull || s == "" {
		return nil
	}
	t := c.Text(s)
	if len(t) == len(s) && json.Valid([]byte(s)) {
		return json.RawMessage(s)
	}
	q, _ := json.Marshal(t)
	return q
}

// Value returns v encoded as JSON when content is captured and the
// encoding fits the budget, and the encoding cut to the budget, as a
// string, when it does not. It returns nil when content is not captured or
// v is nil, and v itself when it cannot be encoded (the tracer then marks
// it).
func (c *Content) Value(v any) any {
	if c.mode != CaptureFull || v == nil {
		return nil
	}
	if s, ok := v.(string); ok {
		return c.Text(s)
	}
	b, err := json.Marshal(v)
	if err != nil {
		return v
	}
	t := c.Text(string(b))
	if len(t) == len(b) {
		return json.RawMessage(b)
	}
	return t
}

// MessageText records s as text of m: appended to its content (CaptureFull,
// within the budget), as a text part with its size (CaptureMetadata), or
// not at all (CaptureOff).
func (c *Content) MessageText(m *agenttrace.Message, s string) {
	if s == "" {
		return
	}
	switch c.mode {
	case CaptureFull:
		t := c.Text(s)
		if m.Content != "" && t != "" {
			m.Content += "\n"
		}
		m.Content += t
	case CaptureMetadata:
		m.Parts = append(m.Parts, agenttrace.ContentPart{Type: agenttrace.PartText, Size: int64(len(s))})
	}
}

// Part records p in m's parts: whole (CaptureFull; its text within the
// budget), with its text and URL replaced by their size (CaptureMetadata),
// or not at all (CaptureOff).
func (c *Content) Part(m *agenttrace.Message, p agenttrace.ContentPart) {
	switch c.mode {
	case CaptureFull:
		p.Text = c.Text(p.Text)
	case CaptureMetadata:
		if p.Size == 0 {
			p.Size = int64(len(p.Text) + len(p.URL))
		}
		p.Text, p.URL = "", ""
	default:
		return
	}
	m.Parts = append(m.Parts, p)
}

// Truncated reports whether something captured was cut to the budget.
func (c *Content) Truncated() bool { return c.truncated }

// Mark returns md with "content_truncated": true when something was cut
// (md is made if nil), and counts the call in ReadStats' ContentTruncated
// (once per Content).
func (c *Content) Mark(md map[string]any) map[string]any {
	if !c.truncated {
		return md
	}
	if !c.counted {
		c.counted = true
		stats.contentTruncated.Add(1)
	}
	if md == nil {
		md = map[string]any{}
	}
	md["content_truncated"] = true
	return md
}

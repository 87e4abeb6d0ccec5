package llmhttp

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"

	"github.com/agenttrace/agenttrace"
)

// parsed is what the request body says.
type parsed struct {
	req agenttrace.LLMRequest
	// rewritten is the body to send instead, when an option changed it.
	rewritten []byte
	// contToken is a Gemini continuation token: the request continues an
	// earlier stream.
	contToken string
	// contentUsed is the content budget the request's capture used.
	contentUsed int
	truncated   bool
}

// reqCapture captures request content by the mode, within the budget: the
// Content the framework integrations use, plus what scanning a request
// body needs.
type reqCapture struct {
	Content
	budget  int
	scratch []byte
}

// used returns how much of the budget the captured content took.
func (rc *reqCapture) used() int { return rc.budget - rc.left }

// raw is text for JSON arguments: a cut value is kept as a JSON string.
func (rc *reqCapture) raw(b json.RawMessage) json.RawMessage {
	if rc.mode != CaptureFull || len(b) == 0 {
		return nil
	}
	s := rc.Text(string(b))
	if len(s) == len(b) {
		return json.RawMessage(s)
	}
	q, _ := json.Marshal(s)
	return q
}

func (rc *reqCapture) part(m *agenttrace.Message, p agenttrace.ContentPart) {
	if rc.mode == CaptureOff {
		return
	}
	if rc.mode != CaptureFull {
		if p.Text != "" {
			p.Size = int64(len(p.Text))
		}
		p.Text, p.URL = "", ""
	} else {
		p.Text = rc.Text(p.Text)
		if strings.HasPrefix(p.URL, "data:") {
			// Inline data: its size, not its bytes.
			p.Size = int64(len(p.URL))
			p.URL = ""
		}
	}
	m.Parts = append(m.Parts, p)
}

func parseRequest(cfg *config, rt route, body []byte) parsed {
	p := parsed{req: agenttrace.LLMRequest{Operation: rt.api.operation(), Provider: rt.provider, Model: rt.model}}
	if cfg.provider != "" {
		p.req.Provider = cfg.provider
	}
	if len(body) == 0 {
		return p
	}
	rc := &reqCapture{Content: Content{mode: cfg.capture, left: cfg.maxContent}, budget: cfg.maxContent}
	var ok bool
	switch rt.api {
	case apiChat:
		ok = parseChat(&p, rc, body, cfg.includeUsage)
	case apiResponses:
		ok = parseResponses(&p, rc, body)
	case apiAnthropic:
		ok = parseAnthropic(&p, rc, body)
	case apiGemini:
		ok = parseGemini(&p, rc, body)
	}
	if !ok {
		stats.requestUnreadable.Add(1)
		p.req.Metadata = map[string]any{"request_unreadable": true}
	}
	if cfg.capture == CaptureOff {
		p.req.Messages, p.req.System = nil, ""
	}
	if cfg.capture != CaptureFull {
		// Tool definitions are content too (gen_ai.tool.definitions is
		// opt-in): only their names are metadata.
		for i := range p.req.Tools {
			p.req.Tools[i].Description, p.req.Tools[i].Parameters = "", nil
		}
	}
	p.contentUsed, p.truncated = rc.used(), rc.truncated
	return p
}

// strLen returns the length of the JSON string b once unescaped, in the
// capture's scratch buffer (no allocation per string).
func (rc *reqCapture) strLen(b json.RawMessage) (int, bool) {
	if n := len(b); n >= 2 && b[0] == '"' && b[n-1] == '"' && bytes.IndexByte(b[1:n-1], '\\') < 0 {
		return n - 2, true
	}
	sc := scanner{b: b}
	raw, ok := sc.rawString()
	if !ok || sc.i != len(b) {
		return 0, false
	}
	rc.scratch = unescape(rc.scratch[:0], raw)
	return len(rc.scratch), true
}

// jsonString returns b as a string if it is a JSON string.
func jsonString(b json.RawMessage) (string, bool) {
	if len(b) == 0 || b[0] != '"' {
		return "", false
	}
	if n := len(b); n >= 2 && b[n-1] == '"' && bytes.IndexByte(b[1:n-1], '\\') < 0 && bytes.IndexByte(b[1:n-1], '"') < 0 {
		return string(b[1 : n-1]), true // no escapes: the common case
	}
	// Escapes: unescaped by the scanner, which refuses what encoding/json
	// refuses.
	sc := scanner{b: b}
	s := sc.str()
	if sc.bad || sc.i != len(b) {
		return "", false
	}
	return s, true
}

func stopList(b json.RawMessage) []string {
	if len(b) == 0 || string(b) == "null" {
		return nil
	}
	if s, ok := jsonString(b); ok {
		return []string{s}
	}
	var l []string
	_ = json.Unmarshal(b, &l)
	return l
}

// settings returns a copy of s, or nil (and no allocation) when nothing
// was set.
func settings(s agenttrace.LLMSettings) *agenttrace.LLMSettings {
	if s.Temperature == nil && s.TopP == nil && s.MaxTokens == nil && len(s.Stop) == 0 && s.Seed == nil &&
		s.FrequencyPenalty == nil && s.PresencePenalty == nil && s.ResponseFormat == "" && s.ToolChoice == "" &&
		s.ReasoningEffort == "" {
		return nil
	}
	c := s
	return &c
}

// toolChoice reads a tool choice: a string, or an object naming a tool or a
// mode.
func toolChoice(b json.RawMessage) string {
	if len(b) == 0 {
		return ""
	}
	if s, ok := jsonString(b); ok {
		return s
	}
	var o struct {
		Type     string `json:"type"`
		Name     string `json:"name"`
		Function struct {
			Name string `json:"name"`
		} `json:"function"`
	}
	_ = json.Unmarshal(b, &o)
	switch {
	case o.Function.Name != "":
		return o.Function.Name
	case o.Name != "":
		return o.Name
	}
	return o.Type
}

// --- OpenAI Chat Completions ---

type chatPart struct {
	Type     string `json:"type"`
	Text     string `json:"text"`
	Refusal  string `json:"refusal"`
	ImageURL struct {
		URL string `json:"url"`
	} `json:"image_url"`
	InputAudio struct {
		Data   string `json:"data"`
		Format string `json:"format"`
	} `json:"input_audio"`
	File struct {
		FileData string `json:"file_data"`
		FileID   string `json:"file_id"`
		Filename string `json:"filename"`
	} `json:"file"`
}

type chatToolCall struct {
	ID       string `json:"id"`
	Function struct {
		Name      string          `json:"name"`
		Arguments json.RawMessage `json:"arguments"`
	} `json:"function"`
}

type chatMessage struct {
	Role       string          `json:"role"`
	Content    json.RawMessage `json:"content"`
	Name       string          `json:"name"`
	Refusal    string          `json:"refusal"`
	ToolCalls  []chatToolCall  `json:"tool_calls"`
	ToolCallID string          `json:"tool_call_id"`
}

// chatTool is a tool definition of a Chat Completions request.
type chatTool struct {
	Function struct {
		Name string `json:"name"`
		// Description is the raw JSON string (or null), unescaped only
		// when content is captured.
		Description json.RawMessage `json:"description"`
		Parameters  json.RawMessage `json:"parameters"`
	} `json:"function"`
}

type chatRequest struct {
	Model               string          `json:"model"`
	Messages            []chatMessage   `json:"messages"`
	Tools               []chatTool      `json:"tools"`
	Temperature         *float64        `json:"temperature"`
	TopP                *float64        `json:"top_p"`
	MaxTokens           *int64          `json:"max_tokens"`
	MaxCompletionTokens *int64          `json:"max_completion_tokens"`
	Stop                json.RawMessage `json:"stop"`
	Seed                *int64          `json:"seed"`
	FrequencyPenalty    *float64        `json:"frequency_penalty"`
	PresencePenalty     *float64        `json:"presence_penalty"`
	ResponseFormat      struct {
		Type string `json:"type"`
	} `json:"response_format"`
	ToolChoice      json.RawMessage `json:"tool_choice"`
	ReasoningEffort string          `json:"reasoning_effort"`
	Stream          bool            `json:"stream"`
	// includeUsageSet: stream_options.include_usage is there, not null.
	includeUsageSet bool
	ServiceTier     string `json:"service_tier"`
}

// scanChatRequest reads a Chat Completions request with the in-place
// scanner (no reflection; strings without escapes and raw values alias
// body); it reports false for a body that is not a valid JSON object of
// the expected shape.
func scanChatRequest(body []byte) (chatRequest, bool) {
	var r chatRequest
	s := scanner{b: body}
	ok := s.object(func(k []byte) {
		switch string(k) {
		case "model":
			r.Model = s.str()
		case "messages":
			if s.isNull() {
				return
			}
			s.array(func(int) {
				r.Messages = append(r.Messages, chatMessage{})
				m := &r.Messages[len(r.Messages)-1]
				s.object(func(k []byte) {
					switch string(k) {
					case "role":
						m.Role = s.role()
					case "content":
						m.Content = s.raw()
					case "name":
						m.Name = s.str()
					case "refusal":
						m.Refusal = s.str()
					case "tool_call_id":
						m.ToolCallID = s.str()
					case "tool_calls":
						scanToolCalls(&s, &m.ToolCalls)
					default:
						s.skip()
					}
				})
			})
		case "tools":
			scanTools(&s, &r.Tools)
		case "temperature":
			r.Temperature = s.floatPtr()
		case "top_p":
			r.TopP = s.floatPtr()
		case "frequency_penalty":
			r.FrequencyPenalty = s.floatPtr()
		case "presence_penalty":
			r.PresencePenalty = s.floatPtr()
		case "max_tokens":
			r.MaxTokens = s.intPtr()
		case "max_completion_tokens":
			r.MaxCompletionTokens = s.intPtr()
		case "seed":
			r.Seed = s.intPtr()
		case "stop":
			r.Stop = s.raw()
		case "tool_choice":
			r.ToolChoice = s.raw()
		case "response_format":
			if s.isNull() {
				return
			}
			s.object(func(k []byte) {
				if string(k) == "type" {
					r.ResponseFormat.Type = s.str()
					return
				}
				s.skip()
			})
		case "reasoning_effort":
			r.ReasoningEffort = s.str()
		case "stream":
			r.Stream = s.boolean()
		case "stream_options":
			if s.isNull() {
				return
			}
			s.object(func(k []byte) {
				if string(k) != "include_usage" {
					s.skip()
				} else if !s.isNull() {
					r.includeUsageSet = true
					s.boolean()
				}
			})
		case "service_tier":
			r.ServiceTier = s.str()
		default:
			s.skip()
		}
	})
	s.ws()
	return r, ok && !s.bad && s.i == len(s.b)
}

// scanToolCalls reads an assistant message's tool_calls (null or an array
// of {id, function: {name, arguments}}) in place.
func scanToolCalls(s *scanner, out *[]chatToolCall) {
	if s.isNull() {
		return
	}
	s.array(func(int) {
		*out = append(*out, chatToolCall{})
		tc := &(*out)[len(*out)-1]
		s.object(func(k []byte) {
			switch string(k) {
			case "id":
				tc.ID = s.str()
			case "function":
				if s.isNull() {
					return
				}
				s.object(func(k []byte) {
					switch string(k) {
					case "name":
						tc.Function.Name = s.str()
					case "arguments":
						tc.Function.Arguments = s.raw()
					default:
						s.skip()
					}
				})
			default:
				s.skip()
			}
		})
	})
}

// scanTools reads a request's tools (null or an array of {function: {name,
// description, parameters}}) in place: the description and parameters
// alias the body.
func scanTools(s *scanner, out *[]chatTool) {
	if s.isNull() {
		return
	}
	s.array(func(int) {
		*out = append(*out, chatTool{})
		t := &(*out)[len(*out)-1]
		s.object(func(k []byte) {
			if string(k) != "function" {
				s.skip()
				return
			}
			if s.isNull() {
				return
			}
			s.object(func(k []byte) {
				switch string(k) {
				case "name":
					t.Function.Name = s.str()
				case "description":
					if c := s.peek(); c != '"' && c != 'n' {
						s.fail() // as encoding/json refuses a non-string
						return
					}
					t.Function.Description = s.raw()
				case "parameters":
					t.Function.Parameters = s.raw()
				default:
					s.skip()
				}
			})
		})
	})
}

func parseChat(p *parsed, rc *reqCapture, body []byte, includeUsage bool) bool {
	r, ok := scanChatRequest(body)
	if !ok {
		return false
	}
	if r.Model != "" {
		p.req.Model = r.Model
	}
	p.req.Stream = r.Stream
	for _, m := range r.Messages {
		msg := agenttrace.Message{Role: m.Role, Name: m.Name, ToolCallID: m.ToolCallID}
		if rc.mode != CaptureFull && len(m.Content) > 0 && m.Content[0] == '"' {
			// Metadata: the text's size, unescaped without keeping it.
			if n, ok := rc.strLen(m.Content); ok && n > 0 && rc.mode == CaptureMetadata {
				msg.Parts = append(msg.Parts, agenttrace.ContentPart{Type: agenttrace.PartText, Size: int64(n)})
			}
		} else if s, ok := jsonString(m.Content); ok {
			rc.MessageText(&msg, s)
		} else if len(m.Content) > 0 && m.Content[0] == '[' {
			var parts []chatPart
			_ = json.Unmarshal(m.Content, &parts)
			for _, cp := range parts {
				switch cp.Type {
				case "text":
					rc.MessageText(&msg, cp.Text)
				case "image_url":
					rc.part(&msg, agenttrace.ContentPart{Type: agenttrace.PartImage, URL: cp.ImageURL.URL})
				case "input_audio":
					rc.part(&msg, agenttrace.ContentPart{Type: agenttrace.PartAudio, MIMEType: "audio/" + cp.InputAudio.Format, Size: int64(len(cp.InputAudio.Data))})
				case "file":
					rc.part(&msg, agenttrace.ContentPart{Type: agenttrace.PartFile, URL: cp.File.FileID, Size: int64(len(cp.File.FileData))})
				case "refusal":
					rc.part(&msg, agenttrace.ContentPart{Type: agenttrace.PartRefusal, Text: cp.Refusal})
				default:
					rc.part(&msg, agenttrace.ContentPart{Type: cp.Type})
				}
			}
		}
		if m.Refusal != "" {
			rc.part(&msg, agenttrace.ContentPart{Type: agenttrace.PartRefusal, Text: m.Refusal})
		}
		for _, tc := range m.ToolCalls {
			call := agenttrace.ToolCall{ID: tc.ID, Name: tc.Function.Name}
			if rc.mode == CaptureFull {
				args := tc.Function.Arguments
				if s, ok := jsonString(args); ok {
					args = json.RawMessage(s)
				}
				call.Arguments = validOrString(rc.raw(args))
			}
			msg.ToolCalls = append(msg.ToolCalls, call)
		}
		p.req.Messages = append(p.req.Messages, msg)
	}
	if len(r.Tools) > 0 {
		p.req.Tools = make([]agenttrace.ToolDefinition, 0, len(r.Tools))
	}
	for _, t := range r.Tools {
		def := agenttrace.ToolDefinition{Name: t.Function.Name}
		if rc.mode == CaptureFull {
			// Tool definitions are content: unescaped only when kept.
			def.Description, _ = jsonString(t.Function.Description)
			// The scanner does not check inside strings: a schema that is
			// not valid JSON is kept as a string.
			def.Parameters = validOrString(t.Function.Parameters)
		}
		p.req.Tools = append(p.req.Tools, def)
	}
	st := agenttrace.LLMSettings{
		Temperature: r.Temperature, TopP: r.TopP, MaxTokens: r.MaxTokens, Stop: stopList(r.Stop), Seed: r.Seed,
		FrequencyPenalty: r.FrequencyPenalty, PresencePenalty: r.PresencePenalty, ResponseFormat: r.ResponseFormat.Type,
		ToolChoice: toolChoice(r.ToolChoice), ReasoningEffort: r.ReasoningEffort,
	}
	if st.MaxTokens == nil {
		st.MaxTokens = r.MaxCompletionTokens
	}
	p.req.Settings = settings(st)
	if r.ServiceTier != "" {
		p.req.Metadata = map[string]any{"service_tier": r.ServiceTier}
	}
	if includeUsage && r.Stream && !r.includeUsageSet {
		p.rewritten = setIncludeUsage(body)
	}
	return true
}

// setIncludeUsage returns body with stream_options.include_usage = true,
// the other members untouched.
func setIncludeUsage(body []byte) []byte {
	var m map[string]json.RawMessage
	if json.Unmarshal(body, &m) != nil {
		return nil
	}
	so := map[string]json.RawMessage{}
	if raw, ok := m["stream_options"]; ok && !bytes.Equal(raw, []byte("null")) {
		if json.Unmarshal(raw, &so) != nil {
			return nil
		}
	}
	so["include_usage"] = json.RawMessage("true")
	b, err := json.Marshal(so)
	if err != nil {
		return nil
	}
	m["stream_options"] = b
	out, err := json.Marshal(m)
	if err != nil {
		return nil
	}
	return out
}

// validOrString keeps valid JSON and turns anything else into a JSON
// string, so a payload never holds invalid JSON.
func validOrString(b json.RawMessage) json.RawMessage {
	if len(b) == 0 || json.Valid(b) {
		return b
	}
	q, _ := json.Marshal(string(b))
	return q
}

// --- OpenAI Responses ---

type responsesRequest struct {
	Model        string          `json:"model"`
	Instructions string          `json:"instructions"`
	Input        json.RawMessage `json:"input"`
	Tools        []struct {
		Type        string          `json:"type"`
		Name        string          `json:"name"`
		Description string          `json:"description"`
		Parameters  json.RawMessage `json:"parameters"`
	} `json:"tools"`
	Temperature     *float64 `json:"temperature"`
	TopP            *float64 `json:"top_p"`
	MaxOutputTokens *int64   `json:"max_output_tokens"`
	Reasoning       struct {
		Effort string `json:"effort"`
	} `json:"reasoning"`
	Text struct {
		Format struct {
			Type string `json:"type"`
		} `json:"format"`
	} `json:"text"`
	ToolChoice         json.RawMessage `json:"tool_choice"`
	Stream             bool            `json:"stream"`
	PreviousResponseID string          `json:"previous_response_id"`
}

type responsesItem struct {
	Type      string          `json:"type"`
	Role      string          `json:"role"`
	Content   json.RawMessage `json:"content"`
	CallID    string          `json:"call_id"`
	Name      string          `json:"name"`
	Arguments string          `json:"arguments"`
	Output    json.RawMessage `json:"output"`
}

func parseResponses(p *parsed, rc *reqCapture, body []byte) bool {
	var r responsesRequest
	if json.Unmarshal(body, &r) != nil {
		return false
	}
	p.req.Model, p.req.Stream = r.Model, r.Stream
	p.req.System = rc.Text(r.Instructions)
	if rc.mode == CaptureMetadata && r.Instructions != "" {
		p.req.Messages = append(p.req.Messages, agenttrace.Message{Role: "system", Parts: []agenttrace.ContentPart{{Type: agenttrace.PartText, Size: int64(len(r.Instructions))}}})
	}
	if s, ok := jsonString(r.Input); ok {
		m := agenttrace.Message{Role: "user"}
		rc.MessageText(&m, s)
		p.req.Messages = append(p.req.Messages, m)
	} else if len(r.Input) > 0 {
		var items []responsesItem
		_ = json.Unmarshal(r.Input, &items)
		for _, it := range items {
			switch it.Type {
			case "function_call":
				p.req.Messages = append(p.req.Messages, agenttrace.Message{Role: "assistant", ToolCalls: []agenttrace.ToolCall{{ID: it.CallID, Name: it.Name, Arguments: validOrString(rc.raw(json.RawMessage(it.Arguments)))}}})
			case "function_call_output":
				m := agenttrace.Message{Role: "tool", ToolCallID: it.CallID}
				if s, ok := jsonString(it.Output); ok {
					rc.MessageText(&m, s)
				} else {
					rc.MessageText(&m, string(it.Output))
				}
				p.req.Messages = append(p.req.Messages, m)
			case "message", "":
				m := agenttrace.Message{Role: it.Role}
				if s, ok := jsonString(it.Content); ok {
					rc.MessageText(&m, s)
				} else {
					var parts []struct {
						Type     string `json:"type"`
						Text     string `json:"text"`
						Refusal  string `json:"refusal"`
						ImageURL string `json:"image_url"`
						FileID   string `json:"file_id"`
						FileData string `json:"file_data"`
					}
					_ = json.Unmarshal(it.Content, &parts)
					for _, cp := range parts {
						switch cp.Type {
						case "input_text", "output_text", "text":
							rc.MessageText(&m, cp.Text)
						case "input_image":
							rc.part(&m, agenttrace.ContentPart{Type: agenttrace.PartImage, URL: orDefault(cp.ImageURL, cp.FileID)})
						case "input_file":
							rc.part(&m, agenttrace.ContentPart{Type: agenttrace.PartFile, URL: cp.FileID, Size: int64(len(cp.FileData))})
						case "refusal":
							rc.part(&m, agenttrace.ContentPart{Type: agenttrace.PartRefusal, Text: cp.Refusal})
						default:
							rc.part(&m, agenttrace.ContentPart{Type: cp.Type})
						}
					}
				}
				p.req.Messages = append(p.req.Messages, m)
			default:
				p.req.Messages = append(p.req.Messages, agenttrace.Message{Role: "item", Parts: []agenttrace.ContentPart{{Type: it.Type}}})
			}
		}
	}
	for _, t := range r.Tools {
		name := t.Name
		if name == "" {
			name = t.Type // a built-in tool: web_search, file_search, ...
		}
		p.req.Tools = append(p.req.Tools, agenttrace.ToolDefinition{Name: name, Description: t.Description, Parameters: t.Parameters})
	}
	p.req.Settings = settings(agenttrace.LLMSettings{
		Temperature: r.Temperature, TopP: r.TopP, MaxTokens: r.MaxOutputTokens, ResponseFormat: r.Text.Format.Type,
		ToolChoice: toolChoice(r.ToolChoice), ReasoningEffort: r.Reasoning.Effort,
	})
	if r.PreviousResponseID != "" {
		p.req.Metadata = map[string]any{"previous_response_id": r.PreviousResponseID}
	}
	return true
}

// --- Anthropic Messages ---

type anthropicBlock struct {
	Type      string          `json:"type"`
	Text      string          `json:"text"`
	Thinking  string          `json:"thinking"`
	ID        string          `json:"id"`
	Name      string          `json:"name"`
	Input     json.RawMessage `json:"input"`
	ToolUseID string          `json:"tool_use_id"`
	Content   json.RawMessage `json:"content"`
	IsError   bool            `json:"is_error"`
	Source    struct {
		Type      string `json:"type"`
		MediaType string `json:"media_type"`
		Data      string `json:"data"`
		URL       string `json:"url"`
	} `json:"source"`
}

type anthropicRequest struct {
	Model    string          `json:"model"`
	System   json.RawMessage `json:"system"`
	Messages []struct {
		Role    string          `json:"role"`
		Content json.RawMessage `json:"content"`
	} `json:"messages"`
	Tools []struct {
		Type        string          `json:"type"`
		Name        string          `json:"name"`
		Description string          `json:"description"`
		InputSchema json.RawMessage `json:"input_schema"`
	} `json:"tools"`
	MaxTokens     *int64          `json:"max_tokens"`
	Temperature   *float64        `json:"temperature"`
	TopP          *float64        `json:"top_p"`
	StopSequences []string        `json:"stop_sequences"`
	Stream        bool            `json:"stream"`
	ToolChoice    json.RawMessage `json:"tool_choice"`
	Thinking      struct {
		Type         string `json:"type"`
		BudgetTokens int64  `json:"budget_tokens"`
	} `json:"thinking"`
	OutputConfig struct {
		Effort string `json:"effort"`
	} `json:"output_config"`
}

// anthropicText joins the text of a string or of text blocks.
func anthropicBlocks(b json.RawMessage) (string, []anthropicBlock, bool) {
	if s, ok := jsonString(b); ok {
		return s, nil, true
	}
	var blocks []anthropicBlock
	if json.Unmarshal(b, &blocks) != nil {
		return "", nil, false
	}
	return "", blocks, true
}

func parseAnthropic(p *parsed, rc *reqCapture, body []byte) bool {
	var r anthropicRequest
	if json.Unmarshal(body, &r) != nil {
		return false
	}
	if r.Model != "" {
		p.req.Model = r.Model
	}
	p.req.Stream = r.Stream
	if len(r.System) > 0 {
		s, blocks, _ := anthropicBlocks(r.System)
		for _, b := range blocks {
			if b.Type == "text" {
				if s != "" {
					s += "\n"
				}
				s += b.Text
			}
		}
		p.req.System = rc.Text(s)
		if rc.mode == CaptureMetadata && s != "" {
			p.req.Messages = append(p.req.Messages, agenttrace.Message{Role: "system", Parts: []agenttrace.ContentPart{{Type: agenttrace.PartText, Size: int64(len(s))}}})
		}
	}
	for _, m := range r.Messages {
		msg := agenttrace.Message{Role: m.Role}
		s, blocks, _ := anthropicBlocks(m.Content)
		rc.MessageText(&msg, s)
		var results []agenttrace.Message
		for _, b := range blocks {
			switch b.Type {
			case "text":
				rc.MessageText(&msg, b.Text)
			case "image", "document":
				typ := agenttrace.PartImage
				if b.Type == "document" {
					typ = agenttrace.PartFile
				}
				rc.part(&msg, agenttrace.ContentPart{Type: typ, MIMEType: b.Source.MediaType, URL: b.Source.URL, Size: int64(len(b.Source.Data))})
			case "thinking":
				rc.part(&msg, agenttrace.ContentPart{Type: agenttrace.PartThinking, Text: b.Thinking})
			case "redacted_thinking":
				rc.part(&msg, agenttrace.ContentPart{Type: agenttrace.PartThinking})
			case "tool_use", "server_tool_use":
				msg.ToolCalls = append(msg.ToolCalls, agenttrace.ToolCall{ID: b.ID, Name: b.Name, Arguments: validOrString(rc.raw(b.Input))})
			case "tool_result":
				res := agenttrace.Message{Role: "tool", ToolCallID: b.ToolUseID}
				rs, rblocks, _ := anthropicBlocks(b.Content)
				rc.MessageText(&res, rs)
				for _, rb := range rblocks {
					if rb.Type == "text" {
						rc.MessageText(&res, rb.Text)
					} else {
						rc.part(&res, agenttrace.ContentPart{Type: rb.Type, MIMEType: rb.Source.MediaType, Size: int64(len(rb.Source.Data))})
					}
				}
				if b.IsError {
					res.Name = "error"
				}
				results = append(results, res)
			default:
				rc.part(&msg, agenttrace.ContentPart{Type: b.Type})
			}
		}
		if msg.Content != "" || len(msg.Parts) > 0 || len(msg.ToolCalls) > 0 || len(results) == 0 {
			p.req.Messages = append(p.req.Messages, msg)
		}
		p.req.Messages = append(p.req.Messages, results...)
	}
	for _, t := range r.Tools {
		name := t.Name
		if name == "" {
			name = t.Type
		}
		p.req.Tools = append(p.req.Tools, agenttrace.ToolDefinition{Name: name, Description: t.Description, Parameters: t.InputSchema})
	}
	st := agenttrace.LLMSettings{
		Temperature: r.Temperature, TopP: r.TopP, MaxTokens: r.MaxTokens, Stop: r.StopSequences,
		ToolChoice: toolChoice(r.ToolChoice), ReasoningEffort: r.OutputConfig.Effort,
	}
	if r.Thinking.Type == "enabled" && st.ReasoningEffort == "" {
		st.ReasoningEffort = "budget:" + strconv.FormatInt(r.Thinking.BudgetTokens, 10)
	}
	p.req.Settings = settings(st)
	return true
}

// --- Gemini ---

type geminiPart struct {
	Text       string `json:"text"`
	Thought    bool   `json:"thought"`
	InlineData *struct {
		MIMEType string `json:"mimeType"`
		Data     string `json:"data"`
	} `json:"inlineData"`
	FileData *struct {
		MIMEType string `json:"mimeType"`
		FileURI  string `json:"fileUri"`
	} `json:"fileData"`
	FunctionCall *struct {
		ID   string          `json:"id"`
		Name string          `json:"name"`
		Args json.RawMessage `json:"args"`
	} `json:"functionCall"`
	FunctionResponse *struct {
		ID       string          `json:"id"`
		Name     string          `json:"name"`
		Response json.RawMessage `json:"response"`
	} `json:"functionResponse"`
}

type geminiContent struct {
	Role  string       `json:"role"`
	Parts []geminiPart `json:"parts"`
}

type geminiRequest struct {
	Contents          []geminiContent `json:"contents"`
	SystemInstruction *geminiContent  `json:"systemInstruction"`
	Tools             []struct {
		FunctionDeclarations []struct {
			Name                 string          `json:"name"`
			Description          string          `json:"description"`
			Parameters           json.RawMessage `json:"parameters"`
			ParametersJSONSchema json.RawMessage `json:"parametersJsonSchema"`
		} `json:"functionDeclarations"`
	} `json:"tools"`
	GenerationConfig struct {
		Temperature      *float64 `json:"temperature"`
		TopP             *float64 `json:"topP"`
		MaxOutputTokens  *int64   `json:"maxOutputTokens"`
		StopSequences    []string `json:"stopSequences"`
		Seed             *int64   `json:"seed"`
		PresencePenalty  *float64 `json:"presencePenalty"`
		FrequencyPenalty *float64 `json:"frequencyPenalty"`
		ResponseMIMEType string   `json:"responseMimeType"`
		ThinkingConfig   struct {
			ThinkingBudget *int64 `json:"thinkingBudget"`
			ThinkingLevel  string `json:"thinkingLevel"`
		} `json:"thinkingConfig"`
	} `json:"generationConfig"`
	ToolConfig struct {
		FunctionCallingConfig struct {
			Mode string `json:"mode"`
		} `json:"functionCallingConfig"`
	} `json:"toolConfig"`
	ContinuationToken string `json:"continuationToken"`
}

func parseGemini(p *parsed, rc *reqCapture, body []byte) bool {
	var r geminiRequest
	if json.Unmarshal(body, &r) != nil {
		return false
	}
	p.contToken = r.ContinuationToken
	if r.SystemInstruction != nil {
		var s string
		for _, part := range r.SystemInstruction.Parts {
			if s != "" && part.Text != "" {
				s += "\n"
			}
			s += part.Text
		}
		p.req.System = rc.Text(s)
		if rc.mode == CaptureMetadata && s != "" {
			p.req.Messages = append(p.req.Messages, agenttrace.Message{Role: "system", Parts: []agenttrace.ContentPart{{Type: agenttrace.PartText, Size: int64(len(s))}}})
		}
	}
	for _, c := range r.Contents {
		role := c.Role
		if role == "model" {
			role = "assistant"
		}
		msg := agenttrace.Message{Role: role}
		var results []agenttrace.Message
		for _, part := range c.Parts {
			switch {
			case part.FunctionCall != nil:
				msg.ToolCalls = append(msg.ToolCalls, agenttrace.ToolCall{ID: part.FunctionCall.ID, Name: part.FunctionCall.Name, Arguments: validOrString(rc.raw(part.FunctionCall.Args))})
			case part.FunctionResponse != nil:
				res := agenttrace.Message{Role: "tool", Name: part.FunctionResponse.Name, ToolCallID: part.FunctionResponse.ID}
				rc.MessageText(&res, string(part.FunctionResponse.Response))
				results = append(results, res)
			case part.InlineData != nil:
				rc.part(&msg, agenttrace.ContentPart{Type: mediaPart(part.InlineData.MIMEType), MIMEType: part.InlineData.MIMEType, Size: int64(len(part.InlineData.Data))})
			case part.FileData != nil:
				rc.part(&msg, agenttrace.ContentPart{Type: mediaPart(part.FileData.MIMEType), MIMEType: part.FileData.MIMEType, URL: part.FileData.FileURI})
			case part.Thought:
				rc.part(&msg, agenttrace.ContentPart{Type: agenttrace.PartThinking, Text: part.Text})
			default:
				rc.MessageText(&msg, part.Text)
			}
		}
		if msg.Content != "" || len(msg.Parts) > 0 || len(msg.ToolCalls) > 0 || len(results) == 0 {
			p.req.Messages = append(p.req.Messages, msg)
		}
		p.req.Messages = append(p.req.Messages, results...)
	}
	for _, t := range r.Tools {
		for _, f := range t.FunctionDeclarations {
			params := f.Parameters
			if len(params) == 0 {
				params = f.ParametersJSONSchema
			}
			p.req.Tools = append(p.req.Tools, agenttrace.ToolDefinition{Name: f.Name, Description: f.Description, Parameters: params})
		}
	}
	g := r.GenerationConfig
	st := agenttrace.LLMSettings{
		Temperature: g.Temperature, TopP: g.TopP, MaxTokens: g.MaxOutputTokens, Stop: g.StopSequences, Seed: g.Seed,
		PresencePenalty: g.PresencePenalty, FrequencyPenalty: g.FrequencyPenalty, ResponseFormat: g.ResponseMIMEType,
		ToolChoice: strings.ToLower(r.ToolConfig.FunctionCallingConfig.Mode), ReasoningEffort: strings.ToLower(g.ThinkingConfig.ThinkingLevel),
	}
	if st.ReasoningEffort == "" && g.ThinkingConfig.ThinkingBudget != nil {
		st.ReasoningEffort = "budget:" + strconv.FormatInt(*g.ThinkingConfig.ThinkingBudget, 10)
	}
	p.req.Settings = settings(st)
	return true
}

func mediaPart(mime string) string {
	switch {
	case strings.HasPrefix(mime, "image/"):
		return agenttrace.PartImage
	case strings.HasPrefix(mime, "audio/"):
		return agenttrace.PartAudio
	}
	return agenttrace.PartFile
}

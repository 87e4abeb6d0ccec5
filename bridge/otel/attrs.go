package otelbridge

import (
	"bytes"
	"cmp"
	"encoding/json"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/agenttrace/agenttrace"
	"github.com/agenttrace/agenttrace/internal/jsonscan"
	"go.opentelemetry.io/otel/attribute"
)

// spanClass is the GenAI mapping a span type gets.
type spanClass uint8

const (
	classOther spanClass = iota
	classLLM
	classTool
	classAgent
)

// classify maps a schema name to its class: "llm", "tool" and "agent", and
// namespaced "<ns>:llm" and so on, as the root package counts LLM calls.
func classify(spanType string) spanClass {
	name := spanType
	if i := strings.LastIndexByte(name, ':'); i >= 0 {
		name = name[i+1:]
	}
	switch name {
	case agenttrace.TypeLLM:
		return classLLM
	case agenttrace.TypeTool:
		return classTool
	case agenttrace.TypeAgent:
		return classAgent
	}
	return classOther
}

// attrs collects attributes within the configured limits.
type attrs struct {
	kv        []attribute.KeyValue
	maxLen    int
	flatLeft  int // flattened payload attributes still allowed
	truncated []string
	names     names      // the Exporter's interned strings
	cache     *spanNames // the Exporter's span names and finish reasons
	// implied is set by WithImpliedAttributes: the attributes that repeat
	// what the OTel span already says are emitted too (see impliedType,
	// impliedStatus and usage).
	implied bool
}

func (a *attrs) str(k attribute.Key, v string) {
	if v == "" {
		return
	}
	if len(v) > a.maxLen {
		v = cutUTF8(v, a.maxLen)
		a.truncated = append(a.truncated, string(k))
	}
	a.kv = append(a.kv, k.String(v))
}

func (a *attrs) json(k attribute.Key, v []byte) {
	if len(v) == 0 || string(v) == "null" {
		return
	}
	a.str(k, string(v))
}

func (a *attrs) int(k attribute.Key, v int64) { a.kv = append(a.kv, k.Int64(v)) }

func (a *attrs) float(k attribute.Key, v float64) { a.kv = append(a.kv, k.Float64(v)) }

func (a *attrs) boolean(k attribute.Key, v bool) { a.kv = append(a.kv, k.Bool(v)) }

// finish adds agenttrace.truncated if anything was cut or left out.
func (a *attrs) finish() []attribute.KeyValue {
	if len(a.truncated) > 0 {
		a.kv = append(a.kv, KeyTruncated.StringSlice(a.truncated))
		a.truncated = nil
	}
	return a.kv
}

// cutUTF8 returns at most n bytes of s, cut on a rune boundary.
func cutUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// usage adds token usage. The details named by the root package's Usage*
// constants map to the GenAI keys the span processor reads back:
// UsageCacheRead to gen_ai.usage.cache_read.input_tokens, UsageCacheWrite
// to gen_ai.usage.cache_creation.input_tokens, UsageReasoning to
// gen_ai.usage.reasoning.output_tokens ("cached", "cached_tokens",
// "cache_creation" and "reasoning_tokens" are taken as their older
// spellings); any other detail k becomes agenttrace.usage.k.
func (a *attrs) usage(u *agenttrace.Usage) {
	if u == nil {
		return
	}
	a.int(KeyUsageInputTokens, u.PromptTokens)
	a.int(KeyUsageOutputTokens, u.CompletionTokens)
	// The total is left out when it is the sum of the two (what a reader
	// takes it to be when it is absent).
	if total := u.TotalTokens; a.implied || (total != 0 && total != u.PromptTokens+u.CompletionTokens) {
		a.int(KeyTotalTokens, cmp.Or(total, u.PromptTokens+u.CompletionTokens))
	}
	if len(u.Details) == 0 {
		return
	}
	for _, k := range slices.Sorted(maps.Keys(u.Details)) {
		v := u.Details[k]
		switch k {
		case agenttrace.UsageCacheRead, "cached", "cached_tokens":
			a.int(KeyUsageCacheReadInputTokens, v)
		case agenttrace.UsageCacheWrite, "cache_creation":
			a.int(KeyUsageCacheCreationInputTokens, v)
		case agenttrace.UsageReasoning, "reasoning_tokens":
			a.int(KeyUsageReasoningOutputTokens, v)
		default:
			// agenttrace.UsageCacheWrite5m and UsageCacheWrite1h, which
			// the conventions do not split, become
			// agenttrace.usage.cache_write_5m and cache_write_1h.
			a.int(attribute.Key(PrefixUsageDetails+k), v)
		}
	}
}

func (a *attrs) cost(c *agenttrace.Cost) {
	if c == nil {
		return
	}
	a.float(KeyCostTotal, c.Total)
	a.str(KeyCostCurrency, c.Currency)
}

// Decoded payloads. They mirror the root package's typed payloads, with the
// content fields apart so that they are decoded only when captured. The
// *Meta structs and the tool and agent ones are read by their read
// methods; the *Content ones by encoding/json.

type llmRequestMeta struct {
	Operation, Provider, Model string
	Settings                   *agenttrace.LLMSettings
	Stream                     bool
}

type llmRequestContent struct {
	System   string               `json:"system"`
	Messages []agenttrace.Message `json:"messages"`
	Tools    json.RawMessage      `json:"tools"`
}

type llmResponseMeta struct {
	ID, Model, FinishReason string
}

type llmResponseContent struct {
	Text         string                `json:"text"`
	Messages     []agenttrace.Message  `json:"messages"`
	ToolCalls    []agenttrace.ToolCall `json:"tool_calls"`
	FinishReason string                `json:"finish_reason"`
}

type toolInput struct {
	Name, CallID string
	Arguments    json.RawMessage
}

type toolOutput struct {
	Output  json.RawMessage
	IsError bool
}

type agentInput struct {
	Name, SessionID, Model string
	Input                  json.RawMessage
}

type agentOutput struct {
	Output     json.RawMessage
	StopReason string
	Turns      int64
	Usage      *agenttrace.Usage
}

// decode unmarshals a payload; a missing or undecodable one (an error or
// truncation marker, say) leaves v as it was. It is for the content
// fields, decoded only when captured.
func decode(b []byte, v any) bool {
	if len(b) == 0 {
		return false
	}
	return json.Unmarshal(b, v) == nil
}

// The read methods pick the mapped fields from a payload (valid JSON:
// agenttrace validates what it records) without reflection, with
// jsonscan.Members; fields that do not decode are left zero. Keys come
// with their escapes as they are, which no mapped field has.

// jsonString returns the string a raw JSON value holds, or "" if it is not
// a string.
func jsonString(raw []byte) string {
	if len(raw) < 2 || raw[0] != '"' {
		return ""
	}
	inner := raw[1 : len(raw)-1]
	if !bytes.ContainsAny(inner, "\\") && !hasControl(inner) {
		return string(inner)
	}
	var str string
	if json.Unmarshal(raw, &str) != nil {
		return ""
	}
	return str
}

// names interns the strings of payloads that repeat from span to span
// (providers, models, operations, finish reasons), so that a span does not
// copy them anew. It is the Exporter's, used under its lock; it keeps at
// most maxNames strings and copies any other.
type names map[string]string

// maxNames bounds the strings names keeps, and the entries of each of
// spanNames' maps.
const maxNames = 256

// str returns the string a raw JSON value holds, as jsonString does,
// interned when it needs no decoding.
func (n names) str(raw []byte) string {
	if len(raw) < 2 || raw[0] != '"' {
		return ""
	}
	inner := raw[1 : len(raw)-1]
	if s, ok := n[string(inner)]; ok {
		return s
	}
	s := jsonString(raw)
	if n != nil && len(n) < maxNames && len(s) == len(inner) {
		n[s] = s
	}
	return s
}

// spanNames keeps what repeats from span to span once the strings of a
// payload are read: the span names made of an operation and a model (or
// tool, or agent), and the finish-reason attributes (a one-element slice
// each). It is the Exporter's, used under its lock; each map is bounded by
// maxNames, past which values are made anew. A nil *spanNames keeps
// nothing.
type spanNames struct {
	joined  map[[2]string]string
	reasons map[string]attribute.KeyValue
}

// join returns op + " " + s, or op when s is empty.
func (c *spanNames) join(op, s string) string {
	if s == "" {
		return op
	}
	k := [2]string{op, s}
	if c == nil {
		return op + " " + s
	}
	if v, ok := c.joined[k]; ok {
		return v
	}
	v := op + " " + s
	if len(c.joined) < maxNames {
		c.joined[k] = v
	}
	return v
}

// finishReasons returns the gen_ai.response.finish_reasons attribute of
// one finish reason.
func (c *spanNames) finishReasons(reason string) attribute.KeyValue {
	if c == nil {
		return KeyResponseFinishReasons.StringSlice([]string{reason})
	}
	if kv, ok := c.reasons[reason]; ok {
		return kv
	}
	kv := KeyResponseFinishReasons.StringSlice([]string{reason})
	if len(c.reasons) < maxNames {
		c.reasons[reason] = kv
	}
	return kv
}

func newSpanNames() *spanNames {
	return &spanNames{joined: map[[2]string]string{}, reasons: map[string]attribute.KeyValue{}}
}

func hasControl(b []byte) bool {
	for _, c := range b {
		if c < 0x20 {
			return true
		}
	}
	return false
}

// jsonInt returns the integer a raw JSON number holds.
func jsonInt(raw []byte) (int64, bool) {
	n, err := strconv.ParseInt(string(raw), 10, 64)
	return n, err == nil
}

func (r *llmRequestMeta) read(b []byte, n names) {
	for m := jsonscan.NewMembers(b); m.Next(); {
		switch string(m.Key) {
		case "operation":
			r.Operation = n.str(m.Value)
		case "provider":
			r.Provider = n.str(m.Value)
		case "model":
			r.Model = n.str(m.Value)
		case "stream":
			r.Stream = string(m.Value) == "true"
		case "settings":
			var s agenttrace.LLMSettings
			if json.Unmarshal(m.Value, &s) == nil {
				r.Settings = &s
			}
		}
	}
}

func (r *llmResponseMeta) read(b []byte, n names) {
	for m := jsonscan.NewMembers(b); m.Next(); {
		switch string(m.Key) {
		case "id":
			r.ID = jsonString(m.Value)
		case "model":
			r.Model = n.str(m.Value)
		case "finish_reason":
			r.FinishReason = n.str(m.Value)
		}
	}
}

func (t *toolInput) read(b []byte) {
	for m := jsonscan.NewMembers(b); m.Next(); {
		switch string(m.Key) {
		case "tool_name":
			t.Name = jsonString(m.Value)
		case "call_id":
			t.CallID = jsonString(m.Value)
		case "arguments":
			t.Arguments = m.Value
		}
	}
}

// read takes the tool result from a ToolOutput's "output". A result of
// another shape is the tool result itself: the value agenttrace.Run
// wrapped as {"value": v} is v, and any other object is kept whole.
func (t *toolOutput) read(b []byte) {
	var value []byte
	count, found := 0, false
	for m := jsonscan.NewMembers(b); m.Next(); {
		count++
		switch string(m.Key) {
		case "output":
			t.Output, found = m.Value, true
		case "is_error":
			t.IsError = string(m.Value) == "true"
		case "value":
			value = m.Value
		}
	}
	switch {
	case found || count == 0:
	case count == 1 && value != nil:
		t.Output = value
	default:
		t.Output = b
	}
}

func (a *agentInput) read(b []byte) {
	for m := jsonscan.NewMembers(b); m.Next(); {
		switch string(m.Key) {
		case "agent_name":
			a.Name = jsonString(m.Value)
		case "session_id":
			a.SessionID = jsonString(m.Value)
		case "model":
			a.Model = jsonString(m.Value)
		case "input":
			a.Input = m.Value
		}
	}
}

func (a *agentOutput) read(b []byte) {
	for m := jsonscan.NewMembers(b); m.Next(); {
		switch string(m.Key) {
		case "output":
			a.Output = m.Value
		case "stop_reason":
			a.StopReason = jsonString(m.Value)
		case "turns":
			a.Turns, _ = jsonInt(m.Value)
		case "token_usage":
			var u agenttrace.Usage
			if json.Unmarshal(m.Value, &u) == nil {
				a.Usage = &u
			}
		}
	}
}

// spanMeta is what a span's start reads of its payload: its GenAI
// operation and the mapped fields of its class.
type spanMeta struct {
	op    string
	llm   llmRequestMeta
	tool  toolInput
	agent agentInput
}

// spanName reads the mapped fields of a span's payload into m and returns
// the span's OTel name.
func spanName(d *agenttrace.SpanData, class spanClass, m *spanMeta, n names, c *spanNames) string {
	switch class {
	case classLLM:
		m.llm.read(d.Payload, n)
		m.op = cmp.Or(m.llm.Operation, OperationChat)
		return c.join(m.op, m.llm.Model)
	case classTool:
		m.tool.read(d.Payload)
		m.op = OperationExecuteTool
		return c.join(OperationExecuteTool, m.tool.Name)
	case classAgent:
		m.agent.read(d.Payload)
		m.agent.Name = cmp.Or(m.agent.Name, d.Name)
		m.op = OperationInvokeAgent
		return c.join(OperationInvokeAgent, m.agent.Name)
	}
	return d.Type
}

// startAttrs are the attributes known when a span starts: identity and
// payload. instID is the span's instance ID as a string, or "" when the
// span's trace ID is the instance ULID and says it.
func (a *attrs) startAttrs(d *agenttrace.SpanData, instID string, class spanClass, m *spanMeta, content bool) {
	a.str(KeyInstanceID, instID)
	a.str(KeySpanID, d.ID.String())
	if a.implied || !impliedType(d.Type, class, m.op) {
		a.str(KeySpanType, d.Type)
	}
	a.str(KeySpanName, d.Name)
	a.str(KeyOperationName, m.op)
	switch class {
	case classLLM:
		a.llmRequest(&m.llm, d.Payload, content)
	case classTool:
		a.str(KeyToolName, m.tool.Name)
		a.str(KeyToolCallID, m.tool.CallID)
		if content {
			a.json(KeyToolCallArguments, m.tool.Arguments)
		}
	case classAgent:
		a.str(KeyAgentName, m.agent.Name)
		a.str(KeyConversationID, m.agent.SessionID)
		a.str(KeyRequestModel, m.agent.Model)
		if content {
			a.json(PrefixPayload+"input", m.agent.Input)
		}
	default:
		if content || !sensitive(d) {
			a.flatten(PrefixPayload, d.Payload)
		}
	}
}

// sensitive reports whether a span's payload and result were marked
// sensitive, so that they are flattened only with content capture on.
func sensitive(d *agenttrace.SpanData) bool { return d.Sensitive != nil && *d.Sensitive }

// llmRequest adds an LLM request's model, provider and settings, and its
// messages (from payload) when content is captured.
func (a *attrs) llmRequest(m *llmRequestMeta, payload []byte, content bool) {
	a.str(KeyProviderName, m.Provider)
	a.str(KeyRequestModel, m.Model)
	if m.Settings != nil {
		a.llmSettings(m.Settings)
	}
	if m.Stream {
		a.boolean(KeyRequestStream, true)
	}
	if !content {
		return
	}
	var c llmRequestContent
	if !decode(payload, &c) {
		return
	}
	if c.System != "" {
		a.json(KeySystemInstructions, marshal([]otelPart{{Type: "text", Content: c.System}}))
	}
	if len(c.Messages) > 0 {
		a.json(KeyInputMessages, marshal(inputMessages(c.Messages)))
	}
	a.json(KeyToolDefinitions, c.Tools)
}

// llmSettings adds the gen_ai.request.* settings that were set.
func (a *attrs) llmSettings(s *agenttrace.LLMSettings) {
	if s.MaxTokens != nil {
		a.int(KeyRequestMaxTokens, *s.MaxTokens)
	}
	if s.Temperature != nil {
		a.float(KeyRequestTemperature, *s.Temperature)
	}
	if s.TopP != nil {
		a.float(KeyRequestTopP, *s.TopP)
	}
	if s.FrequencyPenalty != nil {
		a.float(KeyRequestFrequencyPenalty, *s.FrequencyPenalty)
	}
	if s.PresencePenalty != nil {
		a.float(KeyRequestPresencePenalty, *s.PresencePenalty)
	}
	if s.Seed != nil {
		a.int(KeyRequestSeed, *s.Seed)
	}
	if len(s.Stop) > 0 {
		a.kv = append(a.kv, KeyRequestStopSequences.StringSlice(s.Stop))
	}
}

// endAttrs are the attributes known when a span ends: result, usage,
// status.
func (a *attrs) endAttrs(d *agenttrace.SpanData, class spanClass, content bool) {
	switch class {
	case classLLM:
		a.llmResult(d, content)
	case classTool:
		var out toolOutput
		out.read(d.Result)
		if out.IsError {
			a.boolean(KeyToolIsError, true)
		}
		if content {
			a.json(KeyToolCallResult, out.Output)
		}
	case classAgent:
		a.agentResult(d, content)
	default:
		if content || !sensitive(d) {
			a.flatten(PrefixResult, d.Result)
		}
	}
	a.usage(d.Usage)
	a.cost(d.Cost)
	a.str(KeyPayloadError, d.PayloadError)
	a.status(d)
}

// llmResult adds an LLM response's ID, model, finish reason and time to
// first chunk, and its messages when content is captured.
func (a *attrs) llmResult(d *agenttrace.SpanData, content bool) {
	var m llmResponseMeta
	m.read(d.Result, a.names)
	a.str(KeyResponseID, m.ID)
	a.str(KeyResponseModel, m.Model)
	if m.FinishReason != "" {
		a.kv = append(a.kv, a.cache.finishReasons(m.FinishReason))
	}
	if ttft := d.TimeToFirstToken(); ttft > 0 {
		a.float(KeyResponseTimeToFirstChunk, ttft.Seconds())
	}
	if !content {
		return
	}
	var c llmResponseContent
	if decode(d.Result, &c) {
		if msgs := outputMessages(&c); len(msgs) > 0 {
			a.json(KeyOutputMessages, marshal(msgs))
		}
	}
}

// agentResult adds an agent's stop reason and turns, its output when
// content is captured, and its own usage rollup when the span has no
// usage of its own.
func (a *attrs) agentResult(d *agenttrace.SpanData, content bool) {
	var out agentOutput
	out.read(d.Result)
	a.str(PrefixResult+"stop_reason", out.StopReason)
	if out.Turns != 0 {
		a.int(PrefixResult+"turns", out.Turns)
	}
	if content {
		a.json(PrefixResult+"output", out.Output)
	}
	if d.Usage == nil {
		// An agent's own rollup, not counted into the instance.
		a.usage(out.Usage)
	}
}

// status adds a finished span's status, error type, cancel reason and
// activation time.
func (a *attrs) status(d *agenttrace.SpanData) {
	if a.implied || !impliedStatus(d.Status) {
		a.str(KeySpanStatus, d.Status.String())
	}
	if d.Status == agenttrace.StatusFailed {
		typ := "_OTHER"
		if d.Error != nil {
			typ = cmp.Or(d.Error.Type, typ)
		}
		a.str(KeyErrorType, typ)
	}
	if d.Status == agenttrace.StatusCancelled && d.Error != nil {
		a.str(KeyCancelReason, d.Error.Message)
	}
	if d.Status != agenttrace.StatusPending && !d.StartedAt.IsZero() && d.StartedAt.After(d.CreatedAt) {
		a.str(KeyActivatedAt, d.StartedAt.UTC().Format(time.RFC3339Nano))
	}
}

// maxFlattenDepth is how deep objects are flattened into dotted keys;
// deeper values become JSON strings.
const maxFlattenDepth = 4

// flatten adds the members of a JSON object as prefix.<path> attributes:
// strings, numbers and booleans as such, arrays of one scalar type as
// slices, anything else (and objects past maxFlattenDepth) as JSON strings.
// Nulls are left out. A non-object payload is added whole as a JSON string.
func (a *attrs) flatten(prefix string, b []byte) {
	if len(b) == 0 {
		return
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if dec.Decode(&v) != nil {
		a.str(attribute.Key(strings.TrimSuffix(prefix, ".")), string(b))
		return
	}
	obj, ok := v.(map[string]any)
	if !ok {
		a.flatValue(strings.TrimSuffix(prefix, "."), v, 0)
		return
	}
	a.flatObject(prefix, obj, 0)
}

func (a *attrs) flatObject(prefix string, obj map[string]any, depth int) {
	for _, k := range slices.Sorted(maps.Keys(obj)) {
		a.flatValue(prefix+k, obj[k], depth)
	}
}

func (a *attrs) flatValue(key string, v any, depth int) {
	if v == nil {
		return
	}
	if obj, ok := v.(map[string]any); ok && depth+1 < maxFlattenDepth {
		a.flatObject(key+".", obj, depth+1)
		return
	}
	if a.flatLeft <= 0 {
		if len(a.truncated) == 0 || a.truncated[len(a.truncated)-1] != "attributes" {
			a.truncated = append(a.truncated, "attributes")
		}
		return
	}
	a.flatLeft--
	k := attribute.Key(key)
	switch x := v.(type) {
	case string:
		a.str(k, x)
		if x == "" {
			a.kv = append(a.kv, k.String(""))
		}
	case bool:
		a.boolean(k, x)
	case json.Number:
		if i, err := x.Int64(); err == nil {
			a.int(k, i)
		} else if f, err := x.Float64(); err == nil {
			a.float(k, f)
		} else {
			a.str(k, x.String())
		}
	case []any:
		if kv, ok := scalarSlice(k, x); ok {
			a.kv = append(a.kv, kv)
			return
		}
		a.str(k, string(marshal(x)))
	default:
		a.str(k, string(marshal(x)))
	}
}

// scalarSlice returns a slice attribute if every element of s has the same
// scalar type.
func scalarSlice(k attribute.Key, s []any) (attribute.KeyValue, bool) {
	if len(s) == 0 {
		return attribute.KeyValue{}, false
	}
	switch s[0].(type) {
	case string:
		out := make([]string, len(s))
		for i, v := range s {
			x, ok := v.(string)
			if !ok {
				return attribute.KeyValue{}, false
			}
			out[i] = x
		}
		return k.StringSlice(out), true
	case bool:
		out := make([]bool, len(s))
		for i, v := range s {
			x, ok := v.(bool)
			if !ok {
				return attribute.KeyValue{}, false
			}
			out[i] = x
		}
		return k.BoolSlice(out), true
	case json.Number:
		ints := make([]int64, 0, len(s))
		floats := make([]float64, 0, len(s))
		allInt := true
		for _, v := range s {
			n, ok := v.(json.Number)
			if !ok {
				return attribute.KeyValue{}, false
			}
			f, err := n.Float64()
			if err != nil {
				return attribute.KeyValue{}, false
			}
			floats = append(floats, f)
			if i, err := n.Int64(); err == nil && allInt {
				ints = append(ints, i)
			} else {
				allInt = false
			}
		}
		if allInt {
			return k.Int64Slice(ints), true
		}
		return k.Float64Slice(floats), true
	}
	return attribute.KeyValue{}, false
}

// marshal encodes v; the values passed here always encode.
func marshal(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		return []byte(strconv.Quote(err.Error()))
	}
	return b
}

// impliedType reports whether a span's type goes without saying: it is one
// of the three GenAI types and its gen_ai.operation.name names it
// (execute_tool a tool, invoke_agent or create_agent an agent, any other
// operation an llm call). SpanIdentity reads it back.
func impliedType(spanType string, class spanClass, op string) bool {
	switch class {
	case classLLM:
		return spanType == agenttrace.TypeLLM && op != "" && typeOfOperation(op) == agenttrace.TypeLLM
	case classTool, classAgent:
		return spanType == typeOfOperation(op)
	}
	return false
}

// typeOfOperation is the span type a GenAI operation stands for.
func typeOfOperation(op string) string {
	switch op {
	case OperationExecuteTool:
		return agenttrace.TypeTool
	case OperationInvokeAgent, OperationCreateAgent:
		return agenttrace.TypeAgent
	}
	return agenttrace.TypeLLM
}

// impliedStatus reports whether the OTel status of a finished span says
// its agenttrace status: Error is failed, and Unset without
// agenttrace.unfinished is complete. Only cancelled, which OTel lacks,
// needs agenttrace.span.status.
func impliedStatus(s agenttrace.Status) bool {
	return s == agenttrace.StatusComplete || s == agenttrace.StatusFailed
}

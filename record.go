package agenttrace

import (
	"encoding/json"
	"time"
)

// Status is the lifecycle state of a span or an instance. The values and
// their spelling are the Prefactor API's.
type Status uint8

// Statuses.
const (
	StatusPending Status = iota + 1
	StatusActive
	StatusComplete
	StatusFailed
	StatusCancelled
	// StatusTerminated is set on an instance by the server.
	StatusTerminated
)

var statusNames = [...]string{"", "pending", "active", "complete", "failed", "cancelled", "terminated"}

// String returns the API spelling: "pending", "active", "complete",
// "failed", "cancelled" or "terminated".
func (s Status) String() string {
	if int(s) < len(statusNames) {
		return statusNames[s]
	}
	return "unknown"
}

// Finished reports whether s is terminal.
func (s Status) Finished() bool { return s >= StatusComplete }

// MarshalText implements encoding.TextMarshaler.
func (s Status) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// RecordKind says what a Record tells an exporter.
type RecordKind uint8

// Record kinds.
const (
	// InstanceStarted: an instance began. Record.Instance is set.
	InstanceStarted RecordKind = iota + 1
	// InstanceEnded: an instance finished. Every span of the instance that
	// ended before it has already been delivered.
	InstanceEnded
	// SpanStarted: the first record of a span. Span.Status is pending or
	// active, or, when the span started and finished within one batch
	// window (coalesced), its final status: then no SpanEnded follows.
	SpanStarted
	// SpanActivated: a span already delivered as pending became active.
	SpanActivated
	// SpanEnded: a span already delivered reached its final status.
	SpanEnded
)

var kindNames = [...]string{"", "instance_started", "instance_ended", "span_started", "span_activated", "span_ended"}

// String returns the kind in snake case.
func (k RecordKind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "unknown"
}

// MarshalText implements encoding.TextMarshaler.
func (k RecordKind) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// Record is one immutable lifecycle change handed to exporters. Exactly one
// of Instance (for instance kinds) and Span (for span kinds) is meaningful.
// Exporters may keep a Record and its byte slices, which are never modified,
// but not the slice of records passed to Export.
type Record struct {
	Kind     RecordKind    `json:"kind"`
	Instance *InstanceData `json:"instance,omitempty"`
	Span     SpanData      `json:"span,omitzero"`

	span *Span     // identity for coalescing; nil for instance records
	inst *Instance // set on instance records
	size int       // bytes charged to the queue
	seq  uint64    // recording order across queue shards
}

// SpanData is a snapshot of a span.
type SpanData struct {
	ID         ID `json:"id"`
	ParentID   ID `json:"parent_id,omitzero"`
	InstanceID ID `json:"instance_id"`
	// Type is the span's schema name.
	Type string `json:"type"`
	// Name is an optional human name (WithName); exporters fall back to
	// Type.
	Name   string `json:"name,omitempty"`
	Status Status `json:"status"`
	// CreatedAt is when the span was started or, for a pending span,
	// created.
	CreatedAt time.Time `json:"created_at"`
	// StartedAt is when the span became active; zero while pending and for
	// a span cancelled while pending.
	StartedAt time.Time `json:"started_at,omitzero"`
	// EndedAt is when the span reached its final status.
	EndedAt time.Time `json:"ended_at,omitzero"`
	// Payload is the span's inputs, a JSON object (nil if none was given).
	Payload json.RawMessage `json:"payload,omitempty"`
	// Result is the span's outputs, a JSON object (nil if none was given).
	Result json.RawMessage `json:"result,omitempty"`
	// Error describes why a failed or cancelled span did not complete.
	Error *ErrorInfo `json:"error,omitempty"`
	// Usage is the token usage, if any was recorded.
	Usage *Usage `json:"usage,omitempty"`
	// Cost is the cost, if any was recorded.
	Cost *Cost `json:"cost,omitempty"`
	// FirstTokenAt is when the first token of a streamed response arrived.
	FirstTokenAt time.Time `json:"first_token_at,omitzero"`
	// Sensitive asks the backend to encode the span's sensitive content;
	// nil means not set.
	Sensitive *bool `json:"sensitive,omitempty"`
	// PayloadError is the first payload encoding or redaction error; the
	// payload concerned holds an error marker instead.
	PayloadError string `json:"payload_error,omitempty"`
	// TraceParent is the caller's trace context when the span started (see
	// WithParentExtractor); nil if none was captured.
	TraceParent *TraceParent `json:"trace_parent,omitempty"`
}

// Duration returns EndedAt - StartedAt, or 0 if the span did not run to an
// end.
func (d *SpanData) Duration() time.Duration {
	if d.StartedAt.IsZero() || d.EndedAt.IsZero() {
		return 0
	}
	return d.EndedAt.Sub(d.StartedAt)
}

// IsLLM reports whether the span is an LLM call: its type is "llm" or a
// namespaced "<ns>:llm". Summary.LLMCalls counts such spans.
func (d *SpanData) IsLLM() bool { return isLLMType(d.Type) }

// TimeToFirstToken returns FirstTokenAt - StartedAt, or 0 if no first token
// was marked.
func (d *SpanData) TimeToFirstToken() time.Duration {
	if d.FirstTokenAt.IsZero() || d.StartedAt.IsZero() {
		return 0
	}
	return d.FirstTokenAt.Sub(d.StartedAt)
}

// ErrorInfo describes a failure.
type ErrorInfo struct {
	// Type is the error's Go type, or a name such as "context.Canceled" or
	// "panic".
	Type    string `json:"error_type"`
	Message string `json:"message"`
}

// Agent identifies the agent a tracer records.
type Agent struct {
	Name    string `json:"name,omitempty"`
	Version string `json:"version,omitempty"`
	// ID is the backend's agent id, if the user configured one.
	ID string `json:"id,omitempty"`
}

// Purpose says why an instance runs.
type Purpose string

// Purposes.
const (
	PurposeLive      Purpose = "live"
	PurposeSmokeTest Purpose = "smoke_test"
	PurposeEval      Purpose = "eval"
)

// InstanceData is a snapshot of an instance.
type InstanceData struct {
	ID        ID             `json:"id"`
	Agent     Agent          `json:"agent"`
	Schema    *SchemaVersion `json:"-"`
	Purpose   Purpose        `json:"purpose,omitempty"`
	UserID    string         `json:"user_id,omitempty"`
	GroupID   string         `json:"group_id,omitempty"`
	Channel   string         `json:"channel,omitempty"`
	SessionID string         `json:"session_id,omitempty"`
	// Name, IPAddress and UserAgent describe the run for listings (see
	// WithInstanceName, WithIPAddress, WithUserAgent, FromHTTPRequest).
	Name      string `json:"name,omitempty"`
	IPAddress string `json:"ip_address,omitempty"`
	UserAgent string `json:"user_agent,omitempty"`
	// Default reports the tracer's default instance, which spans started
	// outside any instance join.
	Default   bool              `json:"default,omitempty"`
	Metadata  map[string]string `json:"metadata,omitempty"`
	Status    Status            `json:"status"`
	StartedAt time.Time         `json:"started_at"`
	EndedAt   time.Time         `json:"ended_at,omitzero"`
	Error     *ErrorInfo        `json:"error,omitempty"`
	// Summary holds the rollups; set on InstanceEnded records.
	Summary *Summary `json:"summary,omitempty"`
	// TraceParent is the caller's trace context when the instance started
	// (see WithParentExtractor) or the one given with WithTraceParent; nil
	// if none.
	TraceParent *TraceParent `json:"trace_parent,omitempty"`
}

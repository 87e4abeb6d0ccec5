package prefactorapi

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"time"
	"unicode"
)

// Store keeps what the protocol accepted. The protocol (API) does every
// check and computes every record; a Store only reads and writes records,
// atomically per Update. Implementations: NewMemoryStore here, SQLite (and
// PostgreSQL) in cmd/agenttrace. storetest.Run is the suite each must pass.
type Store interface {
	// Update runs fn in a read-write transaction, committed (durably, for a
	// persistent store) before Update returns nil. When fn returns an
	// error nothing it wrote is kept and Update returns that error.
	// Transactions are serializable: two Updates never interleave.
	Update(ctx context.Context, fn func(Tx) error) error
	// View runs fn in a read-only transaction seeing one consistent state.
	View(ctx context.Context, fn func(ReadTx) error) error
	// Close releases the store.
	Close() error
}

// ErrConflict may be returned by a Store's Update when a concurrent
// writer won a race the store could not serialize; the API retries the
// transaction.
var ErrConflict = errors.New("prefactorapi: transaction conflict")

// ReadTx reads records. A lookup of a missing record returns ok false and
// a nil error.
type ReadTx interface {
	Idempotency(key string) (IdempotencyRecord, bool, error)
	// Idempotencies looks up several keys at once (a bulk request reads
	// its items' keys so): the map holds the records found, by key.
	Idempotencies(keys []string) (map[string]IdempotencyRecord, error)
	Instance(id string) (InstanceRecord, bool, error)
	Span(id string) (SpanRecord, bool, error)
	// Spans looks up several spans at once (the spans a bulk request's
	// items name): the map holds the spans found, by ID.
	Spans(ids []string) (map[string]SpanRecord, error)
	Agent(id string) (AgentRecord, bool, error)
	// AgentByExternalID finds an agent by its external identifier.
	AgentByExternalID(ext string) (AgentRecord, bool, error)
	AgentVersion(id string) (AgentVersionRecord, bool, error)
	// AgentVersionByExternalID finds an agent's version by its external
	// identifier.
	AgentVersionByExternalID(agentID, ext string) (AgentVersionRecord, bool, error)
	// AgentVersionByNumber finds an agent's version by its number (1 for
	// the agent's first).
	AgentVersionByNumber(agentID string, n int) (AgentVersionRecord, bool, error)
	// CountAgentVersions counts an agent's versions.
	CountAgentVersions(agentID string) (int, error)
	SchemaVersion(id string) (SchemaVersionRecord, bool, error)
	SchemaVersionByExternalID(agentID, ext string) (SchemaVersionRecord, bool, error)
	Deployment(agentID, environmentID string) (DeploymentRecord, bool, error)
	// ListAgents returns the agents (deleted ones excluded) by insertion.
	ListAgents() ([]AgentRecord, error)
	// InstanceCounts counts an agent's instances by status.
	InstanceCounts(agentID string) (StatusCounts, error)
	// ListInstances returns one page of the instances q selects and how
	// many it selects in all.
	ListInstances(q InstanceQuery) ([]InstanceRecord, int, error)
	// ListSpans returns the spans of an instance ("" for all) in creation
	// order.
	ListSpans(instanceID string) ([]SpanRecord, error)
	// ListAgentVersions returns an agent's versions by number.
	ListAgentVersions(agentID string) ([]AgentVersionRecord, error)
	// ListSchemaVersions returns an agent's schema versions in creation
	// order.
	ListSchemaVersions(agentID string) ([]SchemaVersionRecord, error)
}

// Tx writes records. Put* insert or replace by primary key.
type Tx interface {
	ReadTx
	PutIdempotency(r IdempotencyRecord) error
	PutInstance(r InstanceRecord) error
	PutSpan(r SpanRecord) error
	PutAgent(r AgentRecord) error
	DeleteAgent(id string) error
	PutAgentVersion(r AgentVersionRecord) error
	PutSchemaVersion(r SchemaVersionRecord) error
	PutDeployment(r DeploymentRecord) error
}

// Order is the order of a listing.
type Order uint8

// Orders of ListInstances.
const (
	// ByInsertion lists in registration order.
	ByInsertion Order = iota
	// ByStartDesc lists the latest started first (instances never
	// started sort by registration time), ties by ID.
	ByStartDesc
	// ByStartAsc lists the earliest started first.
	ByStartAsc
)

// InstanceQuery selects instances. Empty fields do not filter.
type InstanceQuery struct {
	AgentID   string
	VersionID string
	UserID    string
	GroupID   string
	// Search matches instances whose name has, for every word of it, a
	// word starting with it (case-insensitive; see SearchWords; full-text
	// in SQL stores). A search with no word matches nothing.
	Search string
	Order  Order
	// Offset skips that many; Limit 0 means no limit.
	Offset, Limit int
}

// StartKey is the time ByStart orders sort by: the start, else the
// registration.
func (r *InstanceRecord) StartKey() time.Time {
	if !r.StartedAt.IsZero() {
		return r.StartedAt
	}
	return r.InsertedAt
}

// IdempotencyRecord is a stored answer under a key.
type IdempotencyRecord struct {
	Key string
	// Hash identifies the operation (RequestHash).
	Hash   string
	Status int
	Body   []byte
}

// StatusCounts count by status.
type StatusCounts struct {
	Pending, Active, Complete, Failed, Cancelled, Terminated int64
}

// Total is the sum of the counts.
func (c StatusCounts) Total() int64 {
	return c.Pending + c.Active + c.Complete + c.Failed + c.Cancelled + c.Terminated
}

// Add adds n to the count of status s.
func (c *StatusCounts) Add(s string, n int64) {
	switch s {
	case "pending":
		c.Pending += n
	case "active":
		c.Active += n
	case "complete":
		c.Complete += n
	case "failed":
		c.Failed += n
	case "cancelled":
		c.Cancelled += n
	case "terminated":
		c.Terminated += n
	}
}

// InstanceRecord is a stored agent instance.
type InstanceRecord struct {
	ID, AgentID, EnvironmentID         string
	VersionID, SchemaVersionID         string // SchemaVersionID "" when none
	DeploymentID                       string
	Purpose, Status, TerminationReason string
	StartedAt, FinishedAt              time.Time
	InsertedAt, UpdatedAt              time.Time
	// Register is the accepted register request (canonical JSON, without
	// the idempotency key).
	Register json.RawMessage
	// SpanCounts counts the instance's spans by status.
	SpanCounts StatusCounts
	// Run holds what the run listing shows, derived from the spans.
	Run RunFields
	// Quality holds the named quality payloads (record_quality); nil when
	// none. The API replaces the map, never changes one it read.
	Quality map[string]QualityRecord
}

// RunFields are an instance's listing fields (the 003 listing), derived
// from its spans (see DeriveRun).
type RunFields struct {
	Name, UserID, GroupID, Channel, SessionID, IPAddress, UserAgent string
	// VersionNumber is the number of the instance's agent version (1 for
	// the agent's first).
	VersionNumber int
	// Usage sums the token usage of finished spans.
	PromptTokens, CompletionTokens, TotalTokens int64
	// Cost sums the cost of finished spans, in Currency (the first seen).
	CostPrompt, CostCompletion, CostServices, CostTotal float64
	Currency                                            string
	// TTFTMillis is the time to first token of the earliest-started span
	// that reported one; TTFTFrom is that span's start (zero: none).
	TTFTMillis int64
	TTFTFrom   time.Time
}

// SpanRecord is a stored span.
type SpanRecord struct {
	ID, InstanceID, AgentID string
	ParentID                string // "" for a root span
	SchemaName, Status      string
	Payload, ResultPayload  json.RawMessage // ResultPayload nil when none
	StartedAt, FinishedAt   time.Time
	InsertedAt, UpdatedAt   time.Time
	SensitiveEncoding       *bool
	// Creates and Finishes count accepted operations (replays excluded).
	Creates, Finishes int
}

// AgentRecord is a stored agent.
type AgentRecord struct {
	ID, Name, Description, ExternalID string
	EnvironmentID                     string
	// Status is pending (no instance yet), active or retired.
	Status                                 string
	CurrentVersionID, CurrentSchemaVersion string
	InsertedAt, UpdatedAt                  time.Time
}

// AgentVersionRecord is a stored agent version: immutable once stored.
type AgentVersionRecord struct {
	ID, AgentID, ExternalID, Name, Description string
	// Number counts the agent's versions: 1 for its first.
	Number int
	// SchemaVersionID is the schema version the version was created with
	// (its first register's, or a create's agent_schema_version_id); ""
	// for none.
	SchemaVersionID string
	InsertedAt      time.Time
}

// SchemaVersionRecord is a stored schema version: immutable once stored.
type SchemaVersionRecord struct {
	ID, AgentID, ExternalID string
	// SpanTypes maps the declared span type names to their title and
	// template; empty: any name is accepted.
	SpanTypes map[string]SpanTypeInfo
	// Body is the schema version as registered.
	Body       json.RawMessage
	InsertedAt time.Time
}

// SpanTypeInfo is what the API keeps of a declared span type.
type SpanTypeInfo struct {
	Title    string `json:"title"`
	Template string `json:"template,omitempty"`
}

// DeploymentRecord is an (agent, environment) pair.
type DeploymentRecord struct {
	ID, AgentID, EnvironmentID string
}

// SearchWords splits a search into lower-case words: runs of letters and
// digits. Everything else (quotes, operators, punctuation) separates.
func SearchWords(s string) []string {
	return strings.FieldsFunc(strings.ToLower(s), func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) })
}

// MatchesSearch reports whether name has, for every word, a word starting
// with it.
func MatchesSearch(name string, words []string) bool {
	nw := SearchWords(name)
	for _, w := range words {
		if !slices.ContainsFunc(nw, func(x string) bool { return strings.HasPrefix(x, w) }) {
			return false
		}
	}
	return true
}

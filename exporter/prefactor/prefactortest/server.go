// Package prefactortest is a fake Prefactor API for tests, in the manner of
// net/http/httptest: NewServer starts it on a loopback port, URL is its
// base URL, Close stops it.
//
//	srv := prefactortest.NewServer()
//	defer srv.Close()
//	exp, _ := prefactor.New(prefactor.WithURL(srv.URL), prefactor.WithToken(srv.Token()),
//		prefactor.WithAgentID(srv.AgentID()), prefactor.WithEnvironmentID(srv.EnvironmentID()))
//
// It serves, under /api/v1: ping, agent instance register, start, finish,
// get and terminate, agent span create and finish, and the bulk endpoint.
// Anything else is 404 not_found.
//
// Requests are validated strictly against the API reference:
//
//   - the bearer token (missing: 401 not_authenticated; wrong: 401
//     bad_authtoken);
//   - the body is a JSON object (else 400 bad_request) without unknown
//     fields (400 bad_request, with the field in "errors");
//   - required fields, field types, enum values, PFIDs, RFC 3339
//     timestamps, and an idempotency_key of 1 to 64 characters on every
//     mutating request (422 validation_errors, with "errors" mapping each
//     field to its messages);
//   - client-chosen instance and span IDs carry the account partition;
//   - state transitions: start only from pending; an instance is finished
//     complete or failed from active, cancelled only from pending; a span
//     likewise (active to complete or failed, pending to cancelled); a
//     second finish, or a finish of a terminated instance, is 409
//     invalid_action;
//   - a span is not created cancelled, carries a result payload only when
//     finished, names a span type of its instance's schema version (when
//     the registration listed any), and its parent is a span of the same
//     instance (else 422); its instance exists (404) and is not finished
//     (409), though a terminated one still takes spans and says so in
//     "control".
//
// The protocol (decoding, checks, state machines, idempotency, bulk) is
// internal/prefactorapi's, over an in-memory store; this package adds the
// fault injection, the request log and the accessors.
//
// Idempotency: the server keeps, per key, a hash of the operation (the
// endpoint, the ID in the path and the request's fields; a bulk item and
// the single request of the same operation hash alike) with the answer.
// The same key and operation replays the stored answer without applying it
// again; the same key with another operation is 409
// idempotency_key_already_used. Error answers are stored and replayed
// too, except 404 not_found (the resource may appear later: clients retry
// it under the same key) and injected faults.
//
// Bulk items run in order, each like its single request, under their own
// keys; processing stops at the first item that fails, which is the last
// output. Outputs are keyed by idempotency key.
//
// The server stores what it accepted (Instances, Spans) and every request
// (Requests, Counts), and injects faults on demand: queued per endpoint
// (FailNext), random (SetRandomFaults), outages (Outage, SetDown), latency
// (SetLatency), and terminated instances (Terminate).
//
// The bulk item types of instance start and finish and of span finish
// ("agent_instances/start", "agent_instances/finish",
// "agent_spans/finish") are not documented by the API; they follow the
// documented "agent_instances/register" and "agent_spans/create", with the
// ID of the single request's path as a field (agent_instance_id,
// agent_span_id).
package prefactortest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"net/http"
	"net/http/httptest"
	"sync"
	"time"

	"github.com/agenttrace/agenttrace/internal/prefactorapi"
)

// Endpoint names an API operation, for fault injection and counts.
type Endpoint string

// Endpoints. Bulk items count under the endpoint of their operation in
// Counts.Items.
const (
	// EndpointPing is GET /api/v1/ping.
	EndpointPing Endpoint = "ping"
	// EndpointRegister is POST /api/v1/agent_instance/register.
	EndpointRegister Endpoint = "register"
	// EndpointStart is POST /api/v1/agent_instance/{id}/start.
	EndpointStart Endpoint = "start"
	// EndpointFinishInstance is POST /api/v1/agent_instance/{id}/finish.
	EndpointFinishInstance Endpoint = "finish_instance"
	// EndpointGetInstance is GET /api/v1/agent_instance/{id}.
	EndpointGetInstance Endpoint = "get_instance"
	// EndpointTerminate is POST /api/v1/agent_instance/{id}/terminate.
	EndpointTerminate Endpoint = "terminate"
	// EndpointRecordQuality is POST /api/v1/agent_instance/{id}/record_quality.
	EndpointRecordQuality Endpoint = "record_quality"
	// EndpointAgentContext is GET /api/v1/agent_instance/{id}/agent_context.
	EndpointAgentContext Endpoint = "agent_context"
	// EndpointCreateSpan is POST /api/v1/agent_spans.
	EndpointCreateSpan Endpoint = "create_span"
	// EndpointFinishSpan is POST /api/v1/agent_spans/{id}/finish.
	EndpointFinishSpan Endpoint = "finish_span"
	// EndpointBulk is POST /api/v1/bulk.
	EndpointBulk Endpoint = "bulk"
	// EndpointOther is any other request (answered 404 not_found).
	EndpointOther Endpoint = "other"
	// EndpointAny matches every endpoint in FailNext.
	EndpointAny Endpoint = "any"
)

// Fault is what the server does instead of (or after) answering normally.
type Fault struct {
	// Status answers with this status and the standard error body (or
	// Body). 0 keeps the real answer, unless Body is set.
	Status int
	// Body is sent instead of the answer (with Status, or 200 if Status is
	// 0): "not json", "<html>bad gateway</html>", a truncated JSON, ...
	Body string
	// ContentType of the fault's answer (default application/json).
	ContentType string
	// RetryAfter sets the Retry-After header, in seconds rounded up; 0
	// sends none.
	RetryAfter time.Duration
	// Delay waits before answering (to go past a client's timeout). With
	// no Status, Body or Drop, the request is then processed normally. The
	// wait ends early when the client gives up or the server closes.
	Delay time.Duration
	// Drop closes the connection without answering.
	Drop bool
	// AfterProcessing applies the fault after the request was processed
	// and stored: the client does not see its success, and its retry must
	// be an idempotent replay.
	AfterProcessing bool
}

// RandomFaults are faults drawn for each request with a seeded generator.
// Rates are probabilities in [0, 1]; the zero value turns them off.
type RandomFaults struct {
	// Seed seeds the generator: the same seed draws the same sequence.
	Seed uint64
	// Status503 and Status429 are the rates of answers with that status
	// (429 with Retry-After: RetryAfter), before processing.
	Status503, Status429 float64
	// Drop is the rate of closed connections, alternately before and after
	// processing.
	Drop float64
	// Slow is the rate of requests processed and then answered after
	// SlowDelay.
	Slow float64
	// RetryAfter goes with the 429s; SlowDelay is the delay of the slow
	// answers.
	RetryAfter, SlowDelay time.Duration
}

// Instance is an agent instance the server accepted.
type Instance struct {
	// ID, AgentID and EnvironmentID are PFIDs.
	ID, AgentID, EnvironmentID string
	// Purpose is live, smoke_test or eval (live when not given).
	Purpose string
	// Status is pending, active, complete, failed, cancelled or terminated.
	Status string
	// TerminationReason is the reason given to Terminate.
	TerminationReason string
	// AgentVersion and SchemaVersion are the objects sent at register
	// (nil when absent).
	AgentVersion, SchemaVersion json.RawMessage
	// StartedAt and FinishedAt are the recorded times (zero when unset).
	StartedAt, FinishedAt time.Time
	// Register is the accepted register body (for a bulk item, its fields
	// without "_type").
	Register json.RawMessage
}

// Span is a span the server accepted.
type Span struct {
	// ID and InstanceID are PFIDs.
	ID, InstanceID string
	// ParentID is "" for a root span.
	ParentID, SchemaName string
	// Status is pending, active, complete, failed or cancelled.
	Status string
	// Payload and ResultPayload are as sent (ResultPayload nil when none).
	Payload, ResultPayload json.RawMessage
	// StartedAt and FinishedAt are the recorded times (zero when unset).
	StartedAt, FinishedAt time.Time
	// SensitiveEncoding is the last sensitive_encoding sent, nil if none.
	SensitiveEncoding *bool
	// Creates and Finishes count accepted operations, replays excluded:
	// exactly once means Creates == 1 and Finishes <= 1.
	Creates, Finishes int
}

// Request is one HTTP request the server received.
type Request struct {
	// Method and Path are the request's (the path without the query).
	Method, Path string
	// Endpoint is the operation the request was routed to.
	Endpoint Endpoint
	// Status is the status answered; 0 if the connection was dropped (or
	// the request is still in progress).
	Status int
	// Fault reports an injected fault (outages included).
	Fault bool
	// Replayed reports an idempotent replay (for bulk: of at least one
	// item).
	Replayed bool
	// Header is the request's header.
	Header http.Header
	// Body is kept for the last 10,000 requests only.
	Body []byte
	// At is when the request arrived.
	At time.Time
}

// Counts summarise the requests.
type Counts struct {
	// Requests counts HTTP requests by endpoint.
	Requests map[Endpoint]int
	// Items counts bulk items by the endpoint of their operation.
	Items map[Endpoint]int
	// Replays counts idempotent replays (requests and bulk items).
	Replays int
	// Faults counts requests that met an injected fault.
	Faults int
	// Rejected counts error answers (4xx, and bulk item errors) by code.
	Rejected map[string]int
}

type config struct {
	token      string
	deployment bool
	noBulk     bool
	partition  uint32
	optKeys    bool
}

// Option configures NewServer.
type Option func(*config)

// WithToken sets the accepted token (default "pf-test-token").
func WithToken(token string) Option { return func(c *config) { c.token = token } }

// WithDeploymentToken makes the token deployment-scoped: register then
// needs no agent_id or environment_id (the server uses AgentID and
// EnvironmentID; other values are 403 not_permitted).
func WithDeploymentToken() Option { return func(c *config) { c.deployment = true } }

// WithoutBulk makes the bulk endpoint answer 404, like an older server.
func WithoutBulk() Option { return func(c *config) { c.noBulk = true } }

// WithOptionalKeys accepts single mutating requests without an
// idempotency_key, applying them without replay protection, as the API
// reference allows (the official TypeScript SDK 0.2.x sends none). By
// default the server requires one, as this project's exporter always sends
// it; bulk items need one either way.
func WithOptionalKeys() Option { return func(c *config) { c.optKeys = true } }

// WithPartition sets the account partition of the IDs the server makes
// and of the IDs it accepts from clients (masked to 30 bits; default
// 123456789).
func WithPartition(p uint32) Option { return func(c *config) { c.partition = p & (1<<30 - 1) } }

// Server is a fake Prefactor API. Its methods are safe for concurrent use.
type Server struct {
	// URL is the base URL, without /api/v1.
	URL string

	cfg    config
	hs     *httptest.Server
	closed chan struct{}
	once   sync.Once

	accountID, agentID, envID string

	api   *prefactorapi.API
	store *prefactorapi.MemoryStore

	mu        sync.Mutex
	requests  []Request
	counts    Counts
	failNext  map[Endpoint][]Fault
	random    RandomFaults
	rng       *mrand.Rand
	dropFlip  bool
	downUntil time.Time
	down      bool
	latency   time.Duration
}

// NewServer starts a server on a loopback port (127.0.0.1). The protocol
// is prefactorapi's, over an in-memory store.
func NewServer(opts ...Option) *Server {
	cfg := config{token: "pf-test-token", partition: 123456789}
	for _, o := range opts {
		if o != nil {
			o(&cfg)
		}
	}
	s := &Server{
		cfg:      cfg,
		closed:   make(chan struct{}),
		store:    prefactorapi.NewMemoryStore(),
		counts:   Counts{Requests: map[Endpoint]int{}, Items: map[Endpoint]int{}, Rejected: map[string]int{}},
		failNext: map[Endpoint][]Fault{},
	}
	s.accountID = prefactorapi.NewPFID(cfg.partition)
	s.agentID = prefactorapi.NewPFID(cfg.partition)
	s.envID = prefactorapi.NewPFID(cfg.partition)
	api, err := prefactorapi.New(s.store, prefactorapi.Config{AccountID: s.accountID, Deployment: cfg.deployment,
		RequireIDs: true, RequireKeys: !cfg.optKeys, AgentID: s.agentID, EnvironmentID: s.envID})
	if err != nil {
		panic(err) // the account ID is made above: a PFID
	}
	s.api = api
	s.hs = httptest.NewServer(http.HandlerFunc(s.serve))
	s.URL = s.hs.URL
	return s
}

// Close stops the server; requests in flight, including delayed ones, end.
// It is idempotent.
func (s *Server) Close() {
	s.once.Do(func() {
		close(s.closed)
		s.hs.CloseClientConnections()
		s.hs.Close()
	})
}

// Token returns the accepted token.
func (s *Server) Token() string { return s.cfg.token }

// AgentID returns the agent's PFID (in the account partition).
func (s *Server) AgentID() string { return s.agentID }

// EnvironmentID returns the environment's PFID (in the account partition).
func (s *Server) EnvironmentID() string { return s.envID }

// AccountID returns the account's PFID.
func (s *Server) AccountID() string { return s.accountID }

// Partition returns the account partition.
func (s *Server) Partition() uint32 { return s.cfg.partition }

// FailNext queues faults for the next requests to ep, in order. Faults for
// EndpointAny apply to any request after those queued for its own
// endpoint.
func (s *Server) FailNext(ep Endpoint, faults ...Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failNext[ep] = append(s.failNext[ep], faults...)
}

// SetRandomFaults sets random faults; the zero value turns them off.
func (s *Server) SetRandomFaults(f RandomFaults) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.random = f
	s.rng = mrand.New(mrand.NewPCG(f.Seed, f.Seed^0x9e3779b97f4a7c15))
	s.dropFlip = false
}

// Outage answers every request with 503 for d from now (d <= 0 ends an
// outage).
func (s *Server) Outage(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.downUntil = time.Now().Add(d)
}

// SetDown answers every request with 503 until SetDown(false).
func (s *Server) SetDown(down bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.down = down
}

// SetLatency delays every answer by d.
func (s *Server) SetLatency(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.latency = d
}

// ErrNotFound is returned by Terminate for an unknown instance.
var ErrNotFound = errors.New("prefactortest: not found")

// ErrInvalidAction is returned by Terminate for an instance already
// finished or terminated.
var ErrInvalidAction = errors.New("prefactortest: invalid action")

// Terminate terminates an instance (pending or active), as an operator
// would: later span answers for it carry control.terminate with the
// reason, and GET shows it terminated.
func (s *Server) Terminate(instanceID, reason string) error {
	err := s.api.Terminate(context.Background(), instanceID, reason)
	var e *prefactorapi.Error
	switch {
	case err == nil:
		return nil
	case errors.As(err, &e) && e.Code == prefactorapi.CodeNotFound:
		return fmt.Errorf("%w: no instance %q", ErrNotFound, instanceID)
	case errors.As(err, &e) && e.Code == prefactorapi.CodeInvalidAction:
		return fmt.Errorf("%w: %s", ErrInvalidAction, e.Message)
	}
	return err
}

// view reads the store.
func (s *Server) view(fn func(tx prefactorapi.ReadTx) error) {
	_ = s.store.View(context.Background(), fn) // the memory store fails only once closed
}

func instanceOf(r *prefactorapi.InstanceRecord) Instance {
	in := Instance{ID: r.ID, AgentID: r.AgentID, EnvironmentID: r.EnvironmentID, Purpose: r.Purpose, Status: r.Status,
		TerminationReason: r.TerminationReason, StartedAt: r.StartedAt, FinishedAt: r.FinishedAt, Register: r.Register}
	var reg struct {
		AgentVersion       json.RawMessage `json:"agent_version"`
		AgentSchemaVersion json.RawMessage `json:"agent_schema_version"`
	}
	_ = json.Unmarshal(r.Register, &reg)
	if string(reg.AgentVersion) != "null" {
		in.AgentVersion = reg.AgentVersion
	}
	if string(reg.AgentSchemaVersion) != "null" {
		in.SchemaVersion = reg.AgentSchemaVersion
	}
	return in
}

func spanOf(r *prefactorapi.SpanRecord) Span {
	return Span{ID: r.ID, InstanceID: r.InstanceID, ParentID: r.ParentID, SchemaName: r.SchemaName, Status: r.Status,
		Payload: r.Payload, ResultPayload: r.ResultPayload, StartedAt: r.StartedAt, FinishedAt: r.FinishedAt,
		SensitiveEncoding: r.SensitiveEncoding, Creates: r.Creates, Finishes: r.Finishes}
}

// Instances returns the accepted instances in registration order. The
// raw JSON fields share bytes the server never changes: do not modify
// them.
func (s *Server) Instances() []Instance {
	out := []Instance{}
	s.view(func(tx prefactorapi.ReadTx) error {
		recs, _, err := tx.ListInstances(prefactorapi.InstanceQuery{})
		for i := range recs {
			out = append(out, instanceOf(&recs[i]))
		}
		return err
	})
	return out
}

// Instance returns one accepted instance.
func (s *Server) Instance(id string) (Instance, bool) {
	var in Instance
	found := false
	s.view(func(tx prefactorapi.ReadTx) error {
		r, ok, err := tx.Instance(id)
		if ok {
			in, found = instanceOf(&r), true
		}
		return err
	})
	return in, found
}

// Spans returns an instance's accepted spans in creation order.
func (s *Server) Spans(instanceID string) []Span {
	out := []Span{}
	if instanceID == "" {
		return out
	}
	s.view(func(tx prefactorapi.ReadTx) error {
		recs, err := tx.ListSpans(instanceID)
		for i := range recs {
			out = append(out, spanOf(&recs[i]))
		}
		return err
	})
	return out
}

// AllSpans returns every accepted span in creation order. The raw JSON
// fields share bytes the server never changes: do not modify them.
func (s *Server) AllSpans() []Span {
	out := []Span{}
	s.view(func(tx prefactorapi.ReadTx) error {
		recs, err := tx.ListSpans("")
		for i := range recs {
			out = append(out, spanOf(&recs[i]))
		}
		return err
	})
	return out
}

// Span returns one accepted span.
func (s *Server) Span(id string) (Span, bool) {
	var sp Span
	found := false
	s.view(func(tx prefactorapi.ReadTx) error {
		r, ok, err := tx.Span(id)
		if ok {
			sp, found = spanOf(&r), true
		}
		return err
	})
	return sp, found
}

// Requests returns every request received, in order of arrival.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Request, len(s.requests))
	for i, r := range s.requests {
		r.Header = r.Header.Clone()
		if r.Body != nil {
			r.Body = append([]byte(nil), r.Body...)
		}
		out[i] = r
	}
	return out
}

// Counts returns a summary of the requests.
func (s *Server) Counts() Counts {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := Counts{Requests: make(map[Endpoint]int, len(s.counts.Requests)), Items: make(map[Endpoint]int, len(s.counts.Items)),
		Rejected: make(map[string]int, len(s.counts.Rejected)), Replays: s.counts.Replays, Faults: s.counts.Faults}
	for k, v := range s.counts.Requests {
		c.Requests[k] = v
	}
	for k, v := range s.counts.Items {
		c.Items[k] = v
	}
	for k, v := range s.counts.Rejected {
		c.Rejected[k] = v
	}
	return c
}

// Validate cross-checks what was stored: every span's instance exists, its
// parent exists in the same instance and was created before it, no span
// was created or finished more than once, and no span is still pending or
// active under a finished (complete, failed or cancelled) instance. It
// returns the problems joined (nil if none).
func (s *Server) Validate() error {
	var spans []Span
	instances := map[string]Instance{}
	for _, in := range s.Instances() {
		instances[in.ID] = in
	}
	spans = s.AllSpans()
	return validate(instances, spans)
}

// validate checks spans (in creation order) against their instances.
func validate(instances map[string]Instance, spans []Span) error {
	var errs []error
	pos := make(map[string]int, len(spans))
	byID := make(map[string]*Span, len(spans))
	for i := range spans {
		pos[spans[i].ID] = i
		byID[spans[i].ID] = &spans[i]
	}
	for i := range spans {
		sp := &spans[i]
		id := sp.ID
		in, ok := instances[sp.InstanceID]
		if !ok {
			errs = append(errs, fmt.Errorf("span %s: unknown instance %s", id, sp.InstanceID))
		} else if (in.Status == "complete" || in.Status == "failed" || in.Status == "cancelled") &&
			(sp.Status == "pending" || sp.Status == "active") {
			errs = append(errs, fmt.Errorf("span %s: still %s under instance %s, which is %s", id, sp.Status, in.ID, in.Status))
		}
		if sp.ParentID != "" {
			p, ok := byID[sp.ParentID]
			switch {
			case !ok:
				errs = append(errs, fmt.Errorf("span %s: unknown parent %s", id, sp.ParentID))
			case p.InstanceID != sp.InstanceID:
				errs = append(errs, fmt.Errorf("span %s: parent %s in another instance", id, sp.ParentID))
			case pos[sp.ParentID] > i:
				errs = append(errs, fmt.Errorf("span %s: created before its parent %s", id, sp.ParentID))
			}
		}
		if sp.Creates != 1 {
			errs = append(errs, fmt.Errorf("span %s: created %d times", id, sp.Creates))
		}
		if sp.Finishes > 1 {
			errs = append(errs, fmt.Errorf("span %s: finished %d times", id, sp.Finishes))
		}
	}
	return errors.Join(errs...)
}

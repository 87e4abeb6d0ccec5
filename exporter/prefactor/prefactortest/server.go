// Package prefactortest is a fake Prefactor API for tests, in the manner of
// net/http/httptest: NewServer starts it on a loopback port, URL is its
// base URL, Close stops it.
//
//	srv := prefactortest.NewServer()
//	defer srv.Close()
//	exp, _ := prefactor.New(prefactor.WithURL(srv.URL), prefactor.WithToken(srv.Token()),
//		prefactor.WithAgentID(srv.AgentID()), prefactor.WithEnvironmentID(srv.EnvironmentID()))
//
// It serves ping, instance register/start/finish/get/terminate, span
// create/finish and the bulk endpoint, and validates strictly what the
// reference of the API says: the bearer token, required fields, enum
// values, PFID formats, RFC 3339 timestamps, state transitions (cancelled
// only from pending; a second finish is 409 invalid_action), a parent in
// the same instance, a result payload only for finished statuses, schema
// names registered with the instance, and idempotency keys (the same key
// and request replays the stored answer; the same key with another request
// is 409 idempotency_key_already_used). Bulk items run in order and stop
// at the first error; outputs are keyed by idempotency key.
//
// It stores what it accepted (Instances, Spans) and every request
// (Requests, Counts), and injects faults on demand: status sequences per
// endpoint (FailNext), random faults (SetRandomFaults), outages (Outage,
// SetDown), latency (SetLatency), and terminated instances (Terminate).
//
// The bulk item types of instance start and finish and of span finish
// ("agent_instances/start", "agent_instances/finish",
// "agent_spans/finish") are not documented by the API; they follow the
// documented "agent_instances/register" and "agent_spans/create".
package prefactortest

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"fmt"
	mrand "math/rand/v2"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"time"
)

// Endpoint names an API operation, for fault injection and counts.
type Endpoint string

// Endpoints.
const (
	EndpointPing           Endpoint = "ping"
	EndpointRegister       Endpoint = "register"
	EndpointStart          Endpoint = "start"
	EndpointFinishInstance Endpoint = "finish_instance"
	EndpointGetInstance    Endpoint = "get_instance"
	EndpointTerminate      Endpoint = "terminate"
	EndpointCreateSpan     Endpoint = "create_span"
	EndpointFinishSpan     Endpoint = "finish_span"
	EndpointBulk           Endpoint = "bulk"
	EndpointOther          Endpoint = "other"
	// EndpointAny matches every endpoint in FailNext.
	EndpointAny Endpoint = "any"
)

// Fault is what the server does instead of (or after) answering normally.
type Fault struct {
	// Status answers with this status and the standard error body (or
	// Body). 0 keeps the real answer.
	Status int
	// Body is sent instead of the answer (with Status, or 200 if Status is
	// 0): "not json", "<html>...", a truncated JSON, ...
	Body string
	// ContentType of Body (default application/json).
	ContentType string
	// RetryAfter sets the Retry-After header, in seconds rounded up.
	RetryAfter time.Duration
	// Delay waits before answering (to go past a client's timeout).
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
	Seed uint64
	// Status503 and Status429 answer with that status (429 with
	// Retry-After: RetryAfter).
	Status503, Status429 float64
	// Drop closes the connection, half the time before processing, half
	// after.
	Drop float64
	// Slow processes the request and answers after SlowDelay.
	Slow                  float64
	RetryAfter, SlowDelay time.Duration
}

// Instance is an agent instance the server accepted.
type Instance struct {
	ID, AgentID, EnvironmentID, Purpose, Status, TerminationReason string
	// AgentVersion and SchemaVersion are the objects sent at register.
	AgentVersion, SchemaVersion json.RawMessage
	StartedAt, FinishedAt       time.Time
	// Register is the accepted register body.
	Register json.RawMessage
}

// Span is a span the server accepted.
type Span struct {
	ID, InstanceID, ParentID, SchemaName, Status string
	Payload, ResultPayload                       json.RawMessage
	StartedAt, FinishedAt                        time.Time
	SensitiveEncoding                            *bool
	// Creates and Finishes count accepted operations, replays excluded:
	// exactly once means Creates == 1 and Finishes <= 1.
	Creates, Finishes int
}

// Request is one HTTP request the server received.
type Request struct {
	Method, Path string
	Endpoint     Endpoint
	// Status is the status answered; 0 if the connection was dropped.
	Status int
	// Fault reports an injected fault; Replayed an idempotent replay (for
	// bulk: at least one item).
	Fault, Replayed bool
	Header          http.Header
	// Body is kept for the last 10,000 requests only.
	Body []byte
	At   time.Time
}

// Counts summarise the requests.
type Counts struct {
	Requests map[Endpoint]int
	Replays  int
	Faults   int
	// Rejected counts error answers (4xx, and bulk item errors) by code.
	Rejected map[string]int
}

type config struct {
	token      string
	deployment bool
	noBulk     bool
	partition  uint32
}

// Option configures NewServer.
type Option func(*config)

// WithToken sets the accepted token (default "pf-test-token").
func WithToken(token string) Option { return func(c *config) { c.token = token } }

// WithDeploymentToken makes the token deployment-scoped: register then
// needs no agent_id or environment_id.
func WithDeploymentToken() Option { return func(c *config) { c.deployment = true } }

// WithoutBulk makes the bulk endpoint answer 404, like an older server.
func WithoutBulk() Option { return func(c *config) { c.noBulk = true } }

// WithPartition sets the account partition of the IDs the server makes
// (masked to 30 bits).
func WithPartition(p uint32) Option { return func(c *config) { c.partition = p & (1<<30 - 1) } }

// Server is a fake Prefactor API. Its methods are safe for concurrent use.
type Server struct {
	// URL is the base URL, without /api/v1.
	URL string

	cfg    config
	hs     *httptest.Server
	closed chan struct{}
	once   sync.Once

	agentID, envID string

	mu        sync.Mutex
	instances map[string]*instance
	instOrder []string
	spans     map[string]*Span
	spanOrder []string
	byInst    map[string][]string
	idem      map[string]idemEntry
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

type instance struct {
	Instance
	schemaNames map[string]bool
	counts      map[string]int
	inserted    time.Time
}

type idemEntry struct {
	hash   [32]byte
	status int
	body   []byte
}

// NewServer starts a server on a loopback port.
func NewServer(opts ...Option) *Server {
	cfg := config{token: "pf-test-token", partition: 123456789}
	for _, o := range opts {
		if o != nil {
			o(&cfg)
		}
	}
	s := &Server{
		cfg:       cfg,
		closed:    make(chan struct{}),
		instances: map[string]*instance{},
		spans:     map[string]*Span{},
		byInst:    map[string][]string{},
		idem:      map[string]idemEntry{},
		counts:    Counts{Requests: map[Endpoint]int{}, Rejected: map[string]int{}},
		failNext:  map[Endpoint][]Fault{},
	}
	s.agentID = s.newPFID()
	s.envID = s.newPFID()
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

// EnvironmentID returns the environment's PFID.
func (s *Server) EnvironmentID() string { return s.envID }

// Partition returns the account partition.
func (s *Server) Partition() uint32 { return s.cfg.partition }

const crockford = "0123456789abcdefghjkmnpqrstvwxyz"

// newPFID makes a PFID now, in the account partition.
func (s *Server) newPFID() string {
	var b [20]byte
	ms := uint64(time.Now().UnixMilli())
	binary.BigEndian.PutUint16(b[0:2], uint16(ms>>32))
	binary.BigEndian.PutUint32(b[2:6], uint32(ms))
	binary.BigEndian.PutUint32(b[6:10], s.cfg.partition)
	_, _ = rand.Read(b[10:])
	// 160 bits; the 2 padding bits after the timestamp are skipped.
	out := make([]byte, 0, 32)
	hi := uint64(b[0])<<40 | uint64(b[1])<<32 | uint64(binary.BigEndian.Uint32(b[2:6]))
	for shift := 45; shift >= 0; shift -= 5 {
		out = append(out, crockford[(hi>>uint(shift))&31])
	}
	p := binary.BigEndian.Uint32(b[6:10]) & (1<<30 - 1)
	for shift := 25; shift >= 0; shift -= 5 {
		out = append(out, crockford[(p>>uint(shift))&31])
	}
	var r uint64
	bits := 0
	for _, c := range b[10:] {
		r = r<<8 | uint64(c)
		bits += 8
		for bits >= 5 {
			bits -= 5
			out = append(out, crockford[(r>>uint(bits))&31])
		}
	}
	return string(out)
}

// validPFID checks the canonical form: ^[0-7][0-9a-hjkmnp-tv-z]{31}$.
func validPFID(v string) bool {
	if len(v) != 32 || v[0] < '0' || v[0] > '7' {
		return false
	}
	for i := 1; i < 32; i++ {
		if !strings.ContainsRune(crockford, rune(v[i])) {
			return false
		}
	}
	return true
}

// FailNext queues faults for the next requests to ep, in order.
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
}

// Outage answers every request with 503 for d from now.
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

// Terminate terminates an instance: later span answers for it carry
// control.terminate, and GET shows it terminated.
func (s *Server) Terminate(instanceID, reason string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	in, ok := s.instances[instanceID]
	if !ok {
		return fmt.Errorf("prefactortest: no instance %q", instanceID)
	}
	if in.Status == "complete" || in.Status == "failed" || in.Status == "cancelled" || in.Status == "terminated" {
		return fmt.Errorf("prefactortest: instance %q is %s", instanceID, in.Status)
	}
	in.Status, in.TerminationReason, in.FinishedAt = "terminated", reason, time.Now().UTC()
	return nil
}

// Instances returns the accepted instances in registration order.
func (s *Server) Instances() []Instance {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Instance, 0, len(s.instOrder))
	for _, id := range s.instOrder {
		out = append(out, s.instances[id].Instance)
	}
	return out
}

// Instance returns one accepted instance.
func (s *Server) Instance(id string) (Instance, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	in, ok := s.instances[id]
	if !ok {
		return Instance{}, false
	}
	return in.Instance, true
}

// Spans returns an instance's accepted spans in creation order.
func (s *Server) Spans(instanceID string) []Span {
	s.mu.Lock()
	defer s.mu.Unlock()
	ids := s.byInst[instanceID]
	out := make([]Span, 0, len(ids))
	for _, id := range ids {
		out = append(out, *s.spans[id])
	}
	return out
}

// AllSpans returns every accepted span in creation order.
func (s *Server) AllSpans() []Span {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Span, 0, len(s.spanOrder))
	for _, id := range s.spanOrder {
		out = append(out, *s.spans[id])
	}
	return out
}

// Span returns one accepted span.
func (s *Server) Span(id string) (Span, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sp, ok := s.spans[id]
	if !ok {
		return Span{}, false
	}
	return *sp, true
}

// Requests returns every request received, in order.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.requests...)
}

// Counts returns a summary of the requests.
func (s *Server) Counts() Counts {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := Counts{Requests: map[Endpoint]int{}, Rejected: map[string]int{}, Replays: s.counts.Replays, Faults: s.counts.Faults}
	for k, v := range s.counts.Requests {
		c.Requests[k] = v
	}
	for k, v := range s.counts.Rejected {
		c.Rejected[k] = v
	}
	return c
}

// Validate cross-checks what was stored: every span's instance exists,
// its parent exists in the same instance and was created before it, and
// no span was created or finished more than once.
func (s *Server) Validate() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var errs []string
	pos := map[string]int{}
	for i, id := range s.spanOrder {
		pos[id] = i
	}
	for i, id := range s.spanOrder {
		sp := s.spans[id]
		if _, ok := s.instances[sp.InstanceID]; !ok {
			errs = append(errs, fmt.Sprintf("span %s: unknown instance %s", id, sp.InstanceID))
		}
		if sp.ParentID != "" {
			p, ok := s.spans[sp.ParentID]
			switch {
			case !ok:
				errs = append(errs, fmt.Sprintf("span %s: unknown parent %s", id, sp.ParentID))
			case p.InstanceID != sp.InstanceID:
				errs = append(errs, fmt.Sprintf("span %s: parent %s in another instance", id, sp.ParentID))
			case pos[sp.ParentID] > i:
				errs = append(errs, fmt.Sprintf("span %s: created before its parent %s", id, sp.ParentID))
			}
		}
		if sp.Creates != 1 || sp.Finishes > 1 {
			errs = append(errs, fmt.Sprintf("span %s: created %d times, finished %d times", id, sp.Creates, sp.Finishes))
		}
	}
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("prefactortest: %d problems:\n%s", len(errs), strings.Join(errs, "\n"))
}

// objectHash identifies a bulk item for idempotency: its endpoint and its
// fields (sorted) with their raw values.
func objectHash(ep Endpoint, obj map[string]json.RawMessage) [32]byte {
	keys := make([]string, 0, len(obj))
	for k := range obj {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	h := sha256.New()
	h.Write([]byte(ep))
	for _, k := range keys {
		h.Write([]byte{0})
		h.Write([]byte(k))
		h.Write([]byte{0})
		h.Write(obj[k])
	}
	var out [32]byte
	h.Sum(out[:0])
	return out
}

// requestHash identifies a request for idempotency.
func requestHash(ep Endpoint, path string, body []byte) [32]byte {
	h := sha256.New()
	h.Write([]byte(ep))
	h.Write([]byte{0})
	h.Write([]byte(path))
	h.Write([]byte{0})
	h.Write(body)
	var out [32]byte
	h.Sum(out[:0])
	return out
}

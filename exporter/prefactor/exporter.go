// Package prefactor exports agenttrace instances and spans to the Prefactor
// agent-observability API.
//
//	exp, err := prefactor.New() // PREFACTOR_API_URL, PREFACTOR_API_TOKEN, PREFACTOR_AGENT_ID, ...
//	if err != nil {
//		return err
//	}
//	tracer, err := agenttrace.New(agenttrace.WithExporter(exp),
//		agenttrace.WithExportTimeout(3*time.Minute))
//
// An instance is registered (with the tracer's span types as its schema
// version, identified by a hash of their content), started and finished;
// spans are created when they start (or once, in their final state, when
// they start and end within one batch window) and finished when they end.
// The exporter chooses every ID itself (PFIDs built from the agenttrace
// ULIDs in the agent's partition), so a child never waits for its parent's
// answer, and batches go to the bulk endpoint, one instance's operations in
// order, several instances at once.
//
// Every mutating request carries an idempotency key that stays the same on
// every retry. Network errors, timeouts, 429 and 5xx are retried with
// exponential backoff and jitter, honouring Retry-After, within a deadline
// per operation; a circuit breaker stops requests during an outage and lets
// one probe through now and then. A 409 on a finish means it is finished
// already; 401 and 403 stop the exporter with one error (recording goes
// on; the records are counted as failed); any other 4xx drops that one
// record, counted and logged, and the rest flows on.
//
// The exporter is an agenttrace.Terminator: when the API says an instance
// was terminated (a control signal on a span answer, or a poll of the
// running instances every 30 seconds), the instance's context is cancelled
// with an *agenttrace.TerminatedError cause.
//
// The token never appears in logs, errors or Stats.
package prefactor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/agenttrace/agenttrace"
)

// Exporter sends records to the Prefactor API. Create it with New and pass
// it to agenttrace.WithExporter; the tracer calls Export and Shutdown.
type Exporter struct {
	cfg     config
	auth    string // "Bearer <token>"
	sdk     string
	breaker *breaker
	stats   counters

	partition   atomic.Int64 // -1 while unknown
	noBulk      atomic.Bool  // ModeAuto fell back to single requests
	stopped     atomic.Pointer[error]
	terminateFn func(agenttrace.ID, string) bool
	pinged      bool // on the Export goroutine only
	ownClient   bool // the HTTP client is ours to close

	mu       sync.Mutex
	serverID map[agenttrace.ID]string // IDs the server chose instead of ours
	// nServerID is len(serverID), read without the lock
	nServerID atomic.Int64
	running   map[agenttrace.ID]bool // instances started and not finished (polled)
	schemas   map[*agenttrace.SchemaVersion][]byte
	lastErrV  error
	lastErrT  time.Time
	logged    map[string]time.Time

	// Spans created pending on the tracer's side wait here until they
	// activate or are cancelled; ops of their descendants wait with them.
	// Used on the Export goroutine only.
	deferred map[agenttrace.ID]*deferred
	waitOn   map[agenttrace.ID]agenttrace.ID // span -> deferred ancestor

	pollOnce sync.Once
	pollStop chan struct{}
	pollDone chan struct{}
	shutOnce sync.Once
	shut     atomic.Bool
}

type deferred struct {
	data agenttrace.SpanData
	ops  []*op // descendants' operations, in order
}

type counters struct {
	requests, bulkRequests, retries         atomic.Uint64
	sent, rejected, gaveUp, unauthorized    atomic.Uint64
	replays, terminations, polls, pollFails atomic.Uint64
}

// Stats are the exporter's counters.
type Stats struct {
	// Requests counts HTTP requests made, retries and polls included.
	Requests uint64 `json:"requests"`
	// BulkRequests counts requests to the bulk endpoint.
	BulkRequests uint64 `json:"bulk_requests"`
	// Retries counts attempts that failed transiently and were retried.
	Retries uint64 `json:"retries"`
	// Operations counts API operations (register, start, create, finish,
	// ...) the API accepted.
	Operations uint64 `json:"operations"`
	// Rejected counts operations the API refused for good (a 4xx); their
	// records are dropped, counted and logged.
	Rejected uint64 `json:"rejected"`
	// GaveUp counts operations abandoned when their retry deadline or the
	// export context ran out.
	GaveUp uint64 `json:"gave_up"`
	// Unauthorized counts operations not sent because the token was
	// rejected.
	Unauthorized uint64 `json:"unauthorized"`
	// Terminations counts instances the API terminated.
	Terminations uint64 `json:"terminations"`
	// Polls and PollErrors count termination polls.
	Polls      uint64 `json:"polls"`
	PollErrors uint64 `json:"poll_errors"`
	// BreakerOpens counts times the circuit breaker opened; BreakerOpen is
	// its state now.
	BreakerOpens uint64 `json:"breaker_opens"`
	BreakerOpen  bool   `json:"breaker_open"`
	// Bulk reports whether batches go to the bulk endpoint.
	Bulk bool `json:"bulk"`
	// Stopped is the error that stopped the exporter ("" if running).
	Stopped string `json:"stopped,omitempty"`
	// LastError is the latest failure, retried or not.
	LastError   string    `json:"last_error,omitempty"`
	LastErrorAt time.Time `json:"last_error_at,omitzero"`
}

// New returns an exporter configured from the environment and opts. It
// makes no request: the token is checked on the exporter's goroutine
// before the first export. The error wraps ErrConfig for a malformed URL,
// an empty token or an agent or environment ID that is not a PFID.
func New(opts ...Option) (*Exporter, error) {
	cfg, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	sdk := append(append([]string(nil), cfg.sdkEntries...), "agenttrace-go@"+Version)
	e := &Exporter{
		cfg:      cfg,
		auth:     "Bearer " + cfg.token,
		sdk:      strings.Join(dedupe(sdk), " "),
		breaker:  newBreaker(cfg.breaker),
		serverID: map[agenttrace.ID]string{},
		running:  map[agenttrace.ID]bool{},
		schemas:  map[*agenttrace.SchemaVersion][]byte{},
		logged:   map[string]time.Time{},
		deferred: map[agenttrace.ID]*deferred{},
		waitOn:   map[agenttrace.ID]agenttrace.ID{},
		pollStop: make(chan struct{}),
		pollDone: make(chan struct{}),
	}
	e.partition.Store(-1)
	e.ownClient = !cfg.userClient
	if cfg.agentID != "" {
		p, _ := PFIDPartition(cfg.agentID)
		e.partition.Store(int64(p))
	}
	if cfg.mode == ModeSingle {
		e.noBulk.Store(true)
	}
	return e, nil
}

func dedupe(in []string) []string {
	seen := map[string]bool{}
	out := in[:0]
	for _, s := range in {
		if s = strings.TrimSpace(s); s != "" && !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

// Name returns "prefactor".
func (e *Exporter) Name() string { return "prefactor" }

// String describes the exporter without its token.
func (e *Exporter) String() string {
	return fmt.Sprintf("prefactor exporter (%s, %s mode)", e.cfg.url, e.cfg.mode)
}

// SetTerminate implements agenttrace.Terminator. The tracer calls it.
func (e *Exporter) SetTerminate(f func(agenttrace.ID, string) bool) { e.terminateFn = f }

// Retried reports retried attempts to the tracer's Stats.
func (e *Exporter) Retried() uint64 { return e.stats.retries.Load() }

// Stats returns the exporter's counters.
func (e *Exporter) Stats() Stats {
	s := Stats{
		Requests:     e.stats.requests.Load(),
		BulkRequests: e.stats.bulkRequests.Load(),
		Retries:      e.stats.retries.Load(),
		Operations:   e.stats.sent.Load(),
		Rejected:     e.stats.rejected.Load(),
		GaveUp:       e.stats.gaveUp.Load(),
		Unauthorized: e.stats.unauthorized.Load(),
		Terminations: e.stats.terminations.Load(),
		Polls:        e.stats.polls.Load(),
		PollErrors:   e.stats.pollFails.Load(),
		BreakerOpen:  e.breaker.isOpen(),
		Bulk:         !e.noBulk.Load(),
	}
	e.breaker.mu.Lock()
	s.BreakerOpens = e.breaker.opens
	e.breaker.mu.Unlock()
	if err := e.stoppedErr(); err != nil {
		s.Stopped = err.Error()
	}
	e.mu.Lock()
	if e.lastErrV != nil {
		s.LastError, s.LastErrorAt = e.lastErrV.Error(), e.lastErrT
	}
	e.mu.Unlock()
	return s
}

func (e *Exporter) stoppedErr() error {
	if p := e.stopped.Load(); p != nil {
		return *p
	}
	return nil
}

// stop stops the exporter for good with err (a rejected token).
func (e *Exporter) stop(err error) {
	err = fmt.Errorf("%w: %w", ErrStopped, err)
	if !e.stopped.CompareAndSwap(nil, &err) {
		return
	}
	e.lastErr(err)
	e.cfg.logger.Error("prefactor: exporter stopped: the API rejected the token; records are counted and discarded",
		slog.String("error", err.Error()))
	if e.cfg.onError != nil {
		e.cfg.onError(err)
	}
}

// lastErr records err as the latest failure.
func (e *Exporter) lastErr(err error) {
	e.mu.Lock()
	e.lastErrV, e.lastErrT = err, time.Now()
	e.mu.Unlock()
}

// report records, logs (at most once a minute per kind) and hands to the
// error handler an error that lost data.
func (e *Exporter) report(kind string, err error) {
	e.lastErr(err)
	e.mu.Lock()
	due := time.Since(e.logged[kind]) >= time.Minute
	if due {
		e.logged[kind] = time.Now()
	}
	e.mu.Unlock()
	if due {
		e.cfg.logger.Warn("prefactor: record dropped", slog.String("reason", kind), slog.String("error", err.Error()))
	}
	if e.cfg.onError != nil {
		e.cfg.onError(err)
	}
}

func (e *Exporter) partitionKnown() bool { return e.partition.Load() >= 0 }

// instanceID returns the wire ID of an instance.
func (e *Exporter) instanceID(id agenttrace.ID) string {
	if s, ok := e.learnedID(id); ok {
		return s
	}
	return PFID(id, uint32(max(e.partition.Load(), 0)))
}

// appendWireID appends the wire ID of an instance or span (see
// instanceID), without allocating. PFIDs need no JSON escaping.
func (e *Exporter) appendWireID(b []byte, id agenttrace.ID) []byte {
	if s, ok := e.learnedID(id); ok {
		return append(b, s...)
	}
	return appendPFID(b, id, uint32(max(e.partition.Load(), 0)))
}

// learnedID returns the ID the server chose for id, if it chose one: the
// lock is skipped while it never did, which is the common case.
func (e *Exporter) learnedID(id agenttrace.ID) (string, bool) {
	if e.nServerID.Load() == 0 {
		return "", false
	}
	e.mu.Lock()
	s, ok := e.serverID[id]
	e.mu.Unlock()
	return s, ok
}

// spanID returns the wire ID of a span.
func (e *Exporter) spanID(id agenttrace.ID) string { return e.instanceID(id) }

// learnID records the ID the server answered for one we sent (or did not
// send), and the partition if it was unknown.
func (e *Exporter) learnID(id agenttrace.ID, server string) {
	if !ValidPFID(server) {
		return
	}
	if !e.partitionKnown() {
		if p, err := PFIDPartition(server); err == nil {
			e.partition.CompareAndSwap(-1, int64(p))
		}
	}
	var sent [32]byte
	if server == string(e.appendWireID(sent[:0], id)) {
		return
	}
	server = strings.Clone(server) // kept: it must not pin the answer it came in
	e.mu.Lock()
	if len(e.serverID) >= 100_000 { // bounded: forget the oldest half at random
		n := 0
		for k := range e.serverID {
			delete(e.serverID, k)
			if n++; n >= 50_000 {
				break
			}
		}
	}
	e.serverID[id] = server
	e.nServerID.Store(int64(len(e.serverID)))
	e.mu.Unlock()
}

// schemaJSON encodes a schema version once.
func (e *Exporter) schemaJSON(sv *agenttrace.SchemaVersion) []byte {
	e.mu.Lock()
	defer e.mu.Unlock()
	if b, ok := e.schemas[sv]; ok {
		return b
	}
	b, err := json.Marshal(sv)
	if err != nil {
		b = []byte(`{}`)
	}
	e.schemas[sv] = b
	return b
}

// agentVersion picks the agent name and version external identifier.
func (e *Exporter) agentVersion(a agenttrace.Agent) (name, version string) {
	pick := func(vals ...string) string {
		for _, v := range vals {
			if v != "" {
				return v
			}
		}
		return ""
	}
	return pick(e.cfg.agentName, a.Name, e.cfg.envAgentName, "agent"),
		pick(e.cfg.agentVers, a.Version, e.cfg.envAgent, "v1.0.0")
}

// Shutdown stops the termination poll. The tracer calls it after the last
// Export. It reports spans still waiting to become active.
func (e *Exporter) Shutdown(ctx context.Context) error {
	var err error
	e.shutOnce.Do(func() {
		e.shut.Store(true)
		close(e.pollStop)
		e.pollOnce.Do(func() { close(e.pollDone) }) // never started
		select {
		case <-e.pollDone:
		case <-ctx.Done():
			err = ctx.Err()
		}
		if e.ownClient {
			e.cfg.client.CloseIdleConnections()
		}
		if n := len(e.deferred); n > 0 {
			err = errors.Join(err, fmt.Errorf("prefactor: %d pending spans never became active or were cancelled; not sent", n))
		}
	})
	return err
}

// ErrShutdown is returned by Export after Shutdown.
var ErrShutdown = errors.New("prefactor: exporter shut down")

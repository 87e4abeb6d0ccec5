// Package prefactor exports agenttrace instances and spans to the Prefactor
// agent-observability API.
//
//	exp, err := prefactor.New() // PREFACTOR_API_URL, PREFACTOR_API_TOKEN, PREFACTOR_AGENT_ID, ...
//	if err != nil {
//		return err
//	}
//	tracer, err := agenttrace.New(agenttrace.WithExporter(exp))
//
// An instance is registered (with the tracer's span types as its schema
// version, identified by a hash of their content), started and finished;
// spans are created when they start (or once, in their final state, when
// they start and end within one batch window) and finished when they end.
// The exporter chooses every ID itself (PFIDs built from the agenttrace
// ULIDs in the agent's partition), so a child never waits for its parent's
// answer, and an answer that gives one of its IDs another value is not
// believed (ErrIDMismatch).
//
// The exporter is an agenttrace.AsyncExporter. Each instance has a lane:
// its operations go in order (as bulk requests where the server has the
// bulk endpoint), several lanes at once, so a slow instance holds up only
// itself; each record is reported to the tracer when it is delivered,
// refused or given up, so the tracer's Stats count what reached the server.
//
// Every mutating request carries an idempotency key that stays the same on
// every retry. Network errors, timeouts, 429 and 5xx are retried with
// exponential backoff and jitter, honouring Retry-After; an operation gives
// up Retry.Deadline after it reached the exporter, and nothing else cuts it
// short (the tracer's export timeout does not apply). A circuit breaker
// stops requests during an outage and lets one probe through per cooldown;
// its success releases every lane at once. A 409 on a finish means it is
// finished already; 401 and 403 stop the exporter with one error
// (recording goes on; the records are counted as failed); any other 4xx
// fails that one record, counted and logged, and the rest flows on.
//
// The exporter is an agenttrace.Terminator: when the API says an instance
// was terminated (a control signal on a span answer, or a poll of the
// running instances every 30 seconds), the instance's context is cancelled
// with an *agenttrace.TerminatedError cause.
//
// The token never appears in logs, errors, Stats, String or GoString.
package prefactor

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/agenttrace/agenttrace"
)

// Exporter sends records to the Prefactor API. Create it with New and pass
// it to agenttrace.WithExporter; the tracer calls ExportAsync and Shutdown.
// It prints without its token (String, GoString) and keeps the token out
// of every error and log line it makes.
type Exporter struct {
	cfg     config
	auth    func() string // "Bearer <token>": a func, so no printing of the struct shows it
	sdk     string
	breaker *breaker
	clock   clock
	stats   counters

	partition   atomic.Int64 // -1 while unknown
	noBulk      atomic.Bool  // ModeAuto fell back to single requests
	stopped     atomic.Pointer[error]
	terminateFn func(agenttrace.ID, string) bool
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
	watched   context.Context // the last context ExportAsync was given

	// planMu serializes planning; pending holds the spans created pending
	// on the tracer's side until they activate or are cancelled, with the
	// operations of their descendants.
	planMu  sync.Mutex
	pending pendingSpans
	// instances holds the data of the instances started and not ended, for
	// the "instance" object of their root spans. Used by planRecord only.
	instances map[agenttrace.ID]*agenttrace.InstanceData

	lanesMu sync.Mutex
	lanes   map[agenttrace.ID]*lane
	slots   chan struct{} // WithConcurrency lanes send at once
	wg      sync.WaitGroup
	// ctx ends when the lanes must stop (Shutdown's context ended).
	ctx       context.Context
	cancel    context.CancelFunc
	pingOnce  sync.Once
	bigAnswer chan struct{} // the large-answer token (see smallAnswer)

	pollOnce sync.Once
	pollStop chan struct{}
	pollDone chan struct{}
	shutOnce sync.Once
	shut     atomic.Bool
}

type counters struct {
	requests, bulkRequests, retries      atomic.Uint64
	sent, rejected, gaveUp, unauthorized atomic.Uint64
	skipped, mismatches                  atomic.Uint64
	terminations, polls, pollFails       atomic.Uint64
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
	// records fail, counted and logged.
	Rejected uint64 `json:"rejected"`
	// GaveUp counts operations abandoned because their retry deadline
	// (Retry.Deadline from when they reached the exporter) passed.
	GaveUp uint64 `json:"gave_up"`
	// Skipped counts operations not sent because what they depend on (the
	// instance, the span's start or its parent) was not delivered.
	Skipped uint64 `json:"skipped"`
	// Unauthorized counts operations not sent because the token was
	// rejected.
	Unauthorized uint64 `json:"unauthorized"`
	// IDMismatches counts answers that gave an operation another ID than
	// the one the exporter chose (reported, not believed).
	IDMismatches uint64 `json:"id_mismatches"`
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
// makes no request: the token is checked before the first operation. The
// error wraps ErrConfig for a malformed URL, an empty token or one with
// control characters, or an agent or environment ID that is not a PFID;
// it never shows the token.
func New(opts ...Option) (*Exporter, error) {
	cfg, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	sdk := append(append([]string(nil), cfg.sdkEntries...), "agenttrace-go@"+Version)
	bearer := "Bearer " + cfg.token()
	e := &Exporter{
		cfg:       cfg,
		auth:      func() string { return bearer },
		sdk:       strings.Join(dedupe(sdk), " "),
		clock:     cfg.clock,
		breaker:   newBreaker(cfg.breaker, cfg.clock),
		serverID:  map[agenttrace.ID]string{},
		running:   map[agenttrace.ID]bool{},
		schemas:   map[*agenttrace.SchemaVersion][]byte{},
		logged:    map[string]time.Time{},
		lanes:     map[agenttrace.ID]*lane{},
		slots:     make(chan struct{}, cfg.concurrency),
		bigAnswer: make(chan struct{}, 1),
		pollStop:  make(chan struct{}),
		pollDone:  make(chan struct{}),
	}
	e.pending.init()
	e.ctx, e.cancel = context.WithCancel(context.Background())
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

// String describes the exporter without its token (nor any credentials
// in the URL).
func (e *Exporter) String() string {
	return fmt.Sprintf("prefactor exporter (%s, %s mode)", redactURL(e.cfg.url), e.cfg.mode)
}

// GoString is String, so that %#v does not print the exporter's fields.
func (e *Exporter) GoString() string { return e.String() }

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
		Skipped:      e.stats.skipped.Load(),
		Unauthorized: e.stats.unauthorized.Load(),
		IDMismatches: e.stats.mismatches.Load(),
		Terminations: e.stats.terminations.Load(),
		Polls:        e.stats.polls.Load(),
		PollErrors:   e.stats.pollFails.Load(),
		BreakerOpen:  e.breaker.isOpen(),
		Bulk:         !e.noBulk.Load(),
	}
	s.BreakerOpens = e.breaker.openCount()
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
	err = e.scrub(fmt.Errorf("%w: %w", ErrStopped, err))
	if !e.stopped.CompareAndSwap(nil, &err) {
		return
	}
	e.lastErr(err)
	e.log().Error("prefactor: exporter stopped: the API rejected the token; records are counted and discarded",
		slog.String("error", err.Error()))
	if e.cfg.onError != nil {
		e.cfg.onError(err)
	}
}

// lastErr records err as the latest failure.
func (e *Exporter) lastErr(err error) {
	err = e.scrub(err)
	e.mu.Lock()
	e.lastErrV, e.lastErrT = err, time.Now()
	e.mu.Unlock()
}

// report records, logs (at most once a minute per kind) and hands to the
// error handler an error that lost data.
func (e *Exporter) report(kind string, err error) {
	err = e.scrub(err)
	e.lastErr(err)
	e.mu.Lock()
	due := time.Since(e.logged[kind]) >= time.Minute
	if due {
		e.logged[kind] = time.Now()
	}
	e.mu.Unlock()
	if due {
		e.log().Warn("prefactor: record not delivered", slog.String("reason", kind), slog.String("error", err.Error()))
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
	return cmp.Or(e.cfg.agentName, a.Name, e.cfg.envAgentName, "agent"),
		cmp.Or(e.cfg.agentVers, a.Version, e.cfg.envAgent, "v1.0.0")
}

// Shutdown waits until the lanes delivered or gave up on every operation
// (each gives up Retry.Deadline after it reached the exporter, so against
// a dead server Shutdown returns within that deadline), or until ctx ends:
// then in-flight requests are cancelled and waited for, and what was not
// reported is left to the tracer, which counts it dropped at shutdown.
// Spans still pending (never activated or cancelled) fail, with their
// descendants' records, and the error says how many. The tracer calls
// Shutdown after the last export.
func (e *Exporter) Shutdown(ctx context.Context) error {
	var err error
	e.shutOnce.Do(func() {
		e.shut.Store(true)
		lanes := make(chan struct{})
		go func() {
			e.wg.Wait()
			close(lanes)
		}()
		select {
		case <-lanes:
		case <-ctx.Done():
			err = ctx.Err()
			e.cancel()
			<-lanes // the requests end with their context
		}
		close(e.pollStop)
		e.pollOnce.Do(func() { close(e.pollDone) }) // never started
		<-e.pollDone
		e.cancel()
		if e.ownClient {
			e.cfg.client.CloseIdleConnections()
		}
		e.planMu.Lock()
		n := e.pending.drain()
		e.planMu.Unlock()
		if n > 0 {
			err = errors.Join(err, fmt.Errorf("prefactor: %d pending spans never became active or were cancelled; not sent", n))
		}
	})
	return err
}

// ErrShutdown is returned by Export after Shutdown.
var ErrShutdown = errors.New("prefactor: exporter shut down")

// log returns WithLogger's logger, else slog.Default() as it is now.
func (e *Exporter) log() *slog.Logger {
	if e.cfg.logger != nil {
		return e.cfg.logger
	}
	return slog.Default()
}

// scrubText removes the token from s.
func (e *Exporter) scrubText(s string) string {
	if tok := e.cfg.token(); tok != "" && strings.Contains(s, tok) {
		return strings.ReplaceAll(s, tok, "[token]")
	}
	return s
}

// scrub returns err, or, if its text shows the token, an error with the
// token replaced that still matches the exporter's sentinel errors (and
// the context's) with errors.Is.
func (e *Exporter) scrub(err error) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	clean := e.scrubText(msg)
	if clean == msg {
		return err
	}
	r := &redactedError{msg: clean}
	for _, s := range []error{ErrUnauthorized, ErrStopped, errGiveUp, ErrIDMismatch, ErrShutdown,
		context.Canceled, context.DeadlineExceeded} {
		if errors.Is(err, s) {
			r.is = append(r.is, s)
		}
	}
	var api *APIError
	if errors.As(err, &api) {
		r.is = append(r.is, &APIError{Op: api.Op, Status: api.Status, Code: e.scrubText(api.Code), Message: e.scrubText(api.Message)})
	}
	return r
}

// redactedError is an error whose text had the token in it.
type redactedError struct {
	msg string
	is  []error
}

func (r *redactedError) Error() string   { return r.msg }
func (r *redactedError) Unwrap() []error { return r.is }

// redactURL returns u without user information, or a placeholder if it
// does not parse.
func redactURL(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return "(malformed URL, not shown)"
	}
	p.User = nil
	return p.String()
}

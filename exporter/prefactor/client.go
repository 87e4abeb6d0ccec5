package prefactor

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// ErrUnauthorized is wrapped by the error that stops the exporter when the
// API answers 401 or 403: the token is wrong, expired or lacks the scope.
var ErrUnauthorized = errors.New("prefactor: token rejected")

// ErrStopped is wrapped by the errors of Export after the exporter stopped
// (a rejected token) or shut down.
var ErrStopped = errors.New("prefactor: exporter stopped")

// APIError is a response the API rejected for good: a 4xx other than 401,
// 403 and 429 (or an error output of the bulk endpoint).
type APIError struct {
	Op      string // the operation, e.g. "agent_spans/create"
	Status  int    // HTTP status; 0 for a bulk item
	Code    string // the API's error code, e.g. "validation_errors"
	Message string
}

// Error implements error.
func (e *APIError) Error() string {
	s := "prefactor: " + e.Op + " rejected"
	if e.Status != 0 {
		s += " (" + strconv.Itoa(e.Status) + ")"
	}
	if e.Code != "" {
		s += ": " + e.Code
	}
	if e.Message != "" {
		s += ": " + e.Message
	}
	return s
}

// response is one HTTP answer.
type response struct {
	status int
	body   []byte
	header http.Header
	env    envelope // decoded once, by classify
}

// envelope is the part of an API answer the exporter reads: the standard
// envelope of a single answer, or the outputs of a bulk answer, each an
// envelope too. It is decoded in one pass; the payloads an answer echoes
// are skipped.
type envelope struct {
	Status  string               `json:"status"`
	Code    string               `json:"code"`
	Message string               `json:"message"`
	Details detailsID            `json:"details"`
	Control json.RawMessage      `json:"control"`
	Outputs map[string]*envelope `json:"outputs"`
}

type detailsID struct {
	ID                string  `json:"id"`
	Status            string  `json:"status"`
	TerminationReason *string `json:"termination_reason"`
}

// decodeEnvelope parses an answer; ok is false for a body that is not a
// JSON object of that shape.
func decodeEnvelope(b []byte) (env envelope, ok bool) {
	if env, ok := fastEnvelope(b); ok {
		return env, true
	}
	if err := json.Unmarshal(b, &env); err != nil {
		return envelope{}, false
	}
	return env, bytes.HasPrefix(bytes.TrimLeft(b, " \t\r\n"), []byte("{"))
}

// details returns the id and status in an envelope's details.
func (env *envelope) details() detailsID { return env.Details }

// terminate reports a control signal: {"terminate": true, "reason": ...}.
func (env *envelope) terminate() (reason string, ok bool) {
	if len(env.Control) == 0 || env.Control[0] != '{' {
		return "", false
	}
	var c struct {
		Terminate any `json:"terminate"`
		Reason    any `json:"reason"`
	}
	if json.Unmarshal(env.Control, &c) != nil {
		return "", false
	}
	switch v := c.Terminate.(type) {
	case bool:
		ok = v
	case string:
		ok = v != ""
	case float64:
		ok = v != 0
	}
	if r, isStr := c.Reason.(string); isStr {
		reason = r
	}
	return reason, ok
}

// transientError is a failure worth retrying.
type transientError struct {
	err        error
	retryAfter time.Duration
}

func (e *transientError) Error() string { return e.err.Error() }
func (e *transientError) Unwrap() error { return e.err }

// maxRetryAfter bounds the wait a Retry-After header can ask for.
const maxRetryAfter = 5 * time.Minute

// errGiveUp is wrapped when an operation's retry deadline passed.
var errGiveUp = errors.New("prefactor: gave up retrying")

// attempt makes one HTTP request.
func (e *Exporter) attempt(ctx context.Context, method, path string, body []byte) (*response, error) {
	actx, cancel := context.WithTimeout(ctx, e.cfg.retry.AttemptTimeout)
	defer cancel()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(actx, method, e.cfg.url+path, rd)
	if err != nil {
		return nil, err
	}
	req.Header = http.Header{
		"Authorization":   {e.auth},
		"X-Prefactor-Sdk": {e.sdk},
		"Accept":          {"application/json"},
	}
	if body != nil {
		req.Header["Content-Type"] = []string{"application/json"}
	}
	e.stats.requests.Add(1)
	resp, err := e.cfg.client.Do(req)
	if err != nil {
		return nil, scrub(err, e.cfg.token)
	}
	defer resp.Body.Close()
	b, err := readBody(resp)
	if err != nil {
		return nil, scrub(fmt.Errorf("reading the answer to %s %s: %w", method, path, err), e.cfg.token)
	}
	return &response{status: resp.StatusCode, body: b, header: resp.Header}, nil
}

// readBody reads an answer (at most 64 MiB), into a buffer of the
// announced size when there is one.
func readBody(resp *http.Response) ([]byte, error) {
	const limit = 64 << 20
	if n := resp.ContentLength; n >= 0 && n <= limit {
		var b []byte
		if bp := answerPool.Get().(*[]byte); cap(*bp) >= int(n) {
			b = (*bp)[:n]
		} else {
			answerPool.Put(bp)
			b = make([]byte, n)
		}
		_, err := io.ReadFull(resp.Body, b)
		return b, err
	}
	return io.ReadAll(io.LimitReader(resp.Body, limit))
}

// answerPool recycles answer bodies: once an answer is decoded (into
// copies), do hands its body back.
var answerPool = sync.Pool{New: func() any { b := []byte(nil); return &b }}

// recycle returns an answer body to the pool.
func recycle(b []byte) {
	if cap(b) == 0 || cap(b) > 16<<20 {
		return
	}
	b = b[:0]
	answerPool.Put(&b)
}

// scrub removes the token from an error's text, should a transport ever
// echo it.
func scrub(err error, token string) error {
	if err == nil || token == "" || !strings.Contains(err.Error(), token) {
		return err
	}
	return errors.New(strings.ReplaceAll(err.Error(), token, "[token]"))
}

// retryAfter parses a Retry-After header (seconds or an HTTP date).
func retryAfter(h http.Header, now time.Time) time.Duration {
	v := h.Get("Retry-After")
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && s >= 0 {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// classify turns an answer into nil (usable: 2xx with a JSON object, or a
// 4xx for the caller to judge), a *transientError or the fatal
// ErrUnauthorized.
func (e *Exporter) classify(resp *response, err error) error {
	if err != nil {
		return &transientError{err: err}
	}
	switch s := resp.status; {
	case s == http.StatusUnauthorized || s == http.StatusForbidden:
		resp.env, _ = decodeEnvelope(resp.body)
		return fmt.Errorf("%w: HTTP %d %s", ErrUnauthorized, s, resp.env.Code)
	case s == http.StatusTooManyRequests || s >= 500:
		return &transientError{err: fmt.Errorf("HTTP %d", s), retryAfter: retryAfter(resp.header, time.Now())}
	case s >= 200 && s < 300:
		var ok bool
		if resp.env, ok = decodeEnvelope(resp.body); !ok {
			return &transientError{err: fmt.Errorf("HTTP %d with a body that is not a JSON object (%d bytes)", s, len(resp.body))}
		}
	case s < 200 || (s >= 300 && s < 400):
		return &transientError{err: fmt.Errorf("unexpected HTTP %d", s)}
	default: // 4xx: its code decides
		resp.env, _ = decodeEnvelope(resp.body)
	}
	return nil
}

// do runs one logical request: attempts with backoff, the breaker and the
// deadline. It returns a 2xx or 4xx answer, or an error: ErrUnauthorized
// (the exporter is stopped), errGiveUp, or ctx's error.
func (e *Exporter) do(ctx context.Context, method, path string, body []byte) (*response, error) {
	ctx, cancel := context.WithTimeout(ctx, e.cfg.retry.Deadline)
	defer cancel()
	for n := 0; ; n++ {
		if err := e.stoppedErr(); err != nil {
			return nil, err
		}
		probe, err := e.breaker.wait(ctx)
		if err != nil {
			return nil, fmt.Errorf("%w: %s %s: breaker open: %w", errGiveUp, method, path, err)
		}
		resp, err := e.attempt(ctx, method, path, body)
		cerr := e.classify(resp, err)
		if resp != nil {
			// Everything used from the body was decoded into copies.
			recycle(resp.body)
			resp.body = nil
		}
		var te *transientError
		switch {
		case cerr == nil:
			e.breaker.success()
			return resp, nil
		case errors.Is(cerr, ErrUnauthorized):
			e.breaker.success()
			e.stop(cerr)
			return nil, cerr
		case ctx.Err() != nil:
			e.breaker.release(probe)
			return nil, fmt.Errorf("%w: %s %s: %w (last: %v)", errGiveUp, method, path, ctx.Err(), cerr)
		case errors.As(cerr, &te):
			e.breaker.failure(probe)
			e.stats.retries.Add(1)
			wait := e.backoff(n)
			if te.retryAfter > 0 {
				// Honoured, beyond Max too, up to a sanity bound; the
				// deadline still cuts it short.
				wait = max(wait, min(te.retryAfter, maxRetryAfter))
			}
			e.lastErr(fmt.Errorf("%s %s: %w", method, path, cerr))
			if err := sleep(ctx, wait); err != nil {
				return nil, fmt.Errorf("%w: %s %s: %w (last: %v)", errGiveUp, method, path, err, cerr)
			}
		default:
			e.breaker.release(probe)
			return nil, cerr
		}
	}
}

// backoff returns the wait before retry n (from 0): exponential with
// jitter over the upper half.
func (e *Exporter) backoff(n int) time.Duration {
	r := e.cfg.retry
	d := float64(r.Initial)
	for range min(n, 62) {
		d *= r.Multiplier
		if d >= float64(r.Max) {
			d = float64(r.Max)
			break
		}
	}
	return time.Duration(d/2 + rand.Float64()*d/2)
}

func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// breaker is a circuit breaker over all requests: after cfg.Failures
// consecutive transient failures it opens; after the cooldown one probe
// goes through (half-open); the probe's success closes it, its failure
// reopens it with twice the cooldown.
type breaker struct {
	cfg      Breaker
	mu       sync.Mutex
	fails    int
	open     bool
	until    time.Time
	cooldown time.Duration
	probing  bool
	changed  chan struct{}
	opens    uint64
}

func newBreaker(cfg Breaker) *breaker {
	return &breaker{cfg: cfg, cooldown: cfg.Cooldown, changed: make(chan struct{})}
}

// broadcast wakes waiters; b.mu is held.
func (b *breaker) broadcast() {
	close(b.changed)
	b.changed = make(chan struct{})
}

// wait returns when a request may go; probe reports that it is the
// half-open probe, which must end in success, failure or release.
func (b *breaker) wait(ctx context.Context) (probe bool, err error) {
	for {
		b.mu.Lock()
		if !b.open {
			b.mu.Unlock()
			return false, nil
		}
		now := time.Now()
		if !b.probing && !now.Before(b.until) {
			b.probing = true
			b.mu.Unlock()
			return true, nil
		}
		ch := b.changed
		d := b.until.Sub(now)
		if b.probing {
			d = time.Hour
		}
		b.mu.Unlock()
		t := time.NewTimer(max(d, time.Millisecond))
		select {
		case <-ctx.Done():
			t.Stop()
			return false, ctx.Err()
		case <-ch:
		case <-t.C:
		}
		t.Stop()
	}
}

func (b *breaker) success() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.fails = 0
	if b.open {
		b.open, b.probing, b.cooldown = false, false, b.cfg.Cooldown
		b.broadcast()
	}
}

func (b *breaker) failure(probe bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.fails++
	switch {
	case b.open && probe:
		b.cooldown = min(2*b.cooldown, b.cfg.MaxCooldown)
		b.until, b.probing = time.Now().Add(b.cooldown), false
		b.broadcast()
	case !b.open && b.fails >= b.cfg.Failures:
		b.open, b.until = true, time.Now().Add(b.cooldown)
		b.opens++
		b.broadcast()
	}
}

// release ends a probe that neither succeeded nor failed.
func (b *breaker) release(probe bool) {
	if !probe {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.open && b.probing {
		b.probing = false
		b.broadcast()
	}
}

func (b *breaker) isOpen() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.open
}

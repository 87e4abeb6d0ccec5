package prefactor

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/agenttrace/agenttrace/internal/bufpool"
)

// ErrUnauthorized is wrapped by the error that stops the exporter when the
// API answers 401 or 403: the token is wrong, expired or lacks the scope.
var ErrUnauthorized = errors.New("prefactor: token rejected")

// ErrStopped is wrapped by the errors of Export after the exporter stopped
// (a rejected token) or shut down.
var ErrStopped = errors.New("prefactor: exporter stopped")

// errGiveUp is wrapped when an operation's retry deadline passed.
var errGiveUp = errors.New("prefactor: gave up retrying")

// errAnswerTooLarge is an answer over maxAnswer bytes.
var errAnswerTooLarge = errors.New("prefactor: answer too large")

// response is one HTTP answer.
type response struct {
	status int
	body   []byte
	header http.Header
	env    envelope // decoded once, by classify
	big    bool     // the body holds the exporter's large-answer token
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

// Answer bodies: each in-flight request reads up to smallAnswer bytes on
// its own; past that it needs the exporter's one large-answer token, and
// no answer may exceed maxAnswer. Answer memory in flight is thus at most
// (concurrency + 1) * smallAnswer + maxAnswer, whatever the server sends or
// announces; buffers grow with what arrives, never by Content-Length.
const (
	smallAnswer = 256 << 10
	maxAnswer   = 64 << 20
)

// attempt makes one HTTP request. The caller hands the response to
// doneWith once it decoded what it needs.
func (e *Exporter) attempt(ctx context.Context, method, path string, body []byte) (*response, error) {
	actx, cancel := context.WithTimeout(ctx, e.cfg.retry.AttemptTimeout)
	defer cancel()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(actx, method, e.cfg.url+path, rd)
	if err != nil {
		return nil, e.scrub(err)
	}
	req.Header = http.Header{
		"Authorization":   {e.auth()},
		"X-Prefactor-Sdk": {e.sdk},
		"Accept":          {"application/json"},
	}
	if body != nil {
		req.Header["Content-Type"] = []string{"application/json"}
	}
	e.stats.requests.Add(1)
	resp, err := e.cfg.client.Do(req)
	if err != nil {
		return nil, e.scrub(err)
	}
	defer resp.Body.Close()
	b, big, err := e.readBody(actx, resp)
	if err != nil {
		e.doneWith(&response{body: b, big: big})
		return nil, e.scrub(fmt.Errorf("reading the answer to %s %s: %w", method, path, err))
	}
	return &response{status: resp.StatusCode, body: b, header: resp.Header, big: big}, nil
}

// readBody reads an answer into a buffer that grows with what arrives
// (see smallAnswer and maxAnswer).
func (e *Exporter) readBody(ctx context.Context, resp *http.Response) (b []byte, big bool, err error) {
	if resp.ContentLength > maxAnswer {
		return nil, false, fmt.Errorf("%w: %d bytes announced, the limit is %d", errAnswerTooLarge, resp.ContentLength, maxAnswer)
	}
	b = *answerPool.Get()
	for {
		if len(b) == cap(b) {
			next := max(2*cap(b), 4<<10)
			if next > smallAnswer && !big {
				select {
				case e.bigAnswer <- struct{}{}:
					big = true
				case <-ctx.Done():
					return b, big, ctx.Err()
				}
			}
			b = slices.Grow(b, min(next, maxAnswer+1)-len(b))
		}
		n, rerr := resp.Body.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		switch {
		case len(b) > maxAnswer:
			return b, big, fmt.Errorf("%w: more than %d bytes", errAnswerTooLarge, maxAnswer)
		case rerr == io.EOF:
			return b, big, nil
		case rerr != nil:
			return b, big, rerr
		}
	}
}

// answerPool recycles answer bodies, up to 4 MiB (a bulk answer of 500
// items, which echoes the spans, is a few hundred KiB). A new one starts
// empty and grows with what arrives.
var answerPool = bufpool.Pool{Max: 4 << 20}

// doneWith returns an answer's body to the pool (everything used from it
// was decoded into copies) and its large-answer token to the exporter.
func (e *Exporter) doneWith(resp *response) {
	if resp == nil {
		return
	}
	b := resp.body
	answerPool.Put(&b)
	resp.body = nil
	if resp.big {
		resp.big = false
		<-e.bigAnswer
	}
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
		return e.scrub(fmt.Errorf("%w: HTTP %d %s", ErrUnauthorized, s, clip(resp.env.Code)))
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

// do runs one logical request: attempts with backoff and the breaker, until
// ctx (which carries the operation's deadline) ends. This is the one place
// that retries. It returns a 2xx or 4xx answer, or an error:
// ErrUnauthorized (the exporter is stopped), errGiveUp, or ctx's error.
//
// After a transient failure it waits: what Retry-After asks (at most
// maxRetryAfter); else, while the breaker is open, for the breaker (one
// probe per cooldown, and every waiter goes at the probe's success); else
// its backoff, cut short when the breaker changes.
func (e *Exporter) do(ctx context.Context, method, path string, body []byte) (*response, error) {
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
			e.doneWith(resp)
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
			e.lastErr(fmt.Errorf("%s %s: %w", method, path, cerr))
			if err := e.pause(ctx, n, te.retryAfter); err != nil {
				return nil, fmt.Errorf("%w: %s %s: %w (last: %v)", errGiveUp, method, path, err, cerr)
			}
		default:
			e.breaker.release(probe)
			return nil, cerr
		}
	}
}

// pause waits before retry n (see do).
func (e *Exporter) pause(ctx context.Context, n int, retryAfter time.Duration) error {
	if retryAfter > 0 {
		return e.sleep(ctx, max(e.backoff(n), min(retryAfter, maxRetryAfter)), nil)
	}
	if e.breaker.isOpen() {
		return ctx.Err() // breaker.wait paces the next attempt
	}
	return e.sleep(ctx, e.backoff(n), e.breaker.changes())
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

// sleep waits d, or until wake is closed; it fails when ctx ends first.
func (e *Exporter) sleep(ctx context.Context, d time.Duration, wake <-chan struct{}) error {
	if d <= 0 {
		return ctx.Err()
	}
	c, stop := e.clock.After(d)
	defer stop()
	select {
	case <-c:
		return nil
	case <-wake:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

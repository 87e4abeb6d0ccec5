// Package llmhttp records LLM API calls made over HTTP as agenttrace llm
// spans, with no code per call: install its transport (NewTransport) in the
// http.Client of any LLM SDK, or its middleware (Middleware) in openai-go
// and anthropic-sdk-go.
//
// It recognises the OpenAI Chat Completions and Responses APIs, the
// Anthropic Messages API and Gemini's generateContent and
// streamGenerateContent by path (so OpenAI-compatible servers such as
// Azure OpenAI, OpenRouter, Ollama and vLLM are covered), and passes every
// other request through untouched. For each call it starts one span, a
// child of the span in the request's context, in that span's instance, and
// records the request (model, messages, tools, settings, by the capture
// mode), the response (text, tool calls reassembled from stream deltas,
// finish reason, id, service tier), token usage normalised to
// agenttrace.Usage, cost from a dated price table, and the time to first
// token of a stream.
//
// The SDK reads exactly the bytes the server sent: the response body is
// read through, never buffered whole when streamed, and parsed as it goes.
// The span ends when the body has been fully read or is closed, or when the
// request's context is done. A stream that ends without its terminal event
// fails the span with a StreamError saying why; an API error response fails
// it with an APIError. Retries that openai-go and anthropic-sdk-go make of
// one call (marked by X-Stainless-Retry-Count) are attempts of one span,
// also after an attempt's own deadline (X-Stainless-Timeout) ran out or its
// JSON body broke off, which anthropic-sdk-go retries;
// each attempt is sent with its own request's context (SDKs give attempts
// deadlines of their own), and a failed attempt's context ending while the
// SDK waits to retry only shortens the wait for the retry to a grace period
// (anthropic-sdk-go cancels it just before it retries).
//
// Nothing here blocks on anything but the call itself, panics into the SDK
// or changes what the SDK receives; what cannot be parsed is counted (see
// ReadStats) and marked on the span.
package llmhttp

import (
	"bytes"
	"context"
	"errors"
	"hash/fnv"
	"io"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/agenttrace/agenttrace"
)

// Stats counts what the package could not record, across all transports.
type Stats struct {
	// Calls counts traced calls (logical calls, not attempts).
	Calls uint64
	// ParseErrors counts stream events and bodies that could not be read.
	ParseErrors uint64
	// ContentTruncated counts calls whose captured content hit the cap.
	ContentTruncated uint64
	// UsageMissing counts successful calls that reported no usage (an
	// OpenAI stream without stream_options.include_usage, for example).
	UsageMissing uint64
	// CostUnknown counts calls with usage whose model has no price.
	CostUnknown uint64
	// RequestUnreadable counts request bodies that were not JSON.
	RequestUnreadable uint64
	// Panics counts recovered panics in the parsers (a bug; the SDK was
	// unaffected).
	Panics uint64
}

var stats struct {
	calls, parseErrors, contentTruncated, usageMissing, costUnknown, requestUnreadable, panics atomic.Uint64
}

// ReadStats returns the package's counters.
func ReadStats() Stats {
	return Stats{
		Calls: stats.calls.Load(), ParseErrors: stats.parseErrors.Load(), ContentTruncated: stats.contentTruncated.Load(),
		UsageMissing: stats.usageMissing.Load(), CostUnknown: stats.costUnknown.Load(),
		RequestUnreadable: stats.requestUnreadable.Load(), Panics: stats.panics.Load(),
	}
}

// NewTransport returns an http.RoundTripper that records one llm span per
// LLM API call (base nil = http.DefaultTransport).
func NewTransport(tracer *agenttrace.Tracer, base http.RoundTripper, opts ...Option) http.RoundTripper {
	if base == nil {
		base = http.DefaultTransport
	}
	return &transport{core: newCore(tracer, opts), base: base}
}

// Middleware returns the SDK middleware shape used by openai-go and
// anthropic-sdk-go (option.Middleware).
func Middleware(tracer *agenttrace.Tracer, opts ...Option) func(req *http.Request, next func(*http.Request) (*http.Response, error)) (*http.Response, error) {
	c := newCore(tracer, opts)
	return func(req *http.Request, next func(*http.Request) (*http.Response, error)) (*http.Response, error) {
		return c.do(req, next)
	}
}

type transport struct {
	core *core
	base http.RoundTripper
}

func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	return t.core.do(req, t.base.RoundTrip)
}

// CloseIdleConnections closes the idle connections of the base transport.
func (t *transport) CloseIdleConnections() {
	if c, ok := t.base.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}

type core struct {
	tr  *agenttrace.Tracer
	cfg *config

	mu      sync.Mutex
	waiting map[waitKey]*call
}

// waitKey finds the call a retry or a continuation belongs to.
type waitKey struct {
	parent, inst agenttrace.ID
	method, url  string
	hash         uint64 // of the request body (retries)
	token        string // continuation token (Gemini)
}

func newCore(tr *agenttrace.Tracer, opts []Option) *core {
	return &core{tr: tr, cfg: newConfig(opts), waiting: map[waitKey]*call{}}
}

// endKind is how a response body ended.
type endKind uint8

const (
	endEOF endKind = iota + 1
	endReadErr
	endClosed
	endCancelled
	endTransport // the attempt failed before a response
)

const (
	retryHeader = "X-Stainless-Retry-Count"
	// timeoutHeader is sent by openai-go and anthropic-sdk-go when each
	// attempt has a deadline of its own (option.WithRequestTimeout).
	timeoutHeader = "X-Stainless-Timeout"
)

func (co *core) do(req *http.Request, next func(*http.Request) (*http.Response, error)) (res *http.Response, err error) {
	if co.tr == nil || req == nil {
		return next(req)
	}
	rt := classify(req)
	if rt.api == apiNone {
		return next(req)
	}
	var body []byte
	if req.Body != nil && req.Body != http.NoBody {
		body, err = readAll(req.Body, req.ContentLength)
		_ = req.Body.Close()
		if err != nil {
			return nil, err
		}
	}
	c, out := co.begin(req, rt, body)
	if c == nil {
		return next(out)
	}
	res, err = next(out)
	if err != nil {
		c.attemptFailed(sanitize(err), req.Context())
		return res, err
	}
	c.response(req.Context(), res)
	return res, nil
}

// begin parses the request and starts (or resumes) its call. It returns the
// request to send: req with the span's context and a replayable body.
func (co *core) begin(req *http.Request, rt route, body []byte) (c *call, out *http.Request) {
	defer func() {
		if p := recover(); p != nil {
			stats.panics.Add(1)
			c, out = nil, withBody(req, req.Context(), body)
		}
	}()
	ctx := req.Context()
	parsed := parseRequest(co.cfg, rt, body)
	if parsed.rewritten != nil {
		body = parsed.rewritten
	}
	retryCount := req.Header.Get(retryHeader)
	marked := retryCount != ""
	attempt := 0
	if marked && retryCount != "0" {
		attempt, _ = strconv.Atoi(retryCount)
	}
	hop := false
	// The key (its URL string) is made only when a call is or may be
	// waiting: most calls never need it.
	var key waitKey
	keyed := false
	keyOf := func() waitKey {
		if !keyed {
			keyed = true
			key = keyFor(req)
		}
		return key
	}
	if parsed.contToken != "" {
		k := keyOf()
		k.token = parsed.contToken
		if c = co.resume(k); c != nil {
			c.hops++
			hop = true
		}
	}
	// A retry: an SDK that marks its retries says so; any other request
	// may be one if an identical call is waiting.
	if c == nil && (attempt > 0 || !marked && co.anyWaiting()) {
		k := keyOf()
		k.hash = hashBody(body)
		if c = co.resume(k); c != nil {
			c.attempts++
		}
	}
	if c == nil {
		if c = co.newCall(ctx, rt, &parsed); c == nil {
			return nil, withBody(req, ctx, body)
		}
	}
	if c.attempts > 1 || c.hops > 1 {
		// A retry or a hop goes out with its own request's context (the
		// SDK may give each attempt a deadline of its own and cancel the
		// previous one), carrying the call's span.
		c.ctx = agenttrace.ContextWithSpan(ctx, c.span)
	}
	c.key, c.keyed, c.keyReq = key, keyed, req
	c.attemptCtx = ctx
	c.marker = marked
	c.ownDeadline = marked && req.Header.Get(timeoutHeader) != ""
	c.body = body
	if hop {
		c.nextHop()
	} else {
		c.reset()
	}
	return c, withBody(req, c.ctx, body)
}

// newCall starts the span of a new call, or returns nil if the tracer
// records none.
func (co *core) newCall(ctx context.Context, rt route, p *parsed) *call {
	c := &call{core: co, cfg: co.cfg, route: rt, req: p.req, budget: co.cfg.maxContent - p.contentUsed,
		reqTruncated: p.truncated, attempts: 1, hops: 1, stream: p.req.Stream || rt.stream}
	c.req.Stream = c.stream
	name := rt.api.operation()
	if c.req.Model != "" {
		name += " " + c.req.Model
	}
	c.ctx, c.span = co.tr.Start(ctx, agenttrace.TypeLLM, c.req, agenttrace.WithName(name))
	if c.span == nil {
		return nil
	}
	c.started = time.Now()
	stats.calls.Add(1)
	return c
}

// readAll reads r whole, in one allocation when its length n is known.
func readAll(r io.Reader, n int64) ([]byte, error) {
	if n <= 0 || n > 64<<20 {
		return io.ReadAll(r)
	}
	b := make([]byte, n, n+1)
	k, err := io.ReadFull(r, b)
	switch {
	case err == io.ErrUnexpectedEOF || err == io.EOF:
		return b[:k], nil // shorter than announced: what there is
	case err != nil:
		return nil, err
	}
	// Read on to EOF: one byte more means it is longer than announced.
	if m, err := r.Read(b[n : n+1]); m == 0 && err == io.EOF {
		return b, nil
	} else if m == 1 {
		b = b[:n+1]
	} else if err != nil {
		return nil, err
	}
	rest, err := io.ReadAll(r)
	if err != nil {
		return nil, err
	}
	return append(b, rest...), nil
}

// withBody returns a shallow copy of req with ctx and a replayable body b.
func withBody(req *http.Request, ctx context.Context, b []byte) *http.Request {
	out := req.WithContext(ctx)
	if b == nil {
		return out
	}
	// io.NopCloser of a *bytes.Reader, which net/http knows to be in
	// memory: it then writes the headers and the body in one write, where
	// any other reader type costs a flush of the headers first.
	out.Body = io.NopCloser(bytes.NewReader(b))
	out.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
	out.ContentLength = int64(len(b))
	return out
}

func hashBody(b []byte) uint64 {
	h := fnv.New64a()
	_, _ = h.Write(b)
	return h.Sum64()
}

func (co *core) anyWaiting() bool {
	co.mu.Lock()
	defer co.mu.Unlock()
	return len(co.waiting) > 0
}

// resume takes the call waiting under k, if any.
func (co *core) resume(k waitKey) *call {
	co.mu.Lock()
	c := co.waiting[k]
	delete(co.waiting, k)
	co.mu.Unlock()
	if c == nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state != stateWaiting {
		return nil // its wait ran out first
	}
	c.timer.Stop()
	c.stop()
	c.state = stateRunning
	return c
}

// wait parks c under k until the next attempt or hop, or the wait runs
// out; c.mu is held.
func (co *core) wait(c *call, k waitKey, failWith error, at time.Time) {
	co.waitFor(c, k, failWith, at, co.cfg.retryWait)
}

// cancelGrace is how long a call waiting for a retry still waits once the
// failed attempt's context is done (bounded by the retry wait).
const cancelGrace = 5 * time.Second

// continuationWait is how long a Gemini stream that ended with a
// continuation token waits for the SDK's next request.
const continuationWait = 15 * time.Second

func (co *core) waitFor(c *call, k waitKey, failWith error, at time.Time, d time.Duration) {
	c.stop()
	c.state = stateWaiting
	co.mu.Lock()
	if old := co.waiting[k]; old != nil && old != c {
		// Two identical calls failed at once: the older one waits no more.
		go old.expire(k)
	}
	co.waiting[k] = c
	co.mu.Unlock()
	c.waits++
	c.waitUntil = time.Now().Add(d)
	c.timer = time.AfterFunc(d, func() { c.expireWith(k, failWith, at) })
	if failWith != nil && c.attemptCtx != nil {
		// The failed attempt's context ends while the SDK waits to retry:
		// either the SDK (or its caller) gave up, or the SDK cancelled the
		// attempt's own deadline just before sending the retry, as
		// anthropic-sdk-go does. Only whether a retry follows tells them
		// apart, so the wait shrinks to a short grace period.
		wait := c.waits
		c.stopCtx = context.AfterFunc(c.attemptCtx, func() { c.shortenWait(k, failWith, at, wait) })
	}
}

// shortenWait cuts the wait numbered wait down to the grace period.
func (c *call) shortenWait(k waitKey, failWith error, at time.Time, wait uint64) {
	grace := min(cancelGrace, c.cfg.retryWait)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state != stateWaiting || c.waits != wait || time.Until(c.waitUntil) <= grace {
		return
	}
	if c.timer.Stop() { // else it has fired: the wait is over anyway
		c.waitUntil = time.Now().Add(grace)
		c.timer = time.AfterFunc(grace, func() { c.expireWith(k, failWith, at) })
	}
}

type callState uint8

const (
	stateRunning callState = iota
	stateWaiting
	stateDone
)

// call is one logical LLM call: one span, one or more attempts (retries)
// or hops (continued streams).
type call struct {
	core  *core
	cfg   *config
	route route
	req   agenttrace.LLMRequest
	span  *agenttrace.Span
	ctx   context.Context

	started      time.Time
	stream       bool
	budget       int
	reqTruncated bool
	attempts     int
	attemptErrs  []string
	hops         int

	key    waitKey
	keyed  bool          // key is set; else waitKey makes it from keyReq
	keyReq *http.Request // the attempt's request
	marker bool          // the SDK marks its retries
	// ownDeadline: the attempt has a deadline of its own, set by the SDK,
	// which may retry when it runs out.
	ownDeadline bool
	body        []byte // the request body, for the retry key
	attemptCtx  context.Context

	mu        sync.Mutex
	state     callState
	timer     *time.Timer
	waits     uint64    // waits so far; tells a stale context callback
	waitUntil time.Time // when the current wait runs out
	stopCtx   func() bool
	status    int
	retryable bool
	framer    framer
	out       output
	marked    bool
	contTok   string // the latest continuation token of a Gemini stream
	seq       int    // the attempt or hop being read

	textBytes, thinkingBytes, refusalBytes int64
	anth                                   anthUsage
	scratch                                []byte

	jf        jsonFramer // the framer of a JSON body
	firstBody body       // the first attempt's response body
}

// reset prepares c for a new attempt or hop.
func (c *call) reset() {
	prior := c.out.prior
	c.out = output{prior: prior}
	c.anth = anthUsage{}
	c.textBytes, c.thinkingBytes, c.refusalBytes = 0, 0, 0
	c.seq++
	c.status = 0
	c.retryable = false
	c.framer = nil
	c.contTok = ""
}

// nextHop prepares c for the next request of a continued stream: the
// output so far is kept, the hop's usage is added to the earlier hops'.
func (c *call) nextHop() {
	c.out.prior.add(c.out.usage)
	c.out.usage = usage{}
	c.out.terminal, c.out.finish, c.out.apiErr = false, "", nil
	c.status, c.retryable, c.framer, c.contTok = 0, false, nil, ""
	c.seq++
}

// attemptFailed records a transport error of one attempt.
func (c *call) attemptFailed(err error, ctx context.Context) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state != stateRunning {
		return
	}
	now := time.Now()
	c.attemptErrs = append(c.attemptErrs, err.Error())
	if c.marker && (ctx.Err() == nil || c.attemptTimedOut(ctx)) {
		// The SDK retries a connection error, and one of an attempt whose
		// own deadline ran out (anthropic-sdk-go; openai-go gives up then,
		// and the span ends as failed after the short grace period).
		k := c.waitKey()
		k.hash = hashBody(c.body)
		c.core.wait(c, k, err, now)
		return
	}
	c.failLocked(err, now)
}

// keyFor returns the key of req's call.
func keyFor(req *http.Request) waitKey {
	k := waitKey{method: req.Method, url: req.URL.String()}
	ctx := req.Context()
	if s := agenttrace.SpanFromContext(ctx); s != nil {
		k.parent = s.ID()
	}
	if in := agenttrace.InstanceFromContext(ctx); in != nil {
		k.inst = in.ID()
	}
	return k
}

// waitKey returns the key the call waits under for its next attempt or
// hop; c.mu is held.
func (c *call) waitKey() waitKey {
	if !c.keyed {
		c.key, c.keyed = keyFor(c.keyReq), true
	}
	return c.key
}

// attemptTimedOut says whether ctx, the attempt's context, ended because
// the attempt's own deadline (set by the SDK) ran out.
func (c *call) attemptTimedOut(ctx context.Context) bool {
	return c.ownDeadline && ctx != nil && errors.Is(ctx.Err(), context.DeadlineExceeded)
}

// retriedBody says whether the SDK may retry an attempt whose JSON body
// ended as kind says before it was complete: anthropic-sdk-go reads the
// body of a non-streamed call inside its retry loop and retries when the
// connection drops or the attempt's deadline runs out part-way.
func (c *call) retriedBody(kind endKind) bool {
	if !c.marker || c.stream || c.status >= 400 {
		return false
	}
	switch kind {
	case endReadErr:
		return c.ctx == nil || c.ctx.Err() == nil || c.attemptTimedOut(c.attemptCtx)
	case endCancelled:
		return c.attemptTimedOut(c.attemptCtx)
	}
	return false
}

// response installs the body reader on res.
func (c *call) response(ctx context.Context, res *http.Response) {
	defer func() {
		if p := recover(); p != nil {
			stats.panics.Add(1)
			c.mu.Lock()
			c.failLocked(errors.New("llmhttp: internal error reading the response"), time.Time{})
			c.mu.Unlock()
		}
	}()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.status = res.StatusCode
	if res.StatusCode >= 400 {
		c.retryable = retryableStatus(res)
		// Error bodies are small: read the head now so the error is known
		// whether or not the SDK reads it, and hand the SDK the same bytes.
		if res.Body != nil {
			head, rerr := io.ReadAll(io.LimitReader(res.Body, 64<<10))
			c.out.apiErr = parseAPIError(head)
			res.Body = &errBody{c: c, r: io.MultiReader(bytes.NewReader(head), &errReader{res.Body, rerr}), rc: res.Body}
		} else {
			c.out.apiErr = &APIError{}
		}
		c.out.apiErr.StatusCode = res.StatusCode
		if res.Body == nil {
			c.endLocked(endEOF, nil)
		}
		return
	}
	if res.Body == nil || res.Body == http.NoBody {
		c.out.terminal = true // nothing to read: the call is over
		c.endLocked(endEOF, nil)
		return
	}
	ct := res.Header.Get("Content-Type")
	switch {
	case bytes.HasPrefix([]byte(ct), []byte("text/event-stream")):
		c.framer = &sseFramer{emit: c.event, drop: c.dropped}
		c.stream = true
	case c.route.api == apiGemini && c.route.stream:
		c.framer = &arrayFramer{emit: c.event, drop: c.dropped}
	default:
		c.jf = jsonFramer{c: c, max: c.cfg.maxResponse}
		f := &c.jf
		if n := res.ContentLength; n > 0 && n <= int64(f.max) {
			f.buf = make([]byte, 0, n) // one allocation for the whole body
		}
		c.framer = f
	}
	if c.seq == 1 {
		// The first attempt's reader is part of the call; a later one is
		// its own, since an earlier attempt's body may still be closed.
		c.firstBody = body{c: c, rc: res.Body}
		res.Body = &c.firstBody
	} else {
		res.Body = &body{c: c, rc: res.Body}
	}
	seq := c.seq
	c.stopCtx = context.AfterFunc(ctx, func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.state == stateRunning && c.seq == seq {
			c.endLocked(endCancelled, context.Cause(ctx))
		}
	})
}

func retryableStatus(res *http.Response) bool {
	switch res.Header.Get("x-should-retry") {
	case "true":
		return true
	case "false":
		return false
	}
	s := res.StatusCode
	return s == http.StatusRequestTimeout || s == http.StatusConflict || s == http.StatusTooManyRequests || s >= 500
}

// errReader returns the error met reading an error body's head once the
// rest is read.
type errReader struct {
	r   io.Reader
	err error
}

func (e *errReader) Read(p []byte) (int, error) {
	if e.err != nil {
		return 0, e.err
	}
	return e.r.Read(p)
}

// errBody is the body of an error response.
type errBody struct {
	c  *call
	r  io.Reader
	rc io.Closer
}

func (b *errBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if err != nil {
		b.c.mu.Lock()
		b.c.endLocked(endEOF, nil)
		b.c.mu.Unlock()
	}
	return n, err
}

func (b *errBody) Close() error {
	err := b.rc.Close()
	b.c.mu.Lock()
	b.c.endLocked(endClosed, nil)
	b.c.mu.Unlock()
	return err
}

// body is a response body read through by the call.
type body struct {
	c  *call
	rc io.ReadCloser
}

func (b *body) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	if n > 0 {
		b.c.feed(p[:n])
	}
	if err != nil {
		kind := endReadErr
		if err == io.EOF {
			kind = endEOF
		}
		b.c.mu.Lock()
		b.c.endLocked(kind, err)
		b.c.mu.Unlock()
	}
	return n, err
}

func (b *body) Close() error {
	err := b.rc.Close()
	b.c.mu.Lock()
	b.c.endLocked(endClosed, nil)
	b.c.mu.Unlock()
	return err
}

// feed parses p, a chunk of the body.
func (c *call) feed(p []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state != stateRunning || c.framer == nil {
		return
	}
	defer func() {
		if r := recover(); r != nil {
			stats.panics.Add(1)
			c.out.parseErrors++
			c.framer = nil
		}
	}()
	c.framer.write(p)
}

// dropped counts an event too big to parse.
func (c *call) dropped() { c.out.parseErrors++ }

// firstToken marks the time to first token at the first content delta.
func (c *call) firstToken() {
	if !c.marked {
		c.marked = true
		c.span.MarkFirstToken()
	}
}

// endLocked ends the attempt as kind says (err: the read error or the
// context's cause); c.mu is held.
func (c *call) endLocked(kind endKind, err error) {
	if c.state != stateRunning {
		return
	}
	now := time.Now()
	if c.framer != nil && (kind == endEOF || kind == endClosed) {
		c.endFraming(kind == endEOF)
	}
	if c.status >= 400 {
		c.endHTTPError(kind, now)
		return
	}
	if c.out.apiErr != nil { // an error event in the stream
		c.failLocked(c.out.apiErr, now)
		return
	}
	if c.route.api == apiGemini && kind == endEOF && c.contTok != "" && resumableFinish(c.out.finish) {
		// A hop of a continued stream: the SDK sends the next request
		// with this token.
		k := c.waitKey()
		k.token = c.contTok
		c.out.terminal = true
		c.core.waitFor(c, k, nil, now, continuationWait)
		return
	}
	if c.out.terminal {
		c.completeLocked(now)
		return
	}
	serr := c.cutShort(kind, err)
	if c.retriedBody(kind) {
		// The SDK may send the call again: wait for it, but only the grace
		// period, since openai-go returns the error to its caller instead.
		c.attemptErrs = append(c.attemptErrs, serr.Error())
		k := c.waitKey()
		k.hash = hashBody(c.body)
		c.core.waitFor(c, k, serr, now, min(cancelGrace, c.cfg.retryWait))
		return
	}
	c.failLocked(serr, now)
}

// endFraming tells the framer the body ended (eof: at its end, else
// closed early), counting a panic in it as a parse error.
func (c *call) endFraming(eof bool) {
	defer func() {
		if r := recover(); r != nil {
			stats.panics.Add(1)
			c.out.parseErrors++
		}
	}()
	c.framer.end(eof)
}

// endHTTPError ends an attempt answered with an HTTP error: the span fails
// with the API's error, or waits a while for the SDK's retry when the SDK
// closed a retryable error body unread.
func (c *call) endHTTPError(kind endKind, now time.Time) {
	ae := c.out.apiErr
	c.attemptErrs = append(c.attemptErrs, ae.Error())
	if kind == endClosed && c.retryable {
		// SDKs close an error body unread when they retry it (openai-go,
		// anthropic-sdk-go, genai); the span waits for the retry a while.
		k := c.waitKey()
		k.hash = hashBody(c.body)
		c.core.wait(c, k, ae, now)
		return
	}
	c.failLocked(ae, now)
}

// cutShort returns the error of a body that ended without its terminal
// event, by how it ended: cut (EOF or a read error, or the context's cause
// if it ended first), closed early by the caller, or cancelled.
func (c *call) cutShort(kind endKind, err error) *StreamError {
	var reason error
	switch kind {
	case endEOF, endReadErr:
		reason = ErrStreamCut
		if !c.stream {
			reason = ErrIncompleteBody
		}
		if kind == endReadErr && c.ctx != nil && c.ctx.Err() != nil {
			reason = context.Cause(c.ctx)
		}
	case endClosed:
		reason = ErrClosedEarly
		if !c.stream {
			reason = ErrIncompleteBody
		}
	case endCancelled:
		reason, err = err, nil
		if reason == nil {
			reason = context.Canceled
		}
	}
	if kind == endEOF {
		err = nil
	}
	return &StreamError{Reason: reason, Err: sanitize(err)}
}

func resumableFinish(f string) bool {
	return f == "" || f == "FINISH_REASON_UNSPECIFIED" || f == "CONTINUATION"
}

// expire ends a waiting call whose wait ran out.
func (c *call) expire(k waitKey) {
	c.expireWith(k, errors.New("superseded by an identical call"), time.Time{})
}

func (c *call) expireWith(k waitKey, failWith error, at time.Time) {
	c.core.mu.Lock()
	if c.core.waiting[k] == c {
		delete(c.core.waiting, k)
	}
	c.core.mu.Unlock()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state != stateWaiting {
		return
	}
	c.state = stateRunning
	if failWith == nil { // a continued stream that was not continued
		c.completeLocked(at)
		return
	}
	c.failLocked(failWith, at)
}

func (c *call) stop() {
	if c.stopCtx != nil {
		c.stopCtx()
		c.stopCtx = nil
	}
}

func (c *call) completeLocked(at time.Time) {
	c.state = stateDone
	c.body = nil
	c.stop()
	c.span.SetResult(c.result())
	c.span.EndAt(at)
}

func (c *call) failLocked(err error, at time.Time) {
	if c.state == stateDone {
		return
	}
	c.state = stateDone
	c.body = nil
	c.stop()
	c.span.SetResult(c.result())
	c.span.FailAt(err, at)
}

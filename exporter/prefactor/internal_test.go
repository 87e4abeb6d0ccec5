package prefactor

import (
	"context"
	"encoding/json"
	"net/http"
	"sync"
	"testing"
	"time"
	"unicode/utf8"
	"unsafe"

	"github.com/stretchr/testify/require"

	"github.com/agenttrace/agenttrace"
	"github.com/agenttrace/agenttrace/internal/jsonesc"
	"github.com/agenttrace/agenttrace/internal/jsonscan"
)

// fakeClock is a clock that moves only when told to.
type fakeClock struct {
	mu      sync.Mutex
	now     time.Time
	waiters []fakeWaiter
}

type fakeWaiter struct {
	at time.Time
	c  chan time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{now: time.Unix(1_700_000_000, 0)} }

func (f *fakeClock) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

func (f *fakeClock) After(d time.Duration) (<-chan time.Time, func() bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := make(chan time.Time, 1)
	if d <= 0 {
		c <- f.now
		return c, func() bool { return false }
	}
	f.waiters = append(f.waiters, fakeWaiter{at: f.now.Add(d), c: c})
	return c, func() bool { return true }
}

// advance moves the clock on, firing the timers that fall due.
func (f *fakeClock) advance(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.now = f.now.Add(d)
	kept := f.waiters[:0]
	for _, w := range f.waiters {
		if w.at.After(f.now) {
			kept = append(kept, w)
			continue
		}
		w.c <- f.now
	}
	f.waiters = kept
}

// The breaker's states, driven by a fake clock and checked by event order:
// no real time passes, so the outcome does not depend on the machine's load.
func TestBreaker(t *testing.T) {
	clk := newFakeClock()
	b := newBreaker(Breaker{Failures: 3, Cooldown: 20 * time.Millisecond, MaxCooldown: 40 * time.Millisecond}, clk)
	ctx := context.Background()
	for range 2 {
		probe, err := b.wait(ctx)
		require.NoError(t, err)
		require.False(t, probe)
		b.failure(false)
	}
	require.False(t, b.isOpen(), "two failures keep it closed")
	b.failure(false)
	require.True(t, b.isOpen())

	// While open, callers wait; a context that ends gives up.
	short, cancel := context.WithCancel(ctx)
	errc := make(chan error)
	go func() {
		_, err := b.wait(short)
		errc <- err
	}()
	cancel()
	require.ErrorIs(t, <-errc, context.Canceled)

	// Before the cooldown nobody goes; after it one probe goes and others
	// wait for its outcome.
	probec := make(chan bool)
	go func() {
		p, _ := b.wait(ctx)
		probec <- p
	}()
	clk.advance(19 * time.Millisecond)
	select {
	case <-probec:
		t.Fatal("a request went through before the cooldown")
	default:
	}
	clk.advance(time.Millisecond)
	require.True(t, <-probec, "after the cooldown, the probe")
	waited := make(chan bool)
	go func() {
		p, _ := b.wait(ctx)
		waited <- p
	}()
	clk.advance(time.Hour) // the probe is out: time does not let anyone else through
	select {
	case <-waited:
		t.Fatal("a second request went through while the probe was out")
	default:
	}
	b.failure(true) // the probe failed: open again, twice as long
	require.True(t, b.isOpen())
	clk.advance(39 * time.Millisecond)
	select {
	case <-waited:
		t.Fatal("the doubled cooldown was not kept")
	default:
	}
	clk.advance(time.Millisecond)
	require.True(t, <-waited, "after the next cooldown the waiter is the probe")
	b.success()
	require.False(t, b.isOpen())
	probe, err := b.wait(ctx)
	require.NoError(t, err)
	require.False(t, probe)

	// A probe that ends without an outcome lets the next one go at once.
	for range 3 {
		b.failure(false)
	}
	clk.advance(20 * time.Millisecond) // the cooldown is back to its start
	probe, _ = b.wait(ctx)
	require.True(t, probe)
	next := make(chan bool)
	go func() {
		p, _ := b.wait(ctx)
		next <- p
	}()
	b.release(true)
	require.True(t, <-next)
	b.success()
	require.EqualValues(t, 2, b.openCount())
}

// Every waiter goes at the probe's success: recovery does not wait for
// anyone's own backoff.
func TestBreakerReleasesAllWaitersAtOnce(t *testing.T) {
	clk := newFakeClock()
	b := newBreaker(Breaker{Failures: 1, Cooldown: time.Second, MaxCooldown: 2 * time.Second}, clk)
	b.failure(false)
	clk.advance(time.Second)
	probe, err := b.wait(context.Background())
	require.NoError(t, err)
	require.True(t, probe)
	const n = 8
	res := make(chan bool, n)
	for range n {
		go func() {
			p, _ := b.wait(context.Background())
			res <- p
		}()
	}
	b.success()
	for range n {
		require.False(t, <-res, "released as ordinary requests")
	}
}

func TestBackoff(t *testing.T) {
	e := &Exporter{cfg: config{retry: Retry{Initial: 100 * time.Millisecond, Max: time.Second, Multiplier: 2}}}
	for n, hi := range []time.Duration{100, 200, 400, 800, 1000, 1000} {
		hi *= time.Millisecond
		for range 50 {
			d := e.backoff(n)
			require.GreaterOrEqual(t, d, hi/2, "retry %d", n)
			require.LessOrEqual(t, d, hi, "retry %d", n)
		}
	}
	require.LessOrEqual(t, e.backoff(1000), time.Second)
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	h := http.Header{}
	require.Zero(t, retryAfter(h, now))
	h.Set("Retry-After", "7")
	require.Equal(t, 7*time.Second, retryAfter(h, now))
	h.Set("Retry-After", now.Add(3*time.Second).Format(http.TimeFormat))
	require.Equal(t, 3*time.Second, retryAfter(h, now))
	h.Set("Retry-After", "soon")
	require.Zero(t, retryAfter(h, now))
	h.Set("Retry-After", "-4")
	require.Zero(t, retryAfter(h, now))
}

func TestEnvelope(t *testing.T) {
	for body, want := range map[string]struct {
		ok        bool
		terminate bool
		reason    string
	}{
		`{"status":"success","details":{"id":"x"}}`:                                        {true, false, ""},
		`{"status":"success","details":{},"control":{"terminate":true,"reason":"budget"}}`: {true, true, "budget"},
		`{"status":"success","control":{"terminate":true,"reason":null}}`:                  {true, true, ""},
		`{"status":"success","control":{"terminate":false}}`:                               {true, false, ""},
		`{"status":"success","control":true}`:                                              {true, false, ""},
		`{"status":"success","control":"terminate"}`:                                       {true, false, ""},
		`not json`:                          {false, false, ""},
		`[1,2]`:                             {false, false, ""},
		`{"status":"success","deta`:         {false, false, ""},
		`<html>502 Bad Gateway</html>`:      {false, false, ""},
		`{"status":"error","code":"x"}`:     {true, false, ""},
		`{"outputs":{"k":{"status":"ok"}}}`: {true, false, ""},
	} {
		env, ok := decodeEnvelope([]byte(body))
		require.Equal(t, want.ok, ok, body)
		reason, term := env.terminate()
		require.Equal(t, want.terminate, term, body)
		require.Equal(t, want.reason, reason, body)
	}
}

func TestAppendString(t *testing.T) {
	for _, s := range []string{"", "plain", "quote\" back\\ nl\n tab\t cr\r ctl\x01\x1f", "ünïcødé ✓ 🚀", "bad\xff\xfeutf8", "\u2028"} {
		b := jsonesc.AppendString(nil, s)
		require.True(t, json.Valid(b), "%q -> %s", s, b)
		require.True(t, utf8.Valid(b))
		var back string
		require.NoError(t, json.Unmarshal(b, &back))
		if utf8.ValidString(s) {
			require.Equal(t, s, back)
		}
	}
}

func TestAppendObject(t *testing.T) {
	d := &agenttrace.SpanData{Error: &agenttrace.ErrorInfo{Type: "x", Message: "m"}, Usage: &agenttrace.Usage{PromptTokens: 1, TotalTokens: 1}}
	for in, want := range map[string]string{
		``:                   `{"error":{"error_type":"x","message":"m"},"token_usage":{"prompt_tokens":1,"completion_tokens":0,"total_tokens":1}}`,
		`{}`:                 `{"error":{"error_type":"x","message":"m"},"token_usage":{"prompt_tokens":1,"completion_tokens":0,"total_tokens":1}}`,
		`{"a":1}`:            `{"error":{"error_type":"x","message":"m"},"token_usage":{"prompt_tokens":1,"completion_tokens":0,"total_tokens":1},"a":1}`,
		`{"error":"own"}`:    `{"token_usage":{"prompt_tokens":1,"completion_tokens":0,"total_tokens":1},"error":"own"}`,
		`{"token_usage":{}}`: `{"error":{"error_type":"x","message":"m"},"token_usage":{}}`,
		`[1]`:                `{"error":{"error_type":"x","message":"m"},"token_usage":{"prompt_tokens":1,"completion_tokens":0,"total_tokens":1}}`,
	} {
		got := appendObject(nil, json.RawMessage(in), d, true)
		require.JSONEq(t, want, string(got), in)
	}
	require.Equal(t, `{"a":1}`, string(appendObject(nil, json.RawMessage(`{"a":1}`), d, false)))
	require.Equal(t, `{}`, string(appendObject(nil, nil, &agenttrace.SpanData{}, true)))
}

// Answers decode into substrings of one copy of the body; what outlives
// the answer (a server-chosen ID, an error, a termination reason) is
// copied, so that it does not keep the whole answer alive.
func TestKeptAnswerStringsAreCopies(t *testing.T) {
	e, err := New(WithURL("http://127.0.0.1:1"), WithToken("test-token-0123456789"), WithPollInterval(-1))
	require.NoError(t, err)
	defer func() { _ = e.Shutdown(context.Background()) }()
	var id agenttrace.ID
	id[0], id[15] = 1, 7
	serverID := PFID(agenttrace.ID{2}, 42)
	body := []byte(`{"status":"success","outputs":{` +
		`"k1":{"status":"success","details":{"id":"` + serverID + `","status":"terminated","termination_reason":"budget spent"}},` +
		`"k2":{"status":"error","code":"validation_errors","message":"payload: required"}}}`)
	d := &decoder{Scanner: jsonscan.NewScanner(body)}
	var env envelope
	require.True(t, envelopeInto(d, &env) && d.End())
	lo := uintptr(unsafe.Pointer(unsafe.StringData(d.S)))
	hi := lo + uintptr(len(d.S))
	inAnswer := func(v string) bool {
		p := uintptr(unsafe.Pointer(unsafe.StringData(v)))
		return p >= lo && p < hi
	}
	ok1, ok2 := env.Outputs["k1"], env.Outputs["k2"]
	require.True(t, inAnswer(ok1.Details.ID), "decoded strings share the answer's copy")

	e.learnID(id, ok1.Details.ID)
	require.Equal(t, serverID, e.instanceID(id))
	require.False(t, inAnswer(e.instanceID(id)), "a learned ID")

	res, err := e.judge(context.Background(), &op{kind: opCreateSpan, inst: id, span: id}, ok2, 0)
	require.NoError(t, err)
	require.Len(t, res, 1)
	var apiErr *APIError
	require.ErrorAs(t, res[0].err, &apiErr)
	require.Equal(t, "validation_errors", apiErr.Code)
	require.False(t, inAnswer(apiErr.Code) || inAnswer(apiErr.Message), "an API error")

	var reason string
	e.SetTerminate(func(_ agenttrace.ID, r string) bool { reason = r; return true })
	e.terminate(id, *ok1.Details.TerminationReason)
	require.Equal(t, "budget spent", reason)
	require.False(t, inAnswer(reason), "a termination reason")
}

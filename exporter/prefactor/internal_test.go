package prefactor

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"
	"unicode/utf8"
	"unsafe"

	"github.com/stretchr/testify/require"

	"github.com/agenttrace/agenttrace"
	"github.com/agenttrace/agenttrace/internal/jsonscan"
)

func TestBreaker(t *testing.T) {
	b := newBreaker(Breaker{Failures: 3, Cooldown: 20 * time.Millisecond, MaxCooldown: 40 * time.Millisecond})
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

	// While open, callers wait; a short context gives up.
	short, cancel := context.WithTimeout(ctx, 5*time.Millisecond)
	_, err := b.wait(short)
	cancel()
	require.ErrorIs(t, err, context.DeadlineExceeded)

	// After the cooldown one probe goes; others wait for its outcome.
	probe, err := b.wait(ctx)
	require.NoError(t, err)
	require.True(t, probe)
	waited := make(chan bool)
	go func() {
		p, _ := b.wait(ctx)
		waited <- p
	}()
	select {
	case <-waited:
		t.Fatal("a second request went through while the probe was out")
	case <-time.After(30 * time.Millisecond):
	}
	b.failure(true) // the probe failed: open again, longer
	require.True(t, b.isOpen())
	require.True(t, <-waited, "after the next cooldown the waiter is the probe")
	b.success()
	require.False(t, b.isOpen())
	probe, err = b.wait(ctx)
	require.NoError(t, err)
	require.False(t, probe)

	// A probe that ends without an outcome lets the next one go.
	for range 3 {
		b.failure(false)
	}
	time.Sleep(25 * time.Millisecond)
	probe, _ = b.wait(ctx)
	require.True(t, probe)
	b.release(true)
	time.Sleep(time.Millisecond)
	probe, _ = b.wait(ctx)
	require.True(t, probe)
	b.success()
	require.EqualValues(t, 2, b.opens)
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
		b := appendString(nil, s)
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
	e, err := New(WithURL("http://127.0.0.1:1"), WithToken("t"), WithPollInterval(-1))
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

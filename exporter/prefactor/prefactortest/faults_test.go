package prefactortest_test

import (
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/agenttrace/agenttrace/exporter/prefactor/prefactortest"
)

func TestFailNext(t *testing.T) {
	c := newClient(t)
	c.srv.FailNext(prefactortest.EndpointPing,
		prefactortest.Fault{Status: 503, RetryAfter: 1500 * time.Millisecond},
		prefactortest.Fault{Status: 500},
		prefactortest.Fault{Status: 502, Body: "<html>bad gateway</html>", ContentType: "text/html"},
		prefactortest.Fault{Status: 429, RetryAfter: time.Second},
		prefactortest.Fault{Body: "not json"},
		prefactortest.Fault{Body: `{"status":"succ`},
	)
	r := c.mustErr("GET", "/api/v1/ping", nil, 503, "unexpected")
	require.Equal(t, "2", r.Header.Get("Retry-After"), "seconds, rounded up")
	r = c.mustErr("GET", "/api/v1/ping", nil, 500, "unexpected")
	require.Empty(t, r.Header.Get("Retry-After"))
	r = c.must("GET", "/api/v1/ping", nil, 502)
	require.Equal(t, "<html>bad gateway</html>", r.Raw)
	require.Equal(t, "text/html", r.Header.Get("Content-Type"))
	r = c.must("GET", "/api/v1/ping", nil, 429)
	require.Equal(t, "1", r.Header.Get("Retry-After"))
	require.Equal(t, "error", r.Body["status"])
	require.Equal(t, "not json", c.must("GET", "/api/v1/ping", nil, 200).Raw)
	require.Equal(t, `{"status":"succ`, c.must("GET", "/api/v1/ping", nil, 200).Raw)
	require.JSONEq(t, `{"status":"success"}`, c.must("GET", "/api/v1/ping", nil, 200).Raw, "the queue is spent")

	// Faults for one endpoint leave the others alone; EndpointAny comes
	// after an endpoint's own queue.
	c.srv.FailNext(prefactortest.EndpointRegister, prefactortest.Fault{Status: 503})
	c.srv.FailNext(prefactortest.EndpointAny, prefactortest.Fault{Status: 502})
	c.srv.FailNext(prefactortest.EndpointPing, prefactortest.Fault{Status: 504})
	c.must("GET", "/api/v1/ping", nil, 504)
	c.must("GET", "/api/v1/ping", nil, 502)
	c.must("GET", "/api/v1/ping", nil, 200)
	body := c.registerBody(nil)
	c.must("POST", pathRegister, body, 503)
	require.Empty(t, c.srv.Instances(), "a fault before processing applies nothing")
	c.must("POST", pathRegister, body, 200)

	counts := c.srv.Counts()
	require.Equal(t, 9, counts.Faults)
	require.Empty(t, counts.Rejected, "injected faults are not rejections")
	require.Equal(t, 10, counts.Requests[prefactortest.EndpointPing])
	faults, ok := 0, 0
	for _, q := range c.srv.Requests() {
		if q.Fault {
			faults++
			if q.Status == 200 {
				ok++ // "not json" and the truncated JSON
			}
		}
	}
	require.Equal(t, 9, faults)
	require.Equal(t, 2, ok)
}

// dropped reports whether err is what a client sees of a connection
// closed without an answer: EOF or a reset, not a timeout.
func dropped(err error) bool {
	if err == nil {
		return false
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return false
	}
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) ||
		strings.Contains(err.Error(), "EOF") || strings.Contains(err.Error(), "connection reset")
}

func TestDrop(t *testing.T) {
	c := newClient(t)
	c.must("GET", "/api/v1/ping", nil, 200) // a kept-alive connection
	c.srv.FailNext(prefactortest.EndpointRegister, prefactortest.Fault{Drop: true})
	body := c.registerBody(nil)
	_, err := c.call("POST", pathRegister, body)
	require.Error(t, err)
	require.True(t, dropped(err), err)
	require.Empty(t, c.srv.Instances(), "dropped before processing")
	reqs := c.srv.Requests()
	last := reqs[len(reqs)-1]
	require.True(t, last.Fault)
	require.Zero(t, last.Status)

	// Dropped after processing: stored, and the retry is a replay.
	c.srv.FailNext(prefactortest.EndpointRegister, prefactortest.Fault{Drop: true, AfterProcessing: true})
	_, err = c.call("POST", pathRegister, body)
	require.True(t, dropped(err), err)
	insts := c.srv.Instances()
	require.Len(t, insts, 1)
	r := c.must("POST", pathRegister, body, 200)
	require.Equal(t, insts[0].ID, r.id())
	reqs = c.srv.Requests()
	require.True(t, reqs[len(reqs)-1].Replayed)
	require.Len(t, c.srv.Instances(), 1)
}

func TestDelay(t *testing.T) {
	c := newClient(t)
	// Past the client's timeout: the client gives up, the server ends the
	// wait and does not process the request.
	c.srv.FailNext(prefactortest.EndpointRegister, prefactortest.Fault{Delay: time.Minute})
	c.hc.Timeout = 100 * time.Millisecond
	_, err := c.call("POST", pathRegister, c.registerBody(nil))
	require.Error(t, err)
	var ne net.Error
	require.True(t, errors.As(err, &ne) && ne.Timeout(), err)
	c.hc.Timeout = 5 * time.Second
	require.Empty(t, c.srv.Instances())

	// Within the timeout: processed normally after the delay.
	c.srv.FailNext(prefactortest.EndpointRegister, prefactortest.Fault{Delay: 60 * time.Millisecond})
	start := time.Now()
	c.must("POST", pathRegister, c.registerBody(nil), 200)
	require.GreaterOrEqual(t, time.Since(start), 60*time.Millisecond)
	require.Len(t, c.srv.Instances(), 1)

	// With a status: answered after the delay.
	c.srv.FailNext(prefactortest.EndpointPing, prefactortest.Fault{Status: 503, Delay: 60 * time.Millisecond})
	start = time.Now()
	c.must("GET", "/api/v1/ping", nil, 503)
	require.GreaterOrEqual(t, time.Since(start), 60*time.Millisecond)

	// Latency is added to every answer.
	c.srv.SetLatency(60 * time.Millisecond)
	start = time.Now()
	c.must("GET", "/api/v1/ping", nil, 200)
	require.GreaterOrEqual(t, time.Since(start), 60*time.Millisecond)
	c.srv.SetLatency(0)
}

func TestAfterProcessing(t *testing.T) {
	c := newClient(t)
	// A 500 after the register was stored: the retry is a replay.
	body := c.registerBody(nil)
	c.srv.FailNext(prefactortest.EndpointRegister, prefactortest.Fault{Status: 500, AfterProcessing: true})
	c.mustErr("POST", pathRegister, body, 500, "unexpected")
	require.Len(t, c.srv.Instances(), 1)
	r := c.must("POST", pathRegister, body, 200)
	require.Equal(t, c.srv.Instances()[0].ID, r.id())
	require.Len(t, c.srv.Instances(), 1, "the retry was a replay")
	inst := r.id()
	c.must("POST", instPath(inst, "start"), map[string]any{"idempotency_key": key()}, 200)

	// A slow answer past the client's timeout after the span was stored.
	create := spanBody(inst, "active", nil)
	c.srv.FailNext(prefactortest.EndpointCreateSpan, prefactortest.Fault{Delay: time.Minute, AfterProcessing: true})
	c.hc.Timeout = 100 * time.Millisecond
	_, err := c.call("POST", pathSpans, create)
	require.Error(t, err)
	c.hc.Timeout = 5 * time.Second
	require.Len(t, c.srv.Spans(inst), 1)
	sp := c.must("POST", pathSpans, create, 200)
	s, _ := c.srv.Span(sp.id())
	require.Equal(t, 1, s.Creates)

	// A garbage answer after the finish was applied.
	fin := map[string]any{"idempotency_key": key()}
	c.srv.FailNext(prefactortest.EndpointFinishSpan, prefactortest.Fault{Status: 200, Body: "<html>", AfterProcessing: true})
	require.Equal(t, "<html>", c.must("POST", spanFinishPath(sp.id()), fin, 200).Raw)
	s, _ = c.srv.Span(sp.id())
	require.Equal(t, "complete", s.Status)
	c.must("POST", spanFinishPath(sp.id()), fin, 200)
	s, _ = c.srv.Span(sp.id())
	require.Equal(t, 1, s.Finishes)

	// Bulk: the items were run; the retry replays them all.
	items := map[string]any{"items": []any{map[string]any{"_type": "agent_instances/finish", "idempotency_key": "item-0001", "agent_instance_id": inst}}}
	c.srv.FailNext(prefactortest.EndpointBulk, prefactortest.Fault{Status: 502, AfterProcessing: true})
	c.must("POST", pathBulk, items, 502)
	r = c.must("POST", pathBulk, items, 200)
	require.Equal(t, "success", r.outputs()["item-0001"].(map[string]any)["status"], r.Raw)
	require.NoError(t, c.srv.Validate())
}

func TestOutage(t *testing.T) {
	c := newClient(t)
	c.srv.Outage(time.Hour)
	c.mustErr("GET", "/api/v1/ping", nil, 503, "unexpected")
	c.must("POST", pathRegister, c.registerBody(nil), 503)
	require.Empty(t, c.srv.Instances())
	c.srv.Outage(0)
	c.must("GET", "/api/v1/ping", nil, 200)
	// The window ends by itself.
	c.srv.Outage(300 * time.Millisecond)
	c.must("GET", "/api/v1/ping", nil, 503)
	time.Sleep(350 * time.Millisecond)
	c.must("GET", "/api/v1/ping", nil, 200)

	c.srv.SetDown(true)
	for range 3 {
		c.must("GET", "/api/v1/ping", nil, 503)
	}
	c.srv.SetDown(false)
	c.must("GET", "/api/v1/ping", nil, 200)
	require.Equal(t, 6, c.srv.Counts().Faults)
}

func TestRandomFaults(t *testing.T) {
	a, b := newClient(t), newClient(t)
	for _, c := range []*client{a, b} {
		c.srv.SetRandomFaults(prefactortest.RandomFaults{Seed: 9, Status503: 0.3, Status429: 0.2, RetryAfter: 2 * time.Second})
	}
	n := map[int]int{}
	for range 200 {
		ra, err := a.call("GET", "/api/v1/ping", nil)
		require.NoError(t, err)
		rb, err := b.call("GET", "/api/v1/ping", nil)
		require.NoError(t, err)
		require.Equal(t, ra.Status, rb.Status, "the same seed draws the same faults")
		if ra.Status == 429 {
			require.Equal(t, "2", ra.Header.Get("Retry-After"))
		}
		n[ra.Status]++
	}
	require.InDelta(t, 60, n[503], 25)
	require.InDelta(t, 40, n[429], 22)
	require.Equal(t, 200, n[200]+n[503]+n[429])
	a.srv.SetRandomFaults(prefactortest.RandomFaults{})
	for range 20 {
		a.must("GET", "/api/v1/ping", nil, 200)
	}

	// Drops: alternately after and before processing.
	c := newClient(t)
	c.srv.SetRandomFaults(prefactortest.RandomFaults{Seed: 1, Drop: 1})
	for range 4 {
		_, err := c.call("POST", pathRegister, c.registerBody(nil))
		require.True(t, dropped(err), err)
	}
	require.Len(t, c.srv.Instances(), 2, "half the drops came after processing")

	// Slow: processed, then answered after SlowDelay.
	c.srv.SetRandomFaults(prefactortest.RandomFaults{Seed: 1, Slow: 1, SlowDelay: time.Minute})
	c.hc.Timeout = 100 * time.Millisecond
	_, err := c.call("POST", pathRegister, c.registerBody(nil))
	require.Error(t, err)
	require.Len(t, c.srv.Instances(), 3)
}

func TestCloseEndsDelayedRequests(t *testing.T) {
	c := newClient(t)
	c.srv.SetLatency(time.Hour)
	c.srv.FailNext(prefactortest.EndpointAny, prefactortest.Fault{Delay: time.Hour})
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := c.call("GET", "/api/v1/ping", nil)
			errs <- err
		}()
	}
	require.Eventually(t, func() bool { return len(c.srv.Requests()) == 2 }, 5*time.Second, 5*time.Millisecond)
	start := time.Now()
	c.srv.Close()
	wg.Wait()
	require.Less(t, time.Since(start), 2*time.Second)
	close(errs)
	for err := range errs {
		require.Error(t, err)
	}
	c.srv.Close()
}

func TestRequestsLog(t *testing.T) {
	c := newClient(t)
	before := time.Now()
	c.must("GET", "/api/v1/ping", nil, 200)
	body := c.registerBody(nil)
	c.must("POST", pathRegister, body, 200)
	c.tok = ""
	c.must("GET", "/api/v1/nothing", nil, 401)
	reqs := c.srv.Requests()
	require.Len(t, reqs, 3)
	require.Equal(t, "GET", reqs[0].Method)
	require.Equal(t, "/api/v1/ping", reqs[0].Path)
	require.Equal(t, prefactortest.EndpointPing, reqs[0].Endpoint)
	require.Equal(t, 200, reqs[0].Status)
	require.Equal(t, "Bearer "+c.srv.Token(), reqs[0].Header.Get("Authorization"))
	require.Empty(t, reqs[0].Body)
	require.Equal(t, prefactortest.EndpointRegister, reqs[1].Endpoint)
	require.JSONEq(t, string(mustJSON(t, body)), string(reqs[1].Body))
	require.Equal(t, prefactortest.EndpointOther, reqs[2].Endpoint)
	require.Equal(t, 401, reqs[2].Status)
	require.Empty(t, reqs[2].Header.Get("Authorization"))
	require.False(t, reqs[0].At.Before(before))
	require.False(t, reqs[1].At.Before(reqs[0].At))
	// Copies: changing them changes nothing stored.
	reqs[0].Header.Set("Authorization", "x")
	require.Equal(t, "Bearer "+c.srv.Token(), c.srv.Requests()[0].Header.Get("Authorization"))
}

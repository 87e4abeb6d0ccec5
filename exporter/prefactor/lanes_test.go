package prefactor_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/agenttrace/agenttrace"
	"github.com/agenttrace/agenttrace/exporter/prefactor"
	"github.com/agenttrace/agenttrace/exporter/prefactor/prefactortest"
)

// proxy is a loopback reverse proxy in front of the fake API that can hold
// requests back or rewrite answers.
type proxy struct {
	*httptest.Server
	mu      sync.Mutex
	hold    func(body []byte) bool // requests to hold until release
	release chan struct{}
	held    chan struct{} // one send per held request
	rewrite func(body []byte) []byte
}

func newProxy(t *testing.T, target string) *proxy {
	t.Helper()
	u, err := url.Parse(target)
	require.NoError(t, err)
	p := &proxy{release: make(chan struct{}), held: make(chan struct{}, 100)}
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.ModifyResponse = func(r *http.Response) error {
		p.mu.Lock()
		rw := p.rewrite
		p.mu.Unlock()
		if rw == nil {
			return nil
		}
		b, err := io.ReadAll(r.Body)
		if err != nil {
			return err
		}
		b = rw(b)
		r.Body = io.NopCloser(bytes.NewReader(b))
		r.ContentLength = int64(len(b))
		r.Header.Del("Content-Length")
		return nil
	}
	p.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		p.mu.Lock()
		hold := p.hold
		p.mu.Unlock()
		if hold != nil && hold(body) {
			p.held <- struct{}{}
			select {
			case <-p.release:
			case <-r.Context().Done():
				return
			}
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(p.Close)
	return p
}

// One instance whose requests hang holds up only itself: the other
// instances' spans reach the server meanwhile (checked by event order: the
// hung request is still held when they land).
func TestLanesProgressIndependently(t *testing.T) {
	clearEnv(t)
	srv := prefactortest.NewServer()
	t.Cleanup(srv.Close)
	px := newProxy(t, srv.URL)
	exp, err := prefactor.New(prefactor.WithURL(px.URL), prefactor.WithToken(srv.Token()),
		prefactor.WithAgentID(srv.AgentID()), prefactor.WithEnvironmentID(srv.EnvironmentID()),
		prefactor.WithRetry(prefactor.Retry{AttemptTimeout: time.Minute}))
	require.NoError(t, err)
	tr, err := agenttrace.New(agenttrace.WithExporter(exp), agenttrace.WithFlushInterval(10*time.Millisecond))
	require.NoError(t, err)
	t.Cleanup(func() { _ = tr.Shutdown(context.Background()) })

	slowCtx, slow := tr.StartInstance(context.Background())
	require.NoError(t, tr.Flush(context.Background()))
	slowID := pfid(slow.ID(), srv)
	px.mu.Lock()
	px.hold = func(b []byte) bool { return bytes.Contains(b, []byte(slowID)) }
	px.mu.Unlock()

	_, s := tr.Start(slowCtx, "tool", agenttrace.ToolInput{Name: "stuck"})
	s.End()
	<-px.held // the slow instance's request hangs now

	var others []*agenttrace.Instance
	for range 5 {
		ctx, run := tr.StartInstance(context.Background())
		for range 3 {
			_, s := tr.Start(ctx, "tool", agenttrace.ToolInput{Name: "free"})
			s.End()
		}
		run.End()
		others = append(others, run)
	}
	require.Eventually(t, func() bool {
		done := 0
		for _, r := range others {
			if in, ok := srv.Instance(pfid(r.ID(), srv)); ok && in.Status == "complete" && len(srv.Spans(in.ID)) == 3 {
				done++
			}
		}
		return done == len(others)
	}, 30*time.Second, 5*time.Millisecond, "the other instances were delivered while one hung")
	require.Empty(t, srv.Spans(slowID), "the hung request is still held")

	close(px.release)
	slow.End()
	require.NoError(t, tr.Shutdown(context.Background()))
	require.Len(t, srv.Spans(slowID), 1)
	require.Zero(t, tr.Stats().Failed)
}

// A server that swaps the details of two bulk outputs cannot give spans
// each other's identity: the IDs the exporter chose stay, the mismatch is
// counted and reported, and every result lands on its own span.
func TestSwappedBulkOutputsAreNotBelieved(t *testing.T) {
	clearEnv(t)
	srv := prefactortest.NewServer()
	t.Cleanup(srv.Close)
	px := newProxy(t, srv.URL)
	var swapped atomic.Int64
	px.rewrite = func(b []byte) []byte {
		var ans struct {
			Status  string                     `json:"status"`
			Outputs map[string]json.RawMessage `json:"outputs"`
		}
		if json.Unmarshal(b, &ans) != nil || len(ans.Outputs) < 2 {
			return b
		}
		var creates []string
		for k := range ans.Outputs {
			if strings.HasPrefix(k, "sc-") {
				creates = append(creates, k)
			}
		}
		if len(creates) < 2 {
			return b
		}
		a, c := creates[0], creates[1]
		ans.Outputs[a], ans.Outputs[c] = ans.Outputs[c], ans.Outputs[a]
		swapped.Add(1)
		out, _ := json.Marshal(ans)
		return out
	}
	errs := &errList{}
	exp, err := prefactor.New(append([]prefactor.Option{prefactor.WithURL(px.URL), prefactor.WithToken(srv.Token()),
		prefactor.WithAgentID(srv.AgentID()), prefactor.WithEnvironmentID(srv.EnvironmentID()),
		prefactor.WithErrorHandler(errs.add), prefactor.WithMode(prefactor.ModeBulk)}, fastRetry...)...)
	require.NoError(t, err)
	tr, err := agenttrace.New(agenttrace.WithExporter(exp), agenttrace.WithFlushInterval(time.Hour))
	require.NoError(t, err)
	ctx, run := tr.StartInstance(context.Background())
	var spans []*agenttrace.Span
	for i := range 8 {
		_, s := tr.Start(ctx, "tool", agenttrace.ToolInput{Name: "t", CallID: string(rune('a' + i))})
		spans = append(spans, s)
	}
	require.NoError(t, tr.Flush(context.Background())) // creates, in one bulk request
	for i, s := range spans {
		s.SetResult(agenttrace.ToolOutput{Output: i})
		s.End()
	}
	run.End()
	px.mu.Lock()
	px.rewrite = nil
	px.mu.Unlock()
	require.NoError(t, tr.Shutdown(context.Background()))

	require.NotZero(t, swapped.Load())
	require.NoError(t, srv.Validate())
	for i, s := range spans {
		got, ok := srv.Span(pfid(s.ID(), srv))
		require.True(t, ok)
		require.Equal(t, "complete", got.Status)
		require.JSONEq(t, `{"output":`+string(rune('0'+i))+`}`, string(got.ResultPayload), "span %d has its own result", i)
	}
	n := swapped.Load()
	// Each swapped answer (one per bulk request of creates: the Flush may
	// have split them) is two answers with another span's ID.
	require.EqualValues(t, 2*n, exp.Stats().IDMismatches)
	require.NotEmpty(t, errs.all())
	require.ErrorIs(t, errs.all()[0], prefactor.ErrIDMismatch)
}

// When Shutdown's context ends, in-flight requests are cancelled and
// waited for: no goroutine is left, what was not delivered is counted as
// dropped at shutdown, and the counts add up the moment Shutdown returns.
func TestShutdownContextStopsInFlightWork(t *testing.T) {
	clearEnv(t)
	srv := prefactortest.NewServer()
	t.Cleanup(srv.Close)
	px := newProxy(t, srv.URL)
	px.hold = func([]byte) bool { return true }
	exp, err := prefactor.New(prefactor.WithURL(px.URL), prefactor.WithToken(srv.Token()),
		prefactor.WithAgentID(srv.AgentID()), prefactor.WithEnvironmentID(srv.EnvironmentID()))
	require.NoError(t, err)
	tr, err := agenttrace.New(agenttrace.WithExporter(exp))
	require.NoError(t, err)
	ctx, run := tr.StartInstance(context.Background())
	for range 10 {
		_, s := tr.Start(ctx, "llm", nil)
		s.End()
	}
	run.End()
	<-px.held // a request is in flight, and hangs
	sctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	err = tr.Shutdown(sctx)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.Regexp(t, `\d+ records not exported`, err.Error())
	st := tr.Stats()
	require.Zero(t, st.Queued)
	require.NotZero(t, st.Dropped.Shutdown)
	require.Equal(t, st.Recorded, st.Exported+st.Coalesced+st.Failed+st.Dropped.Total(), "%+v", st)
	var de *agenttrace.DeliveryError
	require.ErrorAs(t, err, &de)
	require.Equal(t, st.Dropped.Shutdown, de.Dropped.Shutdown)
	// The exporter's goroutines and connections are gone; only the test's
	// servers (and the proxy's connections to the fake API) remain.
	http.DefaultTransport.(*http.Transport).CloseIdleConnections()
	goleak.VerifyNone(t, goleak.IgnoreAnyFunction("net/http.(*Server).Serve"),
		goleak.IgnoreAnyFunction("net/http.(*conn).serve"),
		goleak.IgnoreAnyFunction("net/http/httptest.(*Server).goServe.func1"))
	close(px.release)
}

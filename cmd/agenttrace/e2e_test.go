package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/agenttrace/agenttrace"
	"github.com/agenttrace/agenttrace/cmd/agenttrace/internal/server"
	"github.com/agenttrace/agenttrace/cmd/agenttrace/internal/sqlitestore"
	"github.com/agenttrace/agenttrace/exporter/prefactor"
	"github.com/agenttrace/agenttrace/internal/prefactorapi"
)

const testToken = "e2e-token"

type testServer struct {
	store *sqlitestore.Store
	srv   *server.Server
	hs    *httptest.Server
}

func startServer(t testing.TB, wrap func(http.Handler) http.Handler) *testServer {
	t.Helper()
	st, err := sqlitestore.Open(context.Background(), filepath.Join(t.TempDir(), "e2e.db"), sqlitestore.Options{})
	require.NoError(t, err)
	srv, err := server.New(server.Config{Store: st, Token: testToken})
	require.NoError(t, err)
	var h http.Handler = srv
	if wrap != nil {
		h = wrap(h)
	}
	hs := httptest.NewServer(h)
	ts := &testServer{store: st, srv: srv, hs: hs}
	t.Cleanup(func() {
		hs.CloseClientConnections()
		hs.Close()
		_ = st.Close()
	})
	return ts
}

func (ts *testServer) instances(t testing.TB) []prefactorapi.InstanceRecord {
	var out []prefactorapi.InstanceRecord
	require.NoError(t, ts.store.View(context.Background(), func(tx prefactorapi.ReadTx) error {
		var err error
		out, _, err = tx.ListInstances(prefactorapi.InstanceQuery{})
		return err
	}))
	return out
}

func (ts *testServer) spans(t testing.TB, instanceID string) []prefactorapi.SpanRecord {
	var out []prefactorapi.SpanRecord
	require.NoError(t, ts.store.View(context.Background(), func(tx prefactorapi.ReadTx) error {
		var err error
		out, err = tx.ListSpans(instanceID)
		return err
	}))
	return out
}

// The quickstart example, pointed at the server, lands complete.
func TestQuickstartLands(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs examples/quickstart")
	}
	ts := startServer(t, nil)
	bin := filepath.Join(t.TempDir(), "quickstart")
	build := exec.Command("go", "build", "-o", bin, "github.com/agenttrace/agenttrace/examples/quickstart")
	build.Dir = "../.."
	out, err := build.CombinedOutput()
	require.NoError(t, err, string(out))
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), "PREFACTOR_API_URL="+ts.hs.URL, "PREFACTOR_API_TOKEN="+testToken)
	out, err = cmd.CombinedOutput()
	require.NoError(t, err, string(out))
	require.Contains(t, string(out), "dropped=0")
	ins := ts.instances(t)
	require.Len(t, ins, 1, string(out))
	in := ins[0]
	require.Equal(t, "complete", in.Status)
	spans := ts.spans(t, in.ID)
	require.Len(t, spans, 6)
	byStatus := map[string]int{}
	for _, s := range spans {
		byStatus[s.Status]++
		require.Equal(t, 1, s.Creates)
	}
	require.Equal(t, map[string]int{"complete": 5, "failed": 1}, byStatus)
	require.Equal(t, prefactorapi.StatusCounts{Complete: 5, Failed: 1}, in.SpanCounts)
	require.Equal(t, int64(1166), in.Run.TotalTokens, "the summary the example prints: tokens 1166 (1067 in, 99 out)")
	require.Equal(t, int64(1067), in.Run.PromptTokens)
	require.InDelta(t, 0.0037, in.Run.CostTotal, 0.00005)
	// show prints it as a tree.
	var buf bytes.Buffer
	require.NoError(t, renderFromStore(t, ts, in.ID, &buf))
	require.Contains(t, buf.String(), "spans 6 (5 complete, 1 failed)")
	require.Contains(t, buf.String(), "tool get_weather  failed")
	require.Contains(t, buf.String(), `│ name="Rainy afternoon in Lisbon" user=user-1042 channel=web session=sess-7f3a`+"\n",
		"the run's name and parties, as the stdout exporter prints them")
	require.Equal(t, "Rainy afternoon in Lisbon", in.Run.Name, "the listing's name")
}

func renderFromStore(t *testing.T, ts *testServer, id string, w io.Writer) error {
	in, spans, ok, err := ts.srv.API().Instance(context.Background(), id)
	require.True(t, ok)
	require.NoError(t, err)
	return renderTree(context.Background(), w, "quickstart-agent", &in, spans)
}

// faults wraps a handler with random faults: 20% 503, 5% 429 with
// Retry-After, 5% dropped connections (alternately before and after
// processing), 5% answers slower than the client's attempt timeout.
func faults(seed uint64, h http.Handler) (http.Handler, *atomic.Int64) {
	var mu sync.Mutex
	rng := mrand.New(mrand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	flip := false
	var n atomic.Int64
	drop := func(w http.ResponseWriter) {
		if hj, ok := w.(http.Hijacker); ok {
			if c, _, err := hj.Hijack(); err == nil {
				_ = c.Close()
			}
		}
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		x := rng.Float64()
		if x >= 0.20+0.05 && x < 0.30 {
			flip = !flip
		}
		after := flip
		mu.Unlock()
		switch {
		case x < 0.20:
			n.Add(1)
			http.Error(w, `{"status":"error","code":"unexpected","message":"injected"}`, http.StatusServiceUnavailable)
		case x < 0.25:
			n.Add(1)
			w.Header().Set("Retry-After", "1")
			http.Error(w, `{"status":"error","code":"unknown","message":"slow down"}`, http.StatusTooManyRequests)
		case x < 0.30:
			n.Add(1)
			if after {
				h.ServeHTTP(httptest.NewRecorder(), r) // processed and committed; the answer is lost
			}
			drop(w)
		case x < 0.35:
			n.Add(1)
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, r)
			select {
			case <-time.After(500 * time.Millisecond):
			case <-r.Context().Done():
				return
			}
			for k, v := range rec.Header() {
				w.Header()[k] = v
			}
			w.WriteHeader(rec.Code)
			_, _ = w.Write(rec.Body.Bytes())
		default:
			h.ServeHTTP(w, r)
		}
	}), &n
}

func spawn(tr *agenttrace.Tracer, insts []context.Context, n int) {
	var wg sync.WaitGroup
	per := n / len(insts)
	for k, ctx := range insts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			count := per
			if k == len(insts)-1 {
				count = n - per*(len(insts)-1)
			}
			parent := ctx
			for i := range count {
				c, s := tr.Start(parent, "tool", agenttrace.ToolInput{Name: fmt.Sprintf("t%d", i), Arguments: map[string]int{"i": i}})
				if i%10 == 0 {
					parent = c
					defer s.End()
					continue
				}
				s.SetResult(agenttrace.ToolOutput{Output: i})
				s.End()
			}
		}()
	}
	wg.Wait()
}

// The exporter's 10,000-span fault scenario, against the real server
// through a faulty network: every span lands exactly once.
func TestFaultScenarioLandsExactlyOnce(t *testing.T) {
	n, instances := 10_000, 20
	if testing.Short() {
		n = 2000
	}
	// Under the race detector the pure-Go SQLite is about ten times slower:
	// smaller bulk requests and a longer attempt timeout keep an attempt
	// within its timeout there, as a user on a slow server would set them.
	bulk, attempt := 500, 300*time.Millisecond
	if raceEnabled {
		bulk, attempt = 100, 2*time.Second
	}
	var injected *atomic.Int64
	ts := startServer(t, func(h http.Handler) http.Handler {
		f, c := faults(7, h)
		injected = c
		return f
	})
	exp, err := prefactor.New(prefactor.WithURL(ts.hs.URL), prefactor.WithToken(testToken),
		prefactor.WithRetry(prefactor.Retry{Initial: 2 * time.Millisecond, Max: 40 * time.Millisecond,
			Deadline: 2 * time.Minute, AttemptTimeout: attempt}),
		prefactor.WithBreaker(prefactor.Breaker{Failures: 5, Cooldown: 10 * time.Millisecond, MaxCooldown: 50 * time.Millisecond}),
		prefactor.WithBulkLimits(bulk, 4<<20))
	require.NoError(t, err)
	tr, err := agenttrace.New(agenttrace.WithExporter(exp), agenttrace.WithAgent("fault-agent", "1.0.0"),
		agenttrace.WithQueueLimits(1_000_000, 1<<30), agenttrace.WithFlushInterval(100*time.Millisecond),
		agenttrace.WithExportTimeout(2*time.Minute))
	require.NoError(t, err)
	var ctxs []context.Context
	var runs []*agenttrace.Instance
	for range instances {
		ctx, run := tr.StartInstance(context.Background())
		ctxs, runs = append(ctxs, ctx), append(runs, run)
	}
	spawn(tr, ctxs, n)
	for _, r := range runs {
		r.End()
	}
	require.NoError(t, tr.Shutdown(context.Background()))
	st := tr.Stats()
	require.Zero(t, st.Failed)
	require.Zero(t, st.Dropped.Total())
	require.NotZero(t, injected.Load(), "faults were injected")

	ins := ts.instances(t)
	require.Len(t, ins, instances)
	total := 0
	for _, in := range ins {
		require.Equal(t, "complete", in.Status)
		spans := ts.spans(t, in.ID)
		total += len(spans)
		seen := map[string]int{}
		for i, s := range spans {
			require.Equal(t, 1, s.Creates, s.ID)
			require.LessOrEqual(t, s.Finishes, 1, s.ID)
			require.Equal(t, "complete", s.Status, s.ID)
			if s.ParentID != "" {
				p, ok := seen[s.ParentID]
				require.True(t, ok, "the parent of %s was created before it", s.ID)
				require.Less(t, p, i)
			}
			seen[s.ID] = i
		}
		require.Equal(t, int64(len(spans)), in.SpanCounts.Complete)
	}
	require.Equal(t, n, total)
	t.Logf("faults injected: %d; exporter stats %+v", injected.Load(), exp.Stats())
}

func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return addr
}

// child starts this test binary as a child process in a mode.
func child(t *testing.T, args ...string) (*exec.Cmd, *bufio.Reader) {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "AGENTTRACE_TEST_CHILD="+strings.Join(args, "\x1f"))
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	cmd.Stderr = os.Stderr
	require.NoError(t, cmd.Start())
	return cmd, bufio.NewReader(out)
}

func waitServing(t *testing.T, out *bufio.Reader) {
	for {
		line, err := out.ReadString('\n')
		require.NoError(t, err, "the server did not start")
		if strings.Contains(line, "serving http://") {
			go func() { _, _ = io.Copy(io.Discard, out) }()
			return
		}
	}
}

// Killed with SIGKILL mid-ingest and restarted, the server opens its
// database and nothing it acknowledged is missing.
func TestCrashSafety(t *testing.T) {
	db := filepath.Join(t.TempDir(), "crash.db")
	addr := freeAddr(t)
	cmd, out := child(t, "serve", "--db", db, "--addr", addr, "--token", testToken)
	waitServing(t, out)
	base := "http://" + addr
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{}}
	defer hc.CloseIdleConnections()
	post := func(path, body string) (int, map[string]any, error) {
		req, _ := http.NewRequest("POST", base+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+testToken)
		resp, err := hc.Do(req)
		if err != nil {
			return 0, nil, err
		}
		defer resp.Body.Close()
		var m map[string]any
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			return 0, nil, err
		}
		_ = json.Unmarshal(b, &m)
		return resp.StatusCode, m, nil
	}
	code, reg, err := post("/api/v1/agent_instance/register", `{"idempotency_key":"reg"}`)
	require.NoError(t, err)
	require.Equal(t, 200, code)
	inst := reg["details"].(map[string]any)["id"].(string)

	var acked sync.Map
	var nAcked atomic.Int64
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				if i%2 == 0 {
					k := fmt.Sprintf("w%d-%d", w, i)
					code, m, err := post("/api/v1/agent_spans", `{"idempotency_key":"`+k+`","details":{"agent_instance_id":"`+inst+
						`","schema_name":"tool","status":"complete","payload":{"i":`+strconv.Itoa(i)+`}}}`)
					if err == nil && code == 200 {
						acked.Store(m["details"].(map[string]any)["id"].(string), true)
						nAcked.Add(1)
					}
				} else {
					var items []string
					for j := range 20 {
						items = append(items, `{"_type":"agent_spans/create","idempotency_key":"bulk-`+fmt.Sprintf("%d-%d-%d", w, i, j)+
							`","details":{"agent_instance_id":"`+inst+`","schema_name":"tool","status":"active","payload":{}}}`)
					}
					code, m, err := post("/api/v1/bulk", `{"items":[`+strings.Join(items, ",")+`]}`)
					if err == nil && code == 200 {
						for _, o := range m["outputs"].(map[string]any) {
							acked.Store(o.(map[string]any)["details"].(map[string]any)["id"].(string), true)
							nAcked.Add(1)
						}
					}
				}
			}
		}()
	}
	for nAcked.Load() < 2000 {
		time.Sleep(10 * time.Millisecond)
	}
	require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
	_ = cmd.Wait()
	close(stop)
	wg.Wait()

	// Restart: it opens, and has every acknowledged span.
	cmd2, out2 := child(t, "serve", "--db", db, "--addr", addr, "--token", testToken)
	waitServing(t, out2)
	defer func() {
		_ = cmd2.Process.Signal(syscall.SIGTERM)
		_ = cmd2.Wait()
	}()
	req, _ := http.NewRequest("GET", base+"/api/v1/agent_spans?agent_instance_id="+inst+"&pagination[page_size]=1", nil)
	req.Header.Set("Authorization", "Bearer "+testToken)
	resp, err := hc.Do(req)
	require.NoError(t, err)
	var page struct {
		Pagination prefactorapi.Pagination `json:"pagination"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&page))
	resp.Body.Close()
	require.GreaterOrEqual(t, page.Pagination.ItemCount, int(nAcked.Load()))

	st, err := sqlitestore.Open(context.Background(), db, sqlitestore.Options{})
	require.NoError(t, err)
	defer st.Close()
	stored := map[string]bool{}
	require.NoError(t, st.View(context.Background(), func(tx prefactorapi.ReadTx) error {
		spans, err := tx.ListSpans(inst)
		for _, s := range spans {
			stored[s.ID] = true
		}
		return err
	}))
	missing := 0
	acked.Range(func(k, _ any) bool {
		if !stored[k.(string)] {
			missing++
		}
		return true
	})
	require.Zero(t, missing, "acknowledged spans missing after SIGKILL (%d acknowledged, %d stored)", nAcked.Load(), len(stored))
	t.Logf("%d spans acknowledged before SIGKILL, %d stored", nAcked.Load(), len(stored))
}

// childIngest ingests into a database directly: a run with n bulk
// requests of 50 span creates.
func childIngest(args []string) error {
	db, n := args[0], 0
	n, _ = strconv.Atoi(args[1])
	ctx := context.Background()
	st, err := sqlitestore.Open(ctx, db, sqlitestore.Options{})
	if err != nil {
		return err
	}
	defer st.Close()
	api, err := prefactorapi.New(st, prefactorapi.Config{AccountID: server.AccountID, EnvironmentID: server.EnvironmentID})
	if err != nil {
		return err
	}
	ans := api.Do(ctx, prefactorapi.EndpointRegister, "", []byte(`{"idempotency_key":"reg-`+strconv.Itoa(os.Getpid())+`","agent_version":{"name":"multi"}}`), nil)
	if ans.Status != 200 {
		return fmt.Errorf("register: %s", ans.Body)
	}
	var reg struct{ Details struct{ ID string } }
	if err := json.Unmarshal(ans.Body, &reg); err != nil {
		return err
	}
	for i := range n {
		var items []string
		for j := range 50 {
			items = append(items, fmt.Sprintf(`{"_type":"agent_spans/create","idempotency_key":"p%d-%d-%d","details":{"agent_instance_id":%q,"schema_name":"tool","status":"complete","payload":{}}}`,
				os.Getpid(), i, j, reg.Details.ID))
		}
		ans := api.Do(ctx, prefactorapi.EndpointBulk, "", []byte(`{"items":[`+strings.Join(items, ",")+`]}`), nil)
		if ans.Status != 200 || bytes.Contains(ans.Body, []byte(`"status":"error"`)) {
			return fmt.Errorf("bulk %d: %d %s", i, ans.Status, ans.Body)
		}
	}
	return nil
}

// Several processes ingesting into one database at once lose nothing.
func TestConcurrentProcesses(t *testing.T) {
	db := filepath.Join(t.TempDir(), "multi.db")
	st, err := sqlitestore.Open(context.Background(), db, sqlitestore.Options{}) // created before the children race
	require.NoError(t, err)
	require.NoError(t, st.Close())
	const procs, bulks = 3, 20
	var cmds []*exec.Cmd
	for range procs {
		cmd, out := child(t, "ingest", db, strconv.Itoa(bulks))
		go func() { _, _ = io.Copy(io.Discard, out) }()
		cmds = append(cmds, cmd)
	}
	for _, c := range cmds {
		require.NoError(t, c.Wait())
	}
	st, err = sqlitestore.Open(context.Background(), db, sqlitestore.Options{})
	require.NoError(t, err)
	defer st.Close()
	require.NoError(t, st.View(context.Background(), func(tx prefactorapi.ReadTx) error {
		ins, total, err := tx.ListInstances(prefactorapi.InstanceQuery{})
		require.Equal(t, procs, total)
		for _, in := range ins {
			require.Equal(t, int64(bulks*50), in.SpanCounts.Complete)
		}
		spans, err2 := tx.ListSpans("")
		require.Len(t, spans, procs*bulks*50)
		ags, _ := tx.ListAgents()
		require.Len(t, ags, 1, "one agent, found by name by every process")
		return errorsJoin(err, err2)
	}))
}

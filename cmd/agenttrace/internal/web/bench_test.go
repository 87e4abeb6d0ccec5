package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/agenttrace/agenttrace"
	"github.com/agenttrace/agenttrace/internal/prefactorapi"
)

// bigRun records one run of n spans through the exporter: an agent span
// with LLM calls, each with tool calls under it, one in 97 failing.
func bigRun(t testing.TB, ts *testServer, name string, n int) string {
	tr := ts.tracer(t, "bench-agent", "1.0.0")
	ctx, inst := tr.StartInstance(context.Background())
	actx, root := tr.Start(ctx, agenttrace.TypeAgent, map[string]any{"instance": map[string]string{"name": name}})
	made := 1
	for made < n {
		lctx, llm := tr.Start(actx, agenttrace.TypeLLM, agenttrace.LLMRequest{Model: "gpt-4o",
			Messages: []agenttrace.Message{{Role: "user", Content: fmt.Sprintf("step %d", made)}}})
		made++
		for k := 0; k < 9 && made < n; k++ {
			_, tool := tr.Start(lctx, agenttrace.TypeTool, agenttrace.ToolInput{Name: fmt.Sprintf("tool-%d", k)})
			if made%97 == 0 {
				tool.Fail(errors.New("tool failed"))
			} else {
				tool.SetResult(map[string]any{"ok": true, "n": made})
				tool.End()
			}
			made++
		}
		llm.SetResult(agenttrace.LLMResponse{Text: "ok", Usage: &agenttrace.Usage{PromptTokens: 100, CompletionTokens: 10},
			Cost: &agenttrace.Cost{Prompt: 0.0001, Completion: 0.00001, Currency: "USD"}})
		llm.End()
	}
	root.End()
	inst.End()
	flush(t, tr)
	return ts.runID(t, name)
}

// signIn logs the browser in through the login form.
func signIn(t testing.TB, ctx context.Context, ts *testServer) {
	within(t, ctx, chromedp.Navigate(ts.URL+"/login"), visible("#token"),
		chromedp.SendKeys(chromedp.ID("token"), testToken), chromedp.Submit(chromedp.ID("token")), visible("#runs"))
}

// BenchmarkRunPage5000Spans opens a 5,000-span run in headless Chromium:
// from navigation until the tree and waterfall rows are drawn (the read of
// the run's spans included).
func BenchmarkRunPage5000Spans(b *testing.B) {
	ctx := newBrowser(b, 1400, 900)
	ts := newTestServer(b)
	id := bigRun(b, ts, "five thousand", 5000)
	signIn(b, ctx, ts)
	ready := `document.querySelector("main").dataset.ready === "true" && document.querySelectorAll("#tree .row .bar").length > 20`
	b.ResetTimer()
	for b.Loop() {
		within(b, ctx, chromedp.Navigate(ts.URL+"/runs/"+id), waitJS(ready))
	}
	b.StopTimer()
	require.Equal(b, "5,000 spans", text(b, ctx, "#span-count"))
	// The in-page part: from the answer's arrival to the rows drawn.
	var ms float64
	within(b, ctx, chromedp.Navigate(ts.URL+"/runs/"+id), waitJS(ready))
	ms = eval[float64](b, ctx, `performance.getEntriesByName("run-drawn")[0].startTime`)
	b.ReportMetric(ms, "drawn-ms")
	ms = eval[float64](b, ctx, `performance.getEntriesByName("run-fetched")[0].startTime - performance.getEntriesByName("run-fetch")[0].startTime`)
	b.ReportMetric(ms, "fetch-ms")
	ms = eval[float64](b, ctx, `performance.getEntriesByName("run-drawn")[0].startTime - performance.getEntriesByName("run-fetched")[0].startTime`)
	b.ReportMetric(ms, "render-ms")
}

// benchAgentID is the seeded agent of BenchmarkRunsPage50k (fixed, so a
// kept database is found again).
const benchAgentID = "01m8st5q7q000007332c5qp11entzs80"

// BenchmarkRunsPage50k reads the runs page's data with 50,000 runs stored
// (SQLite): the default page, filtered by user (a store index), by status
// (a scan in start order) and by a time range; and the whole runs page in
// headless Chromium until its rows are drawn.
func BenchmarkRunsPage50k(b *testing.B) {
	// With sub-benchmarks, this function runs once: the store is seeded
	// once, into AGENTTRACE_BENCH_DB when set (kept and reused).
	path := os.Getenv("AGENTTRACE_BENCH_DB")
	if path == "" {
		path = filepath.Join(b.TempDir(), "runs50k.db")
	}
	ts := newTestServerAt(b, path)
	var have int
	require.NoError(b, ts.Store.View(context.Background(), func(tx prefactorapi.ReadTx) error {
		_, n, err := tx.ListInstances(prefactorapi.InstanceQuery{Limit: 1})
		have = n
		return err
	}))
	if have != 50000 {
		require.Zero(b, have, "AGENTTRACE_BENCH_DB holds another data set")
		start := time.Now()
		seedInstances(b, ts.Store, benchAgentID, prefactorapi.NewPFID(7), 50000, time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
		b.Logf("seeded 50,000 runs in %s", time.Since(start).Round(time.Millisecond))
	}
	agentID := benchAgentID
	from := time.Date(2026, 1, 20, 0, 0, 0, 0, time.UTC).Format(time.RFC3339)
	to := time.Date(2026, 1, 21, 0, 0, 0, 0, time.UTC).Format(time.RFC3339)
	for _, q := range []struct{ name, query string }{
		{"api/page1", ""}, {"api/page100", "page=100"}, {"api/user", "user=user-3"}, {"api/agent+user", "agent=" + agentID + "&user=user-3"},
		{"api/search", "search=run+4999"}, {"api/status=failed", "status=failed"},
		{"api/status=failed/page50", "status=failed&page=50"}, {"api/day-range", "from=" + from + "&to=" + to},
		{"api/agents-menus", "\x00/viewer/api/agents?stats=false"}, {"api/agents-stats", "\x00/viewer/api/agents"},
	} {
		b.Run(q.name, func(b *testing.B) {
			u := ts.URL + "/viewer/api/runs?" + q.query
			if p, ok := strings.CutPrefix(q.query, "\x00"); ok {
				u = ts.URL + p
			}
			req, _ := http.NewRequest(http.MethodGet, u, nil)
			req.Header.Set("Authorization", "Bearer "+testToken)
			for b.Loop() {
				res, err := http.DefaultClient.Do(req)
				if err != nil {
					b.Fatal(err)
				}
				_, _ = io.Copy(io.Discard, res.Body)
				res.Body.Close()
				if res.StatusCode != http.StatusOK {
					b.Fatal(res.Status)
				}
			}
		})
	}
	b.Run("browser/runs-page", func(b *testing.B) {
		ctx := newBrowser(b, 1400, 900)
		signIn(b, ctx, ts)
		for b.Loop() {
			within(b, ctx, chromedp.Navigate(ts.URL+"/runs"), waitJS(`document.querySelectorAll("#runs tbody tr[data-id]").length === 20`))
		}
		require.Equal(b, "50,000 runs · page 1 of 2,500", text(b, ctx, "#runs-summary"))
	})
}

// BenchmarkRunRead5000Spans is the server's side of opening a 5,000-span
// run: reading it from SQLite and encoding the answer.
func BenchmarkRunRead5000Spans(b *testing.B) {
	ts := newTestServer(b)
	id := bigRun(b, ts, "five thousand", 5000)
	b.ResetTimer()
	var n int
	for b.Loop() {
		d, ok, err := getRun(context.Background(), ts.API, id)
		if err != nil || !ok {
			b.Fatal(ok, err)
		}
		buf, err := json.Marshal(d)
		if err != nil {
			b.Fatal(err)
		}
		n = len(buf)
	}
	b.ReportMetric(float64(n), "answer-bytes")
}

package web

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agenttrace/agenttrace/internal/prefactorapi"
)

func noRedirect(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

func TestNewRequiresAPIAndToken(t *testing.T) {
	api, err := prefactorapi.New(prefactorapi.NewMemoryStore(), prefactorapi.Config{AccountID: prefactorapi.NewPFID(1)})
	require.NoError(t, err)
	_, err = New(Config{Token: "x"})
	require.Error(t, err)
	_, err = New(Config{API: api})
	require.Error(t, err)
}

func TestLogin(t *testing.T) {
	ts := newTestServer(t)
	c := &http.Client{CheckRedirect: noRedirect}

	// Pages send a person to the login form, keeping where they were going.
	res, err := c.Get(ts.URL + "/runs/abc?span=x")
	require.NoError(t, err)
	res.Body.Close()
	assert.Equal(t, http.StatusSeeOther, res.StatusCode)
	assert.Equal(t, "/login?next="+url.QueryEscape("/runs/abc?span=x"), res.Header.Get("Location"))
	// The reads answer 401 in the API's error shape.
	res, err = c.Get(ts.URL + "/viewer/api/runs")
	require.NoError(t, err)
	var e map[string]string
	require.NoError(t, json.NewDecoder(res.Body).Decode(&e))
	res.Body.Close()
	assert.Equal(t, http.StatusUnauthorized, res.StatusCode)
	assert.Equal(t, "not_authenticated", e["code"])

	// A wrong token is refused and sets no cookie.
	res, err = c.PostForm(ts.URL+"/login", url.Values{"token": {"nope"}, "next": {"/agents"}})
	require.NoError(t, err)
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	assert.Equal(t, http.StatusUnauthorized, res.StatusCode)
	assert.Empty(t, res.Cookies())
	assert.NotContains(t, string(body), testToken)

	// The right one sets an HttpOnly, SameSite=Strict cookie that is not the token.
	res, err = c.PostForm(ts.URL+"/login", url.Values{"token": {testToken}, "next": {"/agents"}})
	require.NoError(t, err)
	res.Body.Close()
	assert.Equal(t, http.StatusSeeOther, res.StatusCode)
	assert.Equal(t, "/agents", res.Header.Get("Location"))
	require.Len(t, res.Cookies(), 1)
	ck := res.Cookies()[0]
	assert.Equal(t, CookieName, ck.Name)
	assert.True(t, ck.HttpOnly)
	assert.Equal(t, http.SameSiteStrictMode, ck.SameSite)
	assert.Equal(t, "/", ck.Path)
	assert.NotContains(t, ck.Value, testToken)

	get := func(path string, mod func(*http.Request)) int {
		req, _ := http.NewRequest(http.MethodGet, ts.URL+path, nil)
		mod(req)
		res, err := c.Do(req)
		require.NoError(t, err)
		res.Body.Close()
		return res.StatusCode
	}
	withCookie := func(v string) func(*http.Request) {
		return func(r *http.Request) { r.AddCookie(&http.Cookie{Name: CookieName, Value: v}) }
	}
	assert.Equal(t, http.StatusOK, get("/viewer/api/runs", withCookie(ck.Value)))
	assert.Equal(t, http.StatusOK, get("/runs", withCookie(ck.Value)))
	// A forged, altered or expired cookie is refused.
	last := "0"
	if strings.HasSuffix(ck.Value, "0") {
		last = "1"
	}
	assert.Equal(t, http.StatusUnauthorized, get("/viewer/api/runs", withCookie(ck.Value[:len(ck.Value)-1]+last)))
	assert.Equal(t, http.StatusUnauthorized, get("/viewer/api/runs", withCookie("2999-01-01T00:00:00Z.00")))
	h, err := New(Config{API: ts.API, Token: testToken})
	require.NoError(t, err)
	assert.Equal(t, http.StatusUnauthorized, get("/viewer/api/runs", withCookie(h.session(time.Now().Add(-time.Minute).Unix()))))
	// One made under another token is refused.
	other, err := New(Config{API: ts.API, Token: "another-token"})
	require.NoError(t, err)
	assert.Equal(t, http.StatusUnauthorized, get("/viewer/api/runs", withCookie(other.session(time.Now().Add(time.Hour).Unix()))))
	// The API token works as a header too, for scripts.
	assert.Equal(t, http.StatusOK, get("/viewer/api/runs", func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+testToken) }))
	assert.Equal(t, http.StatusOK, get("/viewer/api/runs", func(r *http.Request) { r.Header.Set("X-API-KEY", testToken) }))
	assert.Equal(t, http.StatusUnauthorized, get("/viewer/api/runs", func(r *http.Request) { r.Header.Set("Authorization", "Bearer nope") }))

	// Logging out clears the cookie.
	jar, _ := cookiejar.New(nil)
	jc := &http.Client{Jar: jar, CheckRedirect: noRedirect}
	res, err = jc.PostForm(ts.URL+"/login", url.Values{"token": {testToken}})
	require.NoError(t, err)
	res.Body.Close()
	res, err = jc.PostForm(ts.URL+"/logout", nil)
	require.NoError(t, err)
	res.Body.Close()
	res, err = jc.Get(ts.URL + "/viewer/api/runs")
	require.NoError(t, err)
	res.Body.Close()
	assert.Equal(t, http.StatusUnauthorized, res.StatusCode)
}

func TestSafeNext(t *testing.T) {
	for in, want := range map[string]string{
		"/runs?x=1": "/runs?x=1", "": "/", "https://evil.example/": "/", "//evil.example/": "/",
		"/\\evil.example": "/", "runs": "/",
	} {
		assert.Equal(t, want, safeNext(in), in)
	}
}

func TestAssetsAndHeaders(t *testing.T) {
	ts := newTestServer(t)
	for _, p := range []string{"/assets/app.js", "/assets/app.css"} {
		res, err := http.Get(ts.URL + p)
		require.NoError(t, err)
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		assert.Equal(t, http.StatusOK, res.StatusCode, p)
		assert.NotEmpty(t, b)
		assert.Equal(t, "nosniff", res.Header.Get("X-Content-Type-Options"))
	}
	// HTML comes only from the page handlers, behind the login.
	res, err := http.Get(ts.URL + "/assets/index.html")
	require.NoError(t, err)
	res.Body.Close()
	assert.Equal(t, http.StatusNotFound, res.StatusCode)
	res, err = http.Get(ts.URL + "/login")
	require.NoError(t, err)
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	assert.Contains(t, string(b), `name="token"`)
	assert.Contains(t, res.Header.Get("Content-Security-Policy"), "frame-ancestors 'none'")
}

// apiGet reads a viewer JSON answer with the token as a bearer.
func apiGet(t *testing.T, ts *testServer, path string, v any) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, ts.URL+path, nil)
	req.Header.Set("Authorization", "Bearer "+testToken)
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	if v != nil {
		require.NoError(t, json.NewDecoder(res.Body).Decode(v))
	}
	return res.StatusCode
}

// seedInstances stores n instances directly (as the API would have),
// alternating statuses and users, started a minute apart from base.
func seedInstances(t testing.TB, st prefactorapi.Store, agentID, versionID string, n int, base time.Time) []string {
	t.Helper()
	statuses := []string{"complete", "failed", "active", "complete", "cancelled"}
	ids := make([]string, n)
	const batch = 2000
	for lo := 0; lo < n; lo += batch {
		err := st.Update(context.Background(), func(tx prefactorapi.Tx) error {
			if lo == 0 {
				if err := tx.PutAgent(prefactorapi.AgentRecord{ID: agentID, Name: "seeded-agent", Status: "active",
					CurrentVersionID: versionID, InsertedAt: base, UpdatedAt: base}); err != nil {
					return err
				}
				if err := tx.PutAgentVersion(prefactorapi.AgentVersionRecord{ID: versionID, AgentID: agentID, ExternalID: "3.1.0",
					Name: "seeded-agent", Number: 1, InsertedAt: base}); err != nil {
					return err
				}
			}
			for i := lo; i < min(n, lo+batch); i++ {
				at := base.Add(time.Duration(i) * time.Minute)
				in := prefactorapi.InstanceRecord{ID: prefactorapi.NewPFID(7), AgentID: agentID, VersionID: versionID,
					Status: statuses[i%len(statuses)], StartedAt: at, InsertedAt: at, UpdatedAt: at,
					Run: prefactorapi.RunFields{Name: fmt.Sprintf("seeded run %d", i), UserID: fmt.Sprintf("user-%d", i%10),
						GroupID: "g", VersionNumber: 1, TotalTokens: int64(i), PromptTokens: int64(i), CostTotal: 0.001, Currency: "USD"}}
				if in.Status != "active" {
					in.FinishedAt = at.Add(30 * time.Second)
				}
				ids[i] = in.ID
				if err := tx.PutInstance(in); err != nil {
					return err
				}
			}
			return nil
		})
		require.NoError(t, err)
	}
	return ids
}

func TestRunsQuery(t *testing.T) {
	ts := newTestServer(t)
	base := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	agentID, versionID := prefactorapi.NewPFID(7), prefactorapi.NewPFID(7)
	ids := seedInstances(t, ts.Store, agentID, versionID, 2500, base)

	var p RunPage
	require.Equal(t, http.StatusOK, apiGet(t, ts, "/viewer/api/runs", &p))
	assert.Equal(t, 2500, p.Total)
	require.Len(t, p.Items, 20)
	assert.Equal(t, ids[2499], p.Items[0].ID, "newest first")
	assert.Equal(t, "seeded-agent", p.Items[0].AgentName)
	assert.Equal(t, "3.1.0", p.Items[0].VersionName)
	assert.EqualValues(t, 2499, p.Items[0].Usage.TotalTokens)
	assert.Equal(t, 20, p.Scanned, "an unfiltered page reads one page")

	// Status, across the scan chunks: every fifth is failed.
	require.Equal(t, http.StatusOK, apiGet(t, ts, "/viewer/api/runs?status=failed&page=3&pageSize=50", &p))
	assert.Equal(t, 500, p.Total)
	require.Len(t, p.Items, 50)
	for _, r := range p.Items {
		assert.Equal(t, "failed", r.Status)
	}
	assert.Equal(t, ids[2496-5*100], p.Items[0].ID) // the 101st failed from the newest (2496)
	require.Equal(t, http.StatusOK, apiGet(t, ts, "/viewer/api/runs?status=active,cancelled&user=user-2", &p))
	assert.Equal(t, 250, p.Total) // user-2 is i%10==2: i%5==2, active
	// A time range: [base+2000m, base+2099m]; newest first, the scan
	// stops at the first run older than the range.
	from, to := base.Add(2000*time.Minute).Format(time.RFC3339), base.Add(2099*time.Minute).Format(time.RFC3339)
	require.Equal(t, http.StatusOK, apiGet(t, ts, "/viewer/api/runs?pageSize=200&from="+from+"&to="+to, &p))
	assert.Equal(t, 100, p.Total)
	require.Len(t, p.Items, 100)
	assert.Equal(t, ids[2099], p.Items[0].ID)
	assert.Equal(t, ids[2000], p.Items[99].ID)
	assert.LessOrEqual(t, p.Scanned, scanChunk, "the newest-first scan stops at the range's start")
	require.Equal(t, http.StatusOK, apiGet(t, ts, "/viewer/api/runs?sort=asc&pageSize=5&from="+from+"&to="+to, &p))
	assert.Equal(t, ids[2000], p.Items[0].ID)
	assert.Equal(t, 100, p.Total)
	// Search and sort, through the store's listing.
	require.Equal(t, http.StatusOK, apiGet(t, ts, "/viewer/api/runs?search=run+2499", &p))
	require.Equal(t, 1, p.Total)
	assert.Equal(t, ids[2499], p.Items[0].ID)
	// A page past the end is empty, not an error.
	require.Equal(t, http.StatusOK, apiGet(t, ts, "/viewer/api/runs?status=failed&page=1000000", &p))
	assert.Equal(t, 500, p.Total)
	assert.Empty(t, p.Items)

	for _, bad := range []string{"sort=up", "status=done", "from=yesterday", "page=0", "pageSize=1000", "page=x"} {
		var e map[string]string
		assert.Equal(t, http.StatusBadRequest, apiGet(t, ts, "/viewer/api/runs?"+bad, &e), bad)
		assert.Equal(t, "invalid_value", e["code"], bad)
	}
}

func TestRunAndAgentsReads(t *testing.T) {
	ts := newTestServer(t)
	tr := ts.tracer(t, "travel-agent", "1.0.0")
	travelRun(context.Background(), tr, "user-1", "team-a")
	flush(t, tr)

	var d RunDetail
	require.Equal(t, http.StatusOK, apiGet(t, ts, "/viewer/api/runs/"+ts.runID(t, "Lisbon rainy day user-1"), &d))
	assert.Len(t, d.Spans, 5)
	assert.Equal(t, d.Run.ID, d.Instance.ID)
	assert.Equal(t, "complete", d.Instance.Status)
	var e map[string]string
	assert.Equal(t, http.StatusNotFound, apiGet(t, ts, "/viewer/api/runs/"+prefactorapi.NewPFID(7), &e))
	assert.Equal(t, "not_found", e["code"])
	assert.Equal(t, http.StatusNotFound, apiGet(t, ts, "/viewer/api/runs/not-a-pfid", &e))

	var a struct{ Agents []AgentStats }
	require.Equal(t, http.StatusOK, apiGet(t, ts, "/viewer/api/agents", &a))
	require.Len(t, a.Agents, 1)
	ag := a.Agents[0]
	assert.EqualValues(t, 1, ag.Counts.Total)
	require.Len(t, ag.Versions, 1)
	v := ag.Versions[0]
	assert.Equal(t, "1.0.0", v.Name)
	assert.True(t, v.Current)
	assert.EqualValues(t, 1, v.Counts.Complete)
	assert.EqualValues(t, 1234, v.Usage.TotalTokens)
	require.Len(t, v.Days, 1)
	assert.Equal(t, time.Now().UTC().Format(time.DateOnly), v.Days[0].Day)
	assert.Equal(t, 1, v.Days[0].Runs)
	assert.InDelta(t, 0.003595, v.Days[0].Cost, 1e-9)
	// The menus' read has the versions without their statistics.
	require.Equal(t, http.StatusOK, apiGet(t, ts, "/viewer/api/agents?stats=false", &a))
	require.Len(t, a.Agents, 1)
	require.Len(t, a.Agents[0].Versions, 1)
	assert.Equal(t, "1.0.0", a.Agents[0].Versions[0].Name)
	assert.EqualValues(t, 1, a.Agents[0].Counts.Total, "the agent's counts come from the store's own counter")
	assert.Zero(t, a.Agents[0].Versions[0].Counts.Total)
	assert.Empty(t, a.Agents[0].Versions[0].Days)
}

// TestListRunsScanMatchesSQL checks the two ways of answering a RunQuery
// agree: SQLite's ListRuns, and the chunked scan over ListInstances that
// other stores (here the memory store) get.
func TestListRunsScanMatchesSQL(t *testing.T) {
	ts := newTestServer(t)
	base := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	agentID, versionID := prefactorapi.NewPFID(7), prefactorapi.NewPFID(7)
	seedInstances(t, ts.Store, agentID, versionID, 2300, base)
	mem := prefactorapi.NewMemoryStore()
	ctx := context.Background()
	require.NoError(t, ts.Store.View(ctx, func(tx prefactorapi.ReadTx) error {
		ins, _, err := tx.ListInstances(prefactorapi.InstanceQuery{})
		if err != nil {
			return err
		}
		a, _, _ := tx.Agent(agentID)
		v, _, _ := tx.AgentVersion(versionID)
		return mem.Update(ctx, func(mt prefactorapi.Tx) error {
			if err := mt.PutAgent(a); err != nil {
				return err
			}
			if err := mt.PutAgentVersion(v); err != nil {
				return err
			}
			for _, in := range ins {
				if err := mt.PutInstance(in); err != nil {
					return err
				}
			}
			return nil
		})
	}))
	_, isLister := prefactorapi.Store(mem).(runLister)
	require.False(t, isLister)
	from, to := base.Add(1500*time.Minute).Format(time.RFC3339), base.Add(2100*time.Minute).Format(time.RFC3339)
	for _, raw := range []string{
		"", "page=7&pageSize=50", "status=failed", "status=failed&page=5&pageSize=30", "status=active,cancelled&user=user-2",
		"from=" + from + "&to=" + to, "sort=asc&from=" + from, "sort=asc&to=" + to + "&status=complete&page=3",
		"to=" + to + "&status=complete&page=2&pageSize=7", "status=failed&page=100000", "search=run+22&status=complete",
	} {
		v, err := url.ParseQuery(raw)
		require.NoError(t, err)
		q, err := parseRunQuery(v)
		require.NoError(t, err)
		want, err := listRuns(ctx, ts.Store, q)
		require.NoError(t, err)
		got, err := listRuns(ctx, mem, q)
		require.NoError(t, err)
		assert.Equal(t, want.Total, got.Total, raw)
		assert.Equal(t, want.Items, got.Items, raw)
	}
}

// TestAgentStatsGroupMatchesScan checks SQLite's RunGroups and the scan
// other stores get give the same agents page.
func TestAgentStatsGroupMatchesScan(t *testing.T) {
	ts := newTestServer(t)
	agentID, versionID := prefactorapi.NewPFID(7), prefactorapi.NewPFID(7)
	// Runs a minute apart across three UTC days, beside a run from the exporter.
	seedInstances(t, ts.Store, agentID, versionID, 2600, time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC).Add(-time.Hour))
	tr := ts.tracer(t, "travel-agent", "1.0.0")
	travelRun(context.Background(), tr, "user-1", "team-a")
	flush(t, tr)
	ctx := context.Background()
	want, err := listAgents(ctx, ts.Store, true)
	require.NoError(t, err)
	_, isGrouper := ts.Store.(runGrouper)
	require.True(t, isGrouper)
	got, err := listAgents(ctx, struct{ prefactorapi.Store }{ts.Store}, true) // hides RunGroups
	require.NoError(t, err)
	require.Len(t, want, 2)
	for i := range want {
		require.Len(t, got[i].Versions, len(want[i].Versions))
		for j := range want[i].Versions {
			w, g := want[i].Versions[j], got[i].Versions[j]
			assert.Equal(t, w.Counts, g.Counts)
			assert.Equal(t, w.Usage, g.Usage)
			assert.Equal(t, w.Costs.Currency, g.Costs.Currency)
			assert.InDelta(t, w.Costs.Total, g.Costs.Total, 1e-9)
			require.Len(t, g.Days, len(w.Days))
			for k := range w.Days {
				assert.Equal(t, w.Days[k].Day, g.Days[k].Day)
				assert.Equal(t, w.Days[k].Runs, g.Days[k].Runs)
				assert.InDelta(t, w.Days[k].Cost, g.Days[k].Cost, 1e-9)
			}
		}
	}
	assert.EqualValues(t, 2600, want[0].Versions[0].Counts.Total+want[1].Versions[0].Counts.Total-1)
	assert.Greater(t, len(want[0].Versions[0].Days)+len(want[1].Versions[0].Days), 2)
}

package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/agenttrace/agenttrace/cmd/agenttrace/internal/server"
	"github.com/agenttrace/agenttrace/cmd/agenttrace/internal/sqlitestore"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const token = "test-token"

type env struct {
	t   *testing.T
	hs  *httptest.Server
	hc  *http.Client
	srv *server.Server
}

func newEnv(t *testing.T) *env {
	t.Helper()
	st, err := sqlitestore.Open(context.Background(), filepath.Join(t.TempDir(), "t.db"), sqlitestore.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close() })
	srv, err := server.New(server.Config{Store: st, Token: token, IngestTokens: []string{"ingest-only"}, MaxBody: 1 << 20})
	require.NoError(t, err)
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	return &env{t: t, hs: hs, hc: &http.Client{Transport: tr, Timeout: 10 * time.Second}, srv: srv}
}

type reply struct {
	status int
	header http.Header
	body   map[string]any
	raw    string
}

func (e *env) do(method, path string, body any, hdr ...string) reply {
	e.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		j, err := json.Marshal(b)
		require.NoError(e.t, err)
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, e.hs.URL+path, rd)
	require.NoError(e.t, err)
	if len(hdr) == 0 {
		hdr = []string{"Authorization", "Bearer " + token}
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := e.hc.Do(req)
	require.NoError(e.t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(e.t, err)
	r := reply{status: resp.StatusCode, header: resp.Header, raw: string(raw)}
	_ = json.Unmarshal(raw, &r.body)
	return r
}

var keyN atomic.Int64

func key() string { return fmt.Sprintf("key-%08d", keyN.Add(1)) }

func details(r reply) map[string]any { d, _ := r.body["details"].(map[string]any); return d }

// run registers, starts and finishes one run of agent "support" with a
// root span carrying the instance fields and an llm span with usage.
type runSpec struct {
	version, name, user, group, channel string
	start                               time.Time
	prompt, completion                  int
	cost                                float64
	ttft                                int
	open                                bool
}

func (e *env) run(s runSpec) string {
	e.t.Helper()
	if s.version == "" {
		s.version = "v1"
	}
	r := e.do("POST", "/api/v1/agent_instance/register", map[string]any{"idempotency_key": key(),
		"agent_version": map[string]any{"external_identifier": s.version, "name": "support"}})
	require.Equal(e.t, 200, r.status, r.raw)
	id := details(r)["id"].(string)
	ts := func(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }
	require.Equal(e.t, 200, e.do("POST", "/api/v1/agent_instance/"+id+"/start", map[string]any{"idempotency_key": key(), "timestamp": ts(s.start)}).status)
	inst := map[string]any{"name": s.name, "user_id": s.user, "group_id": s.group, "channel": s.channel, "ip_address": "192.0.2.7", "user_agent": "test/1.0"}
	root := e.do("POST", "/api/v1/agent_spans", map[string]any{"idempotency_key": key(), "details": map[string]any{
		"agent_instance_id": id, "schema_name": "agent", "status": "active", "payload": map[string]any{"instance": inst},
		"started_at": ts(s.start)}})
	require.Equal(e.t, 200, root.status, root.raw)
	llm := e.do("POST", "/api/v1/agent_spans", map[string]any{"idempotency_key": key(), "details": map[string]any{
		"agent_instance_id": id, "schema_name": "llm", "status": "complete", "payload": map[string]any{"model": "m"},
		"parent_span_id": details(root)["id"], "started_at": ts(s.start.Add(time.Millisecond)), "finished_at": ts(s.start.Add(time.Second)),
		"result_payload": map[string]any{"token_usage": map[string]any{"prompt_tokens": s.prompt, "completion_tokens": s.completion},
			"cost": map[string]any{"prompt": s.cost / 2, "completion": s.cost / 2, "total": s.cost, "currency": "EUR"}, "ttft_ms": s.ttft}}})
	require.Equal(e.t, 200, llm.status, llm.raw)
	if !s.open {
		require.Equal(e.t, 200, e.do("POST", "/api/v1/agent_spans/"+details(root)["id"].(string)+"/finish", map[string]any{"idempotency_key": key(), "status": "complete", "timestamp": ts(s.start.Add(2 * time.Second))}).status)
		require.Equal(e.t, 200, e.do("POST", "/api/v1/agent_instance/"+id+"/finish", map[string]any{"idempotency_key": key(), "status": "complete", "timestamp": ts(s.start.Add(3 * time.Second))}).status)
	}
	return id
}

var base = time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)

// The field set of excerpt 003, exactly.
var itemFields = []string{"links", "id", "name", "agentVersion", "startDate", "endDate", "timeToFirstToken", "channel",
	"userIdentifier", "groupIdentifier", "ipAddress", "userAgent", "usage", "costs"}

func keys(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func sorted(s []string) []string {
	out := append([]string(nil), s...)
	sort.Strings(out)
	return out
}

func items(r reply) []map[string]any {
	raw, _ := r.body["items"].([]any)
	out := make([]map[string]any, len(raw))
	for i, it := range raw {
		out[i] = it.(map[string]any)
	}
	return out
}

func itemIDs(r reply) []string {
	var out []string
	for _, it := range items(r) {
		out = append(out, it["id"].(string))
	}
	return out
}

func TestListingFieldsAndValues(t *testing.T) {
	e := newEnv(t)
	id := e.run(runSpec{name: "Refund order 7", user: "u-1", group: "g-1", channel: "web", start: base, prompt: 7, completion: 3, cost: 0.5, ttft: 120})
	open := e.run(runSpec{start: base.Add(time.Hour), open: true})
	r := e.do("GET", "/api/v2/AgentInstance/support", nil)
	require.Equal(t, 200, r.status, r.raw)
	require.Equal(t, []string{"items", "links", "page", "pageSize", "total"}, keys(r.body), "the page's fields")
	require.Equal(t, 2.0, r.body["total"])
	require.Equal(t, 20.0, r.body["pageSize"])
	require.Equal(t, 1.0, r.body["page"])
	its := items(r)
	require.Len(t, its, 2)
	for _, it := range its {
		require.Equal(t, sorted(itemFields), keys(it), "exactly the document's item fields")
		require.Equal(t, []string{"completionTokens", "promptTokens", "totalTokens"}, keys(it["usage"].(map[string]any)))
		require.Equal(t, []string{"completion", "currency", "prompt", "services", "total"}, keys(it["costs"].(map[string]any)))
		for _, l := range it["links"].([]any) {
			require.Equal(t, []string{"method", "rel", "url"}, keys(l.(map[string]any)))
		}
	}
	require.Equal(t, open, its[0]["id"], "latest start first")
	require.Nil(t, its[0]["endDate"], "still running")
	require.Nil(t, its[0]["name"])
	it := its[1]
	require.Equal(t, id, it["id"])
	require.Equal(t, "Refund order 7", it["name"])
	require.Equal(t, 1.0, it["agentVersion"])
	require.Equal(t, "2026-05-01T12:00:00.000Z", it["startDate"])
	require.Equal(t, "2026-05-01T12:00:03.000Z", it["endDate"])
	require.Equal(t, 120.0, it["timeToFirstToken"], "milliseconds")
	require.Equal(t, "web", it["channel"])
	require.Equal(t, "u-1", it["userIdentifier"])
	require.Equal(t, "g-1", it["groupIdentifier"])
	require.Equal(t, "192.0.2.7", it["ipAddress"])
	require.Equal(t, "test/1.0", it["userAgent"])
	require.Equal(t, map[string]any{"promptTokens": 7.0, "completionTokens": 3.0, "totalTokens": 10.0}, it["usage"])
	require.Equal(t, map[string]any{"prompt": 0.25, "completion": 0.25, "services": 0.0, "total": 0.5, "currency": "EUR"}, it["costs"])
	links := it["links"].([]any)
	require.Equal(t, map[string]any{"method": "GET", "url": "/api/v1/agent_instance/" + id, "rel": "self"}, links[0])
	// The item's self link answers with the instance.
	got := e.do("GET", links[0].(map[string]any)["url"].(string), nil)
	require.Equal(t, 200, got.status)
	require.Equal(t, id, details(got)["id"])
	spans := e.do("GET", links[1].(map[string]any)["url"].(string), nil)
	require.Equal(t, 200, spans.status)
	require.Len(t, spans.body["summaries"], 2)
}

func TestListingPaginationAndSort(t *testing.T) {
	e := newEnv(t)
	var ids []string // in start order
	for i := range 45 {
		ids = append(ids, e.run(runSpec{start: base.Add(time.Duration(i) * time.Minute)}))
	}
	page := func(q string) reply {
		r := e.do("GET", "/api/v2/AgentInstance/support?"+q, nil)
		require.Equal(t, 200, r.status, r.raw)
		return r
	}
	rev := func(s []string) []string {
		out := make([]string, len(s))
		for i := range s {
			out[len(s)-1-i] = s[i]
		}
		return out
	}
	desc := rev(ids)
	require.Equal(t, desc[:20], itemIDs(page("")), "default: desc, page 1, 20")
	require.Equal(t, desc[20:40], itemIDs(page("page=2")))
	require.Equal(t, desc[40:], itemIDs(page("page=3")), "a short last page")
	require.Empty(t, itemIDs(page("page=4")), "past the end")
	big := page("page=1000000000")
	require.Empty(t, itemIDs(big), "page 10^9")
	require.Equal(t, 45.0, big.body["total"])
	require.Equal(t, ids[:20], itemIDs(page("sort=asc")))
	require.Equal(t, ids[40:], itemIDs(page("sort=asc&page=3")))
	require.Equal(t, ids[:10], itemIDs(page("sortDirection=asc&pageSize=10")), "the vendor's parameter name")
	require.Equal(t, desc[:1], itemIDs(page("pageSize=1")))
	require.Len(t, itemIDs(page("pageSize=1000")), 45, "capped at 100")
	require.Equal(t, 100.0, page("pageSize=1000").body["pageSize"])
	r := page("page=2&pageSize=10")
	rels := map[string]string{}
	for _, l := range r.body["links"].([]any) {
		m := l.(map[string]any)
		rels[m["rel"].(string)] = m["url"].(string)
	}
	require.Len(t, rels, 5)
	require.Contains(t, rels["next"], "page=3")
	require.Contains(t, rels["prev"], "page=1")
	require.Contains(t, rels["last"], "page=5")
	require.Equal(t, desc[20:30], itemIDs(e.do("GET", rels["next"], nil)), "links are followable")
	last := page("page=5&pageSize=10")
	for _, l := range last.body["links"].([]any) {
		require.NotEqual(t, "next", l.(map[string]any)["rel"], "no next on the last page")
	}
	for _, bad := range []string{"page=0", "page=-1", "page=x", "page=99999999999", "pageSize=0", "pageSize=-5", "sort=up", "culture=fr"} {
		r := e.do("GET", "/api/v2/AgentInstance/support?"+bad, nil)
		require.Equal(t, 400, r.status, bad)
		require.Equal(t, []string{"detail", "status", "title"}, keys(r.body), bad)
	}
}

func TestListingFilters(t *testing.T) {
	e := newEnv(t)
	var v1, v2, alice, g2, refunds []string
	for i := range 12 {
		s := runSpec{start: base.Add(time.Duration(i) * time.Minute), user: []string{"alice", "bob", "carol"}[i%3],
			group: []string{"g1", "g2"}[i%2], name: []string{"Refund request", "Shipping question", "Lost refund", "Other"}[i%4]}
		if i >= 8 {
			s.version = "v2"
		}
		id := e.run(s)
		if i >= 8 {
			v2 = append([]string{id}, v2...)
		} else {
			v1 = append([]string{id}, v1...)
		}
		if s.user == "alice" {
			alice = append([]string{id}, alice...)
		}
		if s.group == "g2" {
			g2 = append([]string{id}, g2...)
		}
		if strings.Contains(strings.ToLower(s.name), "refund") {
			refunds = append([]string{id}, refunds...)
		}
	}
	list := func(path string) []string {
		r := e.do("GET", path, nil)
		require.Equal(t, 200, r.status, r.raw)
		require.Equal(t, float64(len(items(r))), r.body["total"], path)
		return itemIDs(r)
	}
	require.Equal(t, v1, list("/api/v2/AgentInstance/support/1"), "version by number")
	require.Equal(t, v2, list("/api/v2/AgentInstance/support/2"))
	require.Equal(t, v2, list("/api/v2/AgentInstance/support/v2"), "version by external identifier")
	require.Equal(t, alice, list("/api/v2/AgentInstance/support?userIdentifier=alice"))
	require.Equal(t, g2, list("/api/v2/AgentInstance/support?groupIdentifier=g2"))
	require.Equal(t, refunds, list("/api/v2/AgentInstance/support?search=REFUND"))
	require.Equal(t, refunds, list("/api/v2/AgentInstance/support?term=refund"))
	require.Len(t, list("/api/v2/AgentInstance/support?search=lost+refund"), 3)
	require.Empty(t, list("/api/v2/AgentInstance/support?userIdentifier=nobody"))
	both := list("/api/v2/AgentInstance/support/2?userIdentifier=carol&groupIdentifier=g2")
	require.Len(t, both, 1, "i=11: v2, carol, g2")
	// The agent by ID and by name.
	agents := e.do("GET", "/api/v1/agent", nil)
	agentID := agents.body["summaries"].([]any)[0].(map[string]any)["id"].(string)
	require.Len(t, list("/api/v2/AgentInstance/"+agentID), 12)
}

func TestListingErrors(t *testing.T) {
	e := newEnv(t)
	e.run(runSpec{start: base})
	for _, tc := range []struct {
		name, path string
		hdr        []string
		status     int
		title      string
	}{
		{"no credentials", "/api/v2/AgentInstance/support", []string{"X-Nothing", "1"}, 401, "Unauthorized"},
		{"bad token", "/api/v2/AgentInstance/support", []string{"Authorization", "Bearer nope"}, 401, "Unauthorized"},
		{"bad api key", "/api/v2/AgentInstance/support", []string{"X-API-KEY", "nope"}, 401, "Unauthorized"},
		{"ingest token", "/api/v2/AgentInstance/support", []string{"X-API-KEY", "ingest-only"}, 403, "Forbidden"},
		{"unknown agent", "/api/v2/AgentInstance/nobody", nil, 404, "Not Found"},
		{"unknown version", "/api/v2/AgentInstance/support/9", nil, 404, "Not Found"},
		{"no agent", "/api/v2/AgentInstance/", nil, 404, "Not Found"},
		{"too deep", "/api/v2/AgentInstance/support/1/x", nil, 404, "Not Found"},
		{"spanish", "/api/v2/AgentInstance/nobody?culture=es", nil, 404, "No encontrado"},
		{"spanish 401", "/api/v2/AgentInstance/support?culture=es", []string{"X-API-KEY", "nope"}, 401, "No autorizado"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.do("GET", tc.path, nil, tc.hdr...)
			require.Equal(t, tc.status, r.status, r.raw)
			require.Equal(t, float64(tc.status), r.body["status"])
			require.Equal(t, tc.title, r.body["title"])
			require.NotEmpty(t, r.body["detail"])
		})
	}
	ok := e.do("GET", "/api/v2/AgentInstance/support", nil, "X-API-KEY", token)
	require.Equal(t, 200, ok.status, "X-API-KEY works")
	es := e.do("GET", "/api/v2/AgentInstance/support?culture=es", nil)
	require.Equal(t, 200, es.status)
	require.Equal(t, "es", es.header.Get("Content-Language"))
	require.Equal(t, e.do("GET", "/api/v2/AgentInstance/support", nil).body["items"], es.body["items"], "culture changes only the language of messages")
}

func TestListingStoreFailure(t *testing.T) {
	st, err := sqlitestore.Open(context.Background(), filepath.Join(t.TempDir(), "t.db"), sqlitestore.Options{})
	require.NoError(t, err)
	srv, err := server.New(server.Config{Store: st, Token: token})
	require.NoError(t, err)
	require.NoError(t, st.Close()) // every read now fails
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("GET", "/api/v2/AgentInstance/support", nil)
	req.Header.Set("X-API-KEY", token)
	srv.ServeHTTP(rec, req)
	require.Equal(t, 500, rec.Code)
	var body map[string]any
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &body))
	require.Equal(t, "Internal Server Error", body["title"])
	rec = httptest.NewRecorder()
	req = httptest.NewRequest("POST", "/api/v1/agent_instance/register", strings.NewReader(`{"idempotency_key":"k"}`))
	req.Header.Set("Authorization", "Bearer "+token)
	srv.ServeHTTP(rec, req)
	require.Equal(t, 500, rec.Code)
	require.Contains(t, rec.Body.String(), `"code":"unexpected"`)
}

func TestIngestBadInput(t *testing.T) {
	e := newEnv(t)
	inst := details(e.do("POST", "/api/v1/agent_instance/register", map[string]any{"idempotency_key": key()}))["id"].(string)
	for _, tc := range []struct {
		name, method, path string
		body               any
		hdr                []string
		status             int
		code               string
	}{
		{"no token", "GET", "/api/v1/ping", nil, []string{"X-Nothing", "1"}, 401, "not_authenticated"},
		{"bad token", "GET", "/api/v1/ping", nil, []string{"Authorization", "Bearer x"}, 401, "bad_authtoken"},
		{"malformed", "POST", "/api/v1/agent_instance/register", `{"idempotency_key":`, nil, 400, "bad_request"},
		{"not an object", "POST", "/api/v1/bulk", `[1]`, nil, 400, "bad_request"},
		{"unknown field", "POST", "/api/v1/agent_instance/" + inst + "/start", map[string]any{"idempotency_key": key(), "colour": 1}, nil, 400, "bad_request"},
		{"invalid transition", "POST", "/api/v1/agent_instance/" + inst + "/finish", map[string]any{"idempotency_key": key()}, nil, 409, "invalid_action"},
		{"unknown instance", "POST", "/api/v1/agent_instance/013xrzp12g3nqk8n0000000000000000/start", map[string]any{"idempotency_key": key()}, nil, 404, "not_found"},
		{"too large", "POST", "/api/v1/bulk", bytes.Repeat([]byte(" "), 2<<20), nil, 413, "bad_request"},
		{"ingest token reads agents", "GET", "/api/v1/agent", nil, []string{"Authorization", "Bearer ingest-only"}, 403, "not_permitted"},
		{"unknown endpoint", "GET", "/api/v1/nothing", nil, nil, 404, "not_found"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.do(tc.method, tc.path, tc.body, tc.hdr...)
			require.Equal(t, tc.status, r.status, r.raw)
			require.Equal(t, tc.code, r.body["code"], r.raw)
			require.Equal(t, "error", r.body["status"])
		})
	}
	ping := e.do("GET", "/api/v1/ping", nil, "Authorization", "Bearer ingest-only")
	require.Equal(t, 200, ping.status, "an ingest token sends runs")
	// Nothing was stored half-way and the server still serves.
	r := e.do("GET", "/api/v1/agent_instance/"+inst, nil)
	require.Equal(t, "pending", details(r)["status"])
	require.Equal(t, 200, e.do("GET", "/api/v1/ping", nil).status)
}

func TestAgentsAPI(t *testing.T) {
	e := newEnv(t)
	r := e.do("POST", "/api/v1/agent", map[string]any{"details": map[string]any{"name": "Helper", "description": "d", "external_identifier": "helper"}})
	require.Equal(t, 200, r.status, r.raw)
	a := details(r)
	id := a["id"].(string)
	require.Equal(t, "pending", a["status"])
	require.Equal(t, map[string]any{"update": true, "retire": true, "reinstate": false, "delete": true}, a["available_actions"])
	for _, f := range []string{"current_version_id", "current_schema_version_id", "instance_counts", "environment_id", "inserted_at", "updated_at"} {
		require.Contains(t, a, f)
	}
	require.Nil(t, a["current_version_id"])
	upd := e.do("PUT", "/api/v1/agent/"+id, map[string]any{"details": map[string]any{"name": "Helper 2"}})
	require.Equal(t, "Helper 2", details(upd)["name"])
	// A register creates the version and schema version and makes the agent active.
	reg := e.do("POST", "/api/v1/agent_instance/register", map[string]any{"idempotency_key": key(), "agent_id": id,
		"agent_version":        map[string]any{"external_identifier": "1.0.0", "name": "Helper"},
		"agent_schema_version": map[string]any{"external_identifier": "s1", "span_type_schemas": []any{map[string]any{"name": "agent", "params_schema": map[string]any{}}}}})
	require.Equal(t, 200, reg.status, reg.raw)
	g := details(e.do("GET", "/api/v1/agent/"+id, nil))
	require.Equal(t, "active", g["status"])
	require.Equal(t, details(reg)["agent_version_id"], g["current_version_id"])
	require.Equal(t, details(reg)["agent_schema_version_id"], g["current_schema_version_id"])
	require.Equal(t, 1.0, g["instance_counts"].(map[string]any)["pending"])
	require.Equal(t, false, g["available_actions"].(map[string]any)["delete"])
	del := e.do("DELETE", "/api/v1/agent/"+id, nil)
	require.Equal(t, 409, del.status)
	require.Equal(t, "invalid_action", del.body["code"])
	ret := e.do("POST", "/api/v1/agent/"+id+"/retire", map[string]any{})
	require.Equal(t, "retired", details(ret)["status"])
	require.Equal(t, map[string]any{"update": false, "retire": false, "reinstate": true, "delete": false}, details(ret)["available_actions"])
	refused := e.do("POST", "/api/v1/agent_instance/register", map[string]any{"idempotency_key": key(), "agent_id": id})
	require.Equal(t, 409, refused.status, "a retired agent takes no instances")
	require.Equal(t, 409, e.do("POST", "/api/v1/agent/"+id+"/retire", nil).status)
	rein := e.do("POST", "/api/v1/agent/"+id+"/reinstate", nil)
	require.Equal(t, "active", details(rein)["status"])
	list := e.do("GET", "/api/v1/agent", nil)
	require.Len(t, list.body["summaries"], 1)
	// A new agent without instances can be deleted.
	other := details(e.do("POST", "/api/v1/agent", map[string]any{"details": map[string]any{"name": "Temp"}}))["id"].(string)
	require.Equal(t, 200, e.do("DELETE", "/api/v1/agent/"+other, nil).status)
	require.Equal(t, 404, e.do("GET", "/api/v1/agent/"+other, nil).status)
	require.Equal(t, 422, e.do("POST", "/api/v1/agent", map[string]any{"details": map[string]any{}}).status, "name required")
	require.Equal(t, 422, e.do("POST", "/api/v1/agent", map[string]any{"details": map[string]any{"name": "x", "external_identifier": "helper"}}).status, "external identifier unique")
}

func TestSpanSummaries(t *testing.T) {
	e := newEnv(t)
	reg := e.do("POST", "/api/v1/agent_instance/register", map[string]any{"idempotency_key": key(),
		"agent_schema_version": map[string]any{"external_identifier": "s1", "span_type_schemas": []any{
			map[string]any{"name": "tool", "title": "Tool call", "params_schema": map[string]any{},
				"template": `{{ name | upcase }} -> {{ output["value"] }} ({{ missing }})`},
			map[string]any{"name": "bad", "params_schema": map[string]any{}, "template": "{{ broken"},
			map[string]any{"name": "plain", "params_schema": map[string]any{}}}}})
	id := details(reg)["id"].(string)
	mk := func(name string, payload, result map[string]any) map[string]any {
		r := e.do("POST", "/api/v1/agent_spans", map[string]any{"idempotency_key": key(), "details": map[string]any{
			"agent_instance_id": id, "schema_name": name, "status": "complete", "payload": payload, "result_payload": result}})
		require.Equal(t, 200, r.status, r.raw)
		return details(r)
	}
	d := mk("tool", map[string]any{"name": "lookup", "output": map[string]any{"value": "old"}}, map[string]any{"output": map[string]any{"value": 42}})
	require.Equal(t, "Tool call", d["schema_title"])
	require.Equal(t, "LOOKUP -> 42 ()", d["summary"], "the result wins; a missing value renders empty")
	require.Nil(t, mk("bad", map[string]any{}, nil)["summary"], "invalid template: no summary")
	p := mk("plain", map[string]any{}, nil)
	require.Nil(t, p["summary"])
	require.Equal(t, "plain", p["schema_title"])
	l := e.do("GET", "/api/v1/agent_spans?agent_instance_id="+id, nil)
	for _, s := range l.body["summaries"].([]any) {
		assert.Nil(t, s.(map[string]any)["summary"], "lists carry summaries only with include_summaries=true")
	}
	l = e.do("GET", "/api/v1/agent_spans?agent_instance_id="+id+"&include_summaries=true", nil)
	require.Equal(t, "LOOKUP -> 42 ()", l.body["summaries"].([]any)[0].(map[string]any)["summary"])
}

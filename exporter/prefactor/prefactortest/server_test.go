package prefactortest_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/agenttrace/agenttrace/exporter/prefactor/prefactortest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type client struct {
	t   *testing.T
	srv *prefactortest.Server
	hc  *http.Client
	tok string
}

func newClient(t *testing.T, opts ...prefactortest.Option) *client {
	srv := prefactortest.NewServer(opts...)
	t.Cleanup(srv.Close)
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{}}
	t.Cleanup(hc.CloseIdleConnections)
	return &client{t: t, srv: srv, hc: hc, tok: srv.Token()}
}

type reply struct {
	Status  int
	Header  http.Header
	Body    map[string]any
	Raw     string
	Control map[string]any
}

func (c *client) call(method, path string, body any) (reply, error) {
	c.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		enc, err := json.Marshal(b)
		require.NoError(c.t, err)
		rd = bytes.NewReader(enc)
	}
	req, err := http.NewRequest(method, c.srv.URL+path, rd)
	require.NoError(c.t, err)
	if c.tok != "" {
		req.Header.Set("Authorization", "Bearer "+c.tok)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return reply{}, err
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	r := reply{Status: resp.StatusCode, Header: resp.Header, Raw: string(raw)}
	_ = json.Unmarshal(raw, &r.Body)
	if ctl, ok := r.Body["control"].(map[string]any); ok {
		r.Control = ctl
	}
	return r, nil
}

func (c *client) must(method, path string, body any, status int) reply {
	c.t.Helper()
	r, err := c.call(method, path, body)
	require.NoError(c.t, err)
	require.Equal(c.t, status, r.Status, r.Raw)
	return r
}

func code(r reply) string { s, _ := r.Body["code"].(string); return s }

func id(r reply) string {
	d, _ := r.Body["details"].(map[string]any)
	s, _ := d["id"].(string)
	return s
}

var keyN int

func key() string {
	keyN++
	return "key-" + time.Now().Format("150405.000000") + "-" + string(rune('a'+keyN%26)) + strings.Repeat("x", keyN%5)
}

func (c *client) register(extra map[string]any) string {
	c.t.Helper()
	body := map[string]any{"agent_id": c.srv.AgentID(), "environment_id": c.srv.EnvironmentID(),
		"agent_version":        map[string]any{"external_identifier": "v1", "name": "a"},
		"agent_schema_version": map[string]any{"external_identifier": "s1", "span_type_schemas": []any{map[string]any{"name": "llm", "params_schema": map[string]any{}}, map[string]any{"name": "tool", "params_schema": map[string]any{}}}},
		"idempotency_key":      key()}
	for k, v := range extra {
		body[k] = v
	}
	r := c.must("POST", "/api/v1/agent_instance/register", body, 200)
	return id(r)
}

func (c *client) span(inst, parent, status string, extra map[string]any) reply {
	c.t.Helper()
	d := map[string]any{"agent_instance_id": inst, "schema_name": "llm", "status": status, "payload": map[string]any{"m": 1}}
	if parent != "" {
		d["parent_span_id"] = parent
	}
	for k, v := range extra {
		d[k] = v
	}
	r, err := c.call("POST", "/api/v1/agent_spans", map[string]any{"details": d, "idempotency_key": key()})
	require.NoError(c.t, err)
	return r
}

func TestAuth(t *testing.T) {
	c := newClient(t, prefactortest.WithToken("sekret-1"))
	c.must("GET", "/api/v1/ping", nil, 200)
	c.tok = "wrong"
	require.Equal(t, "bad_authtoken", code(c.must("GET", "/api/v1/ping", nil, 401)))
	c.tok = ""
	require.Equal(t, "not_authenticated", code(c.must("GET", "/api/v1/ping", nil, 401)))
	c.tok = "sekret-1"
	require.Equal(t, "not_found", code(c.must("GET", "/api/v1/nothing", nil, 404)))
}

func TestLifecycle(t *testing.T) {
	c := newClient(t)
	inst := c.register(map[string]any{"purpose": "eval"})
	require.Regexp(t, `^[0-7][0-9abcdefghjkmnpqrstvwxyz]{31}$`, inst)
	c.must("POST", "/api/v1/agent_instance/"+inst+"/start", map[string]any{"timestamp": "2026-01-02T03:04:05.678Z", "idempotency_key": key()}, 200)
	require.Equal(t, "invalid_action", code(c.must("POST", "/api/v1/agent_instance/"+inst+"/start", map[string]any{"idempotency_key": key()}, 409)))

	root := c.span(inst, "", "active", nil)
	require.Equal(t, 200, root.Status, root.Raw)
	rootID := id(root)
	child := c.span(inst, rootID, "complete", map[string]any{"result_payload": map[string]any{"ok": true},
		"started_at": "2026-01-02T03:04:06Z", "finished_at": "2026-01-02T03:04:07.5Z"})
	require.Equal(t, 200, child.Status, child.Raw)
	pending := c.span(inst, rootID, "pending", nil)
	require.Equal(t, 200, pending.Status)

	// Finish rules.
	c.must("POST", "/api/v1/agent_spans/"+id(pending)+"/finish", map[string]any{"status": "complete", "idempotency_key": key()}, 409)
	c.must("POST", "/api/v1/agent_spans/"+id(pending)+"/finish", map[string]any{"status": "cancelled", "idempotency_key": key()}, 200)
	c.must("POST", "/api/v1/agent_spans/"+rootID+"/finish", map[string]any{"status": "cancelled", "idempotency_key": key()}, 409)
	c.must("POST", "/api/v1/agent_spans/"+rootID+"/finish", map[string]any{"status": "failed", "result_payload": map[string]any{"e": 1}, "idempotency_key": key()}, 200)
	require.Equal(t, "invalid_action", code(c.must("POST", "/api/v1/agent_spans/"+rootID+"/finish", map[string]any{"idempotency_key": key()}, 409)))

	c.must("POST", "/api/v1/agent_instance/"+inst+"/finish", map[string]any{"status": "complete", "idempotency_key": key()}, 200)
	c.must("POST", "/api/v1/agent_instance/"+inst+"/finish", map[string]any{"idempotency_key": key()}, 409)
	require.Equal(t, 409, c.span(inst, "", "active", nil).Status, "no spans on a finished instance")

	got := c.must("GET", "/api/v1/agent_instance/"+inst, nil, 200)
	d := got.Body["details"].(map[string]any)
	require.Equal(t, "complete", d["status"])
	require.Equal(t, "eval", d["purpose"])
	counts := d["span_counts"].(map[string]any)
	require.EqualValues(t, 3, counts["total"])
	require.EqualValues(t, 3, counts["finished"])

	in, ok := c.srv.Instance(inst)
	require.True(t, ok)
	require.Equal(t, time.Date(2026, 1, 2, 3, 4, 5, 678e6, time.UTC), in.StartedAt)
	spans := c.srv.Spans(inst)
	require.Len(t, spans, 3)
	require.Equal(t, "failed", spans[0].Status)
	require.Equal(t, rootID, spans[1].ParentID)
	require.Equal(t, time.Date(2026, 1, 2, 3, 4, 7, 5e8, time.UTC), spans[1].FinishedAt)
	require.Equal(t, "cancelled", spans[2].Status)
	require.NoError(t, c.srv.Validate())
}

func TestValidation(t *testing.T) {
	c := newClient(t)
	inst := c.register(nil)
	other := c.register(nil)
	c.must("POST", "/api/v1/agent_instance/"+inst+"/start", map[string]any{"idempotency_key": key()}, 200)
	otherSpan := id(c.span(other, "", "active", nil))
	for name, tc := range map[string]struct {
		extra map[string]any
		field string
	}{
		"bad status":             {map[string]any{"status": "running"}, "status"},
		"created cancelled":      {map[string]any{"status": "cancelled"}, "status"},
		"bad id":                 {map[string]any{"id": "ABC"}, "id"},
		"bad parent":             {map[string]any{"parent_span_id": "nope"}, "parent_span_id"},
		"parent elsewhere":       {map[string]any{"parent_span_id": otherSpan}, "parent_span_id"},
		"result while active":    {map[string]any{"result_payload": map[string]any{}}, "result_payload"},
		"payload not object":     {map[string]any{"payload": []int{1}}, "payload"},
		"bad time":               {map[string]any{"started_at": "yesterday"}, "started_at"},
		"unknown schema":         {map[string]any{"schema_name": "mystery"}, "schema_name"},
		"unknown field":          {map[string]any{"colour": "red"}, "colour"},
		"finished_at on running": {map[string]any{"finished_at": "2026-01-02T03:04:05Z"}, "finished_at"},
	} {
		t.Run(name, func(t *testing.T) {
			r := c.span(inst, "", "active", tc.extra)
			require.Equal(t, 422, r.Status, r.Raw)
			require.Equal(t, "validation_errors", code(r))
			require.Contains(t, r.Body["errors"], tc.field, r.Raw)
		})
	}
	// Required fields and keys.
	r := c.must("POST", "/api/v1/agent_spans", map[string]any{"details": map[string]any{}, "idempotency_key": key()}, 422)
	for _, f := range []string{"agent_instance_id", "schema_name", "status", "payload"} {
		require.Contains(t, r.Body["errors"], f)
	}
	r = c.must("POST", "/api/v1/agent_spans", map[string]any{"details": map[string]any{}}, 422)
	require.Contains(t, r.Body["errors"], "idempotency_key")
	c.must("POST", "/api/v1/agent_spans", "not json", 400)
	c.must("POST", "/api/v1/agent_instance/register", map[string]any{"idempotency_key": key()}, 422)
	c.must("POST", "/api/v1/agent_instance/register", map[string]any{"agent_id": c.srv.AgentID(),
		"environment_id": c.srv.EnvironmentID(), "purpose": "fun", "idempotency_key": key()}, 422)
	c.must("POST", "/api/v1/agent_instance/0000000000000000000000000000000z/start", map[string]any{"idempotency_key": key()}, 404)
}

func TestDeploymentTokenRegister(t *testing.T) {
	c := newClient(t, prefactortest.WithDeploymentToken(), prefactortest.WithPartition(42))
	r := c.must("POST", "/api/v1/agent_instance/register", map[string]any{"idempotency_key": key()}, 200)
	require.Equal(t, "00001a", id(r)[10:16], "partition 42")
}

func TestIdempotency(t *testing.T) {
	c := newClient(t)
	body := map[string]any{"agent_id": c.srv.AgentID(), "environment_id": c.srv.EnvironmentID(), "idempotency_key": "same-key-1"}
	a := c.must("POST", "/api/v1/agent_instance/register", body, 200)
	b := c.must("POST", "/api/v1/agent_instance/register", body, 200)
	require.Equal(t, a.Raw, b.Raw, "a replay answers the stored response")
	require.Len(t, c.srv.Instances(), 1)
	body["purpose"] = "eval"
	r := c.must("POST", "/api/v1/agent_instance/register", body, 409)
	require.Equal(t, "idempotency_key_already_used", code(r))
	require.Equal(t, 1, c.srv.Counts().Replays)
	replayed := 0
	for _, q := range c.srv.Requests() {
		if q.Replayed {
			replayed++
		}
	}
	require.Equal(t, 1, replayed)
}

func TestBulk(t *testing.T) {
	c := newClient(t)
	inst := c.register(nil)
	c.must("POST", "/api/v1/agent_instance/"+inst+"/start", map[string]any{"idempotency_key": key()}, 200)
	sp := "01m830s71b3nqk8nb92c9msdsk1424dw"
	items := []any{
		map[string]any{"_type": "agent_spans/create", "idempotency_key": "item-0001", "details": map[string]any{"id": sp,
			"agent_instance_id": inst, "schema_name": "tool", "status": "active", "payload": map[string]any{}}},
		map[string]any{"_type": "agent_spans/finish", "idempotency_key": "item-0002", "agent_span_id": sp, "status": "complete"},
		map[string]any{"_type": "agent_spans/finish", "idempotency_key": "item-0003", "agent_span_id": sp, "status": "complete"},
		map[string]any{"_type": "agent_instances/finish", "idempotency_key": "item-0004", "agent_instance_id": inst},
	}
	r := c.must("POST", "/api/v1/bulk", map[string]any{"items": items}, 200)
	out := r.Body["outputs"].(map[string]any)
	require.Len(t, out, 3, "stops at the first error, which is included")
	require.Equal(t, "success", out["item-0001"].(map[string]any)["status"])
	require.Equal(t, "success", out["item-0002"].(map[string]any)["status"])
	require.Equal(t, "invalid_action", out["item-0003"].(map[string]any)["code"])
	in, _ := c.srv.Instance(inst)
	require.Equal(t, "active", in.Status, "items after the error were not run")

	// A replay of the same items answers from the store.
	r2 := c.must("POST", "/api/v1/bulk", map[string]any{"items": items[:2]}, 200)
	require.Len(t, r2.Body["outputs"], 2)
	s, _ := c.srv.Span(sp)
	require.Equal(t, 1, s.Creates)
	require.Equal(t, 1, s.Finishes)

	c.must("POST", "/api/v1/bulk", map[string]any{"items": []any{}}, 422)
	c.must("POST", "/api/v1/bulk", map[string]any{"items": []any{items[3], items[3]}}, 422)
	c.must("POST", "/api/v1/bulk", map[string]any{"items": []any{map[string]any{"_type": "x", "idempotency_key": "short"}}}, 422)
	r = c.must("POST", "/api/v1/bulk", map[string]any{"items": []any{map[string]any{"_type": "agents/explode", "idempotency_key": "item-0099"}}}, 200)
	require.Equal(t, "validation_errors", r.Body["outputs"].(map[string]any)["item-0099"].(map[string]any)["code"])

	nb := newClient(t, prefactortest.WithoutBulk())
	nb.must("POST", "/api/v1/bulk", map[string]any{"items": items}, 404)
}

func TestTerminate(t *testing.T) {
	c := newClient(t)
	inst := c.register(nil)
	c.must("POST", "/api/v1/agent_instance/"+inst+"/start", map[string]any{"idempotency_key": key()}, 200)
	s := c.span(inst, "", "active", nil)
	require.Nil(t, s.Control)
	require.NoError(t, c.srv.Terminate(inst, "operator"))
	require.Error(t, c.srv.Terminate(inst, "again"))
	require.Error(t, c.srv.Terminate("nope", ""))
	s2 := c.span(inst, "", "active", nil)
	require.Equal(t, true, s2.Control["terminate"])
	require.Equal(t, "operator", s2.Control["reason"])
	f := c.must("POST", "/api/v1/agent_spans/"+id(s)+"/finish", map[string]any{"idempotency_key": key()}, 200)
	require.Equal(t, true, f.Control["terminate"])
	g := c.must("GET", "/api/v1/agent_instance/"+inst, nil, 200)
	require.Equal(t, "terminated", g.Body["details"].(map[string]any)["status"])
	require.Equal(t, "operator", g.Body["details"].(map[string]any)["termination_reason"])
	c.must("POST", "/api/v1/agent_instance/"+inst+"/finish", map[string]any{"idempotency_key": key()}, 409)

	inst2 := c.register(nil)
	c.must("POST", "/api/v1/agent_instance/"+inst2+"/terminate", map[string]any{"reason": "by API"}, 200)
	in, _ := c.srv.Instance(inst2)
	require.Equal(t, "terminated", in.Status)
}

func TestFaults(t *testing.T) {
	c := newClient(t)
	c.srv.FailNext(prefactortest.EndpointPing,
		prefactortest.Fault{Status: 503, RetryAfter: 1500 * time.Millisecond},
		prefactortest.Fault{Status: 200, Body: "<html>hi</html>", ContentType: "text/html"},
	)
	c.srv.FailNext(prefactortest.EndpointRegister, prefactortest.Fault{Drop: true})
	r := c.must("GET", "/api/v1/ping", nil, 503)
	require.Equal(t, "2", r.Header.Get("Retry-After"))
	r = c.must("GET", "/api/v1/ping", nil, 200)
	require.Equal(t, "<html>hi</html>", r.Raw)
	_, err := c.call("POST", "/api/v1/agent_instance/register", map[string]any{"idempotency_key": "k-drop-01"})
	require.Error(t, err, "dropped connection")
	require.Empty(t, c.srv.Instances(), "dropped before processing")
	c.must("GET", "/api/v1/ping", nil, 200)

	// Delay past the client's timeout.
	c.srv.FailNext(prefactortest.EndpointAny, prefactortest.Fault{Delay: time.Second})
	c.hc.Timeout = 50 * time.Millisecond
	_, err = c.call("GET", "/api/v1/ping", nil)
	require.Error(t, err)
	c.hc.Timeout = 5 * time.Second

	// After processing: the register is stored though the client saw a 500.
	body := map[string]any{"agent_id": c.srv.AgentID(), "environment_id": c.srv.EnvironmentID(), "idempotency_key": "k-after-1"}
	c.srv.FailNext(prefactortest.EndpointRegister, prefactortest.Fault{Status: 500, AfterProcessing: true})
	c.must("POST", "/api/v1/agent_instance/register", body, 500)
	require.Len(t, c.srv.Instances(), 1)
	c.must("POST", "/api/v1/agent_instance/register", body, 200)
	require.Len(t, c.srv.Instances(), 1, "the retry was a replay")

	c.srv.SetDown(true)
	c.must("GET", "/api/v1/ping", nil, 503)
	c.srv.SetDown(false)
	c.srv.Outage(time.Hour)
	c.must("GET", "/api/v1/ping", nil, 503)
	c.srv.Outage(0)
	c.must("GET", "/api/v1/ping", nil, 200)

	c.srv.SetRandomFaults(prefactortest.RandomFaults{Seed: 1, Status503: 0.5})
	n503 := 0
	for range 100 {
		if r, err := c.call("GET", "/api/v1/ping", nil); err == nil && r.Status == 503 {
			n503++
		}
	}
	c.srv.SetRandomFaults(prefactortest.RandomFaults{})
	require.InDelta(t, 50, n503, 20)
	require.NotZero(t, c.srv.Counts().Faults)

	// Close ends requests in flight, even delayed ones.
	c.srv.SetLatency(time.Hour)
	done := make(chan error)
	go func() { _, err := c.call("GET", "/api/v1/ping", nil); done <- err }()
	time.Sleep(50 * time.Millisecond)
	c.srv.Close()
	select {
	case err := <-done:
		_ = err
	case <-time.After(5 * time.Second):
		t.Fatal(errors.New("Close did not end a delayed request"))
	}
}

package prefactortest_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/agenttrace/agenttrace/exporter/prefactor/prefactortest"
)

func TestBulk(t *testing.T) {
	c := newClient(t)
	inst := otherPFID(t, c.srv.AgentID())
	root, child := otherPFID(t, inst), otherPFID(t, otherPFID(t, inst))
	require.NotEqual(t, root, child)
	items := []any{
		map[string]any{"_type": "agent_instances/register", "idempotency_key": "item-0001", "id": inst,
			"agent_id": c.srv.AgentID(), "environment_id": c.srv.EnvironmentID(), "agent_schema_version": schema()},
		map[string]any{"_type": "agent_instances/start", "idempotency_key": "item-0002", "agent_instance_id": inst,
			"timestamp": "2026-01-02T03:04:05Z"},
		map[string]any{"_type": "agent_spans/create", "idempotency_key": "item-0003", "details": map[string]any{"id": root,
			"agent_instance_id": inst, "schema_name": "llm", "status": "active", "payload": map[string]any{}}},
		// The fields of a span create may also sit flat on the item.
		map[string]any{"_type": "agent_spans/create", "idempotency_key": "item-0004", "id": child, "parent_span_id": root,
			"agent_instance_id": inst, "schema_name": "tool", "status": "complete", "payload": map[string]any{"q": 1},
			"result_payload": map[string]any{"a": 2}, "started_at": "2026-01-02T03:04:06Z", "finished_at": "2026-01-02T03:04:07Z"},
		map[string]any{"_type": "agent_spans/finish", "idempotency_key": "item-0005", "agent_span_id": root, "status": "complete",
			"result_payload": map[string]any{}, "sensitive_encoding": true, "timestamp": "2026-01-02T03:04:08Z"},
		map[string]any{"_type": "agent_instances/finish", "idempotency_key": "item-0006", "agent_instance_id": inst,
			"status": "complete", "timestamp": "2026-01-02T03:04:09Z"},
	}
	r := c.must("POST", pathBulk, map[string]any{"items": items}, 200)
	require.Equal(t, "success", r.Body["status"])
	out := r.outputs()
	require.Len(t, out, 6, r.Raw)
	for i := 1; i <= 6; i++ {
		o := out["item-000"+string(rune('0'+i))].(map[string]any)
		require.Equal(t, "success", o["status"], i)
		require.NotContains(t, o, "control")
	}
	require.Equal(t, inst, out["item-0001"].(map[string]any)["details"].(map[string]any)["id"])
	require.Equal(t, "agent_span", out["item-0004"].(map[string]any)["details"].(map[string]any)["type"])
	require.True(t, strings.Index(r.Raw, "item-0001") < strings.Index(r.Raw, "item-0006"), "outputs in order")

	in, ok := c.srv.Instance(inst)
	require.True(t, ok)
	require.Equal(t, "complete", in.Status)
	require.NotContains(t, string(in.Register), `"_type"`)
	require.Contains(t, string(in.Register), c.srv.AgentID())
	spans := c.srv.Spans(inst)
	require.Len(t, spans, 2)
	require.Equal(t, root, spans[0].ID)
	require.Equal(t, "complete", spans[0].Status)
	require.Equal(t, true, *spans[0].SensitiveEncoding)
	require.Equal(t, root, spans[1].ParentID)
	require.JSONEq(t, `{"a":2}`, string(spans[1].ResultPayload))
	require.NoError(t, c.srv.Validate())

	counts := c.srv.Counts()
	require.Equal(t, 1, counts.Requests[prefactortest.EndpointBulk])
	require.Equal(t, map[prefactortest.Endpoint]int{prefactortest.EndpointRegister: 1, prefactortest.EndpointStart: 1,
		prefactortest.EndpointCreateSpan: 2, prefactortest.EndpointFinishSpan: 1, prefactortest.EndpointFinishInstance: 1}, counts.Items)

	// The whole request again: every item is a replay.
	r2 := c.must("POST", pathBulk, map[string]any{"items": items}, 200)
	require.JSONEq(t, r.Raw, r2.Raw)
	require.Equal(t, 6, c.srv.Counts().Replays)
	reqs := c.srv.Requests()
	require.True(t, reqs[len(reqs)-1].Replayed)
	require.Len(t, c.srv.Instances(), 1)
	for _, s := range c.srv.Spans(inst) {
		require.Equal(t, 1, s.Creates)
		require.LessOrEqual(t, s.Finishes, 1)
	}
}

func TestBulkStopsAtFirstError(t *testing.T) {
	c := newClient(t)
	inst := c.started()
	sp := otherPFID(t, inst)
	items := []any{
		map[string]any{"_type": "agent_spans/create", "idempotency_key": "item-0001", "details": map[string]any{"id": sp,
			"agent_instance_id": inst, "schema_name": "tool", "status": "active", "payload": map[string]any{}}},
		map[string]any{"_type": "agent_spans/finish", "idempotency_key": "item-0002", "agent_span_id": sp, "status": "complete"},
		map[string]any{"_type": "agent_spans/finish", "idempotency_key": "item-0003", "agent_span_id": sp, "status": "complete"},
		map[string]any{"_type": "agent_instances/finish", "idempotency_key": "item-0004", "agent_instance_id": inst},
	}
	r := c.must("POST", pathBulk, map[string]any{"items": items}, 200)
	out := r.outputs()
	require.Len(t, out, 3, "stops at the first error, which is included")
	require.Equal(t, "success", out["item-0001"].(map[string]any)["status"])
	require.Equal(t, "success", out["item-0002"].(map[string]any)["status"])
	e := out["item-0003"].(map[string]any)
	require.Equal(t, "error", e["status"])
	require.Equal(t, "invalid_action", e["code"])
	require.NotEmpty(t, e["message"])
	require.NotContains(t, out, "item-0004")
	in, _ := c.srv.Instance(inst)
	require.Equal(t, "active", in.Status, "items after the error were not run")
	require.Equal(t, 1, c.srv.Counts().Rejected["invalid_action"])

	// Earlier items are not rolled back; a retry of the rest runs it.
	s, _ := c.srv.Span(sp)
	require.Equal(t, "complete", s.Status)
	r = c.must("POST", pathBulk, map[string]any{"items": items[3:]}, 200)
	require.Equal(t, "success", r.outputs()["item-0004"].(map[string]any)["status"])
}

func TestBulkItemErrors(t *testing.T) {
	c := newClient(t)
	inst := c.started()
	ok := func(k string) map[string]any {
		return map[string]any{"_type": "agent_spans/create", "idempotency_key": k, "details": spanBody(inst, "active", nil)["details"]}
	}
	for name, tc := range map[string]struct {
		item  map[string]any
		code  string
		field string
	}{
		"unknown type":        {map[string]any{"_type": "agents/explode", "idempotency_key": "item-0002"}, "validation_errors", "_type"},
		"no type":             {map[string]any{"idempotency_key": "item-0002", "agent_span_id": inst}, "validation_errors", "_type"},
		"unknown field":       {map[string]any{"_type": "agent_instances/start", "idempotency_key": "item-0002", "agent_instance_id": inst, "colour": 1}, "bad_request", "colour"},
		"field of wrong type": {map[string]any{"_type": "agent_instances/start", "idempotency_key": "item-0002", "agent_instance_id": 5}, "validation_errors", "agent_instance_id"},
		"no instance id":      {map[string]any{"_type": "agent_instances/finish", "idempotency_key": "item-0002"}, "validation_errors", "agent_instance_id"},
		"no span id":          {map[string]any{"_type": "agent_spans/finish", "idempotency_key": "item-0002"}, "validation_errors", "agent_span_id"},
		"details and flat":    {map[string]any{"_type": "agent_spans/create", "idempotency_key": "item-0002", "details": spanBody(inst, "active", nil)["details"], "schema_name": "llm"}, "bad_request", "schema_name"},
		"span id on start":    {map[string]any{"_type": "agent_instances/start", "idempotency_key": "item-0002", "agent_instance_id": inst, "agent_span_id": inst}, "bad_request", "agent_span_id"},
		"invalid create":      {map[string]any{"_type": "agent_spans/create", "idempotency_key": "item-0002", "agent_instance_id": inst, "schema_name": "llm", "status": "cancelled", "payload": map[string]any{}}, "validation_errors", "status"},
		"register invalid":    {map[string]any{"_type": "agent_instances/register", "idempotency_key": "item-0002"}, "validation_errors", "agent_id"},
	} {
		t.Run(name, func(t *testing.T) {
			first, last := key(), key()
			tc.item["idempotency_key"] = "bad-" + first
			r := c.must("POST", pathBulk, map[string]any{"items": []any{ok(first), tc.item, ok(last)}}, 200)
			out := r.outputs()
			require.Len(t, out, 2, r.Raw)
			require.Equal(t, "success", out[first].(map[string]any)["status"])
			e := out["bad-"+first].(map[string]any)
			require.Equal(t, "error", e["status"])
			require.Equal(t, tc.code, e["code"], r.Raw)
			require.Contains(t, e["errors"], tc.field, r.Raw)
		})
	}
	require.Len(t, c.srv.Spans(inst), 10, "the first item of each request")
}

func TestBulkRequestErrors(t *testing.T) {
	c := newClient(t)
	inst := c.started()
	item := func(k string) map[string]any {
		return map[string]any{"_type": "agent_instances/finish", "idempotency_key": k, "agent_instance_id": inst}
	}
	for name, body := range map[string]any{
		"no items":        map[string]any{},
		"null items":      map[string]any{"items": nil},
		"empty items":     map[string]any{"items": []any{}},
		"duplicate keys":  map[string]any{"items": []any{item("item-0001"), item("item-0001")}},
		"short key":       map[string]any{"items": []any{item("short")}},
		"long key":        map[string]any{"items": []any{item(strings.Repeat("k", 65))}},
		"no key":          map[string]any{"items": []any{map[string]any{"_type": "agent_instances/finish", "agent_instance_id": inst}}},
		"item not object": map[string]any{"items": []any{item("item-0001"), "x"}},
		"items not array": map[string]any{"items": map[string]any{}},
	} {
		t.Run(name, func(t *testing.T) {
			c.mustErr("POST", pathBulk, body, 422, "validation_errors")
		})
	}
	c.mustErr("POST", pathBulk, map[string]any{"items": []any{item("item-0001")}, "atomic": true}, 400, "bad_request")
	c.mustErr("POST", pathBulk, "[]", 400, "bad_request")
	c.mustErr("POST", pathBulk, `{"items":[`, 400, "bad_request")
	in, _ := c.srv.Instance(inst)
	require.Equal(t, "active", in.Status, "no item ran")
	c.must("POST", pathBulk, map[string]any{"items": []any{item(strings.Repeat("k", 64))}}, 200)
	in, _ = c.srv.Instance(inst)
	require.Equal(t, "complete", in.Status)
}

func TestBulkControl(t *testing.T) {
	c := newClient(t)
	inst := c.started()
	sp := c.span(inst, "active", nil).id()
	require.NoError(t, c.srv.Terminate(inst, "budget"))
	r := c.must("POST", pathBulk, map[string]any{"items": []any{
		map[string]any{"_type": "agent_spans/create", "idempotency_key": "item-0001", "details": spanBody(inst, "active", nil)["details"]},
		map[string]any{"_type": "agent_spans/finish", "idempotency_key": "item-0002", "agent_span_id": sp},
	}}, 200)
	for _, k := range []string{"item-0001", "item-0002"} {
		o := r.outputs()[k].(map[string]any)
		require.Equal(t, "success", o["status"])
		require.Equal(t, map[string]any{"terminate": true, "reason": "budget"}, o["control"], k)
	}
}

func TestWithoutBulk(t *testing.T) {
	c := newClient(t, prefactortest.WithoutBulk())
	inst := c.started()
	c.mustErr("POST", pathBulk, map[string]any{"items": []any{
		map[string]any{"_type": "agent_instances/finish", "idempotency_key": "item-0001", "agent_instance_id": inst}}}, 404, "not_found")
	in, _ := c.srv.Instance(inst)
	require.Equal(t, "active", in.Status)
	c.mustErr("GET", pathBulk, nil, 404, "not_found")
}

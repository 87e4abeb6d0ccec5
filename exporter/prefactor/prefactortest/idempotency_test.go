package prefactortest_test

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestIdempotentReplay(t *testing.T) {
	c := newClient(t)
	body := c.registerBody(map[string]any{"idempotency_key": "same-key-1"})
	a := c.must("POST", pathRegister, body, 200)
	b := c.must("POST", pathRegister, body, 200)
	require.Equal(t, a.Raw, b.Raw, "a replay answers the stored response")
	require.Len(t, c.srv.Instances(), 1, "applied once")
	require.Equal(t, 1, c.srv.Counts().Replays)
	reqs := c.srv.Requests()
	require.Len(t, reqs, 2)
	require.False(t, reqs[0].Replayed)
	require.True(t, reqs[1].Replayed)

	// The same fields in another order and layout are the same request.
	reordered := `{ "idempotency_key":"same-key-1", "agent_schema_version": ` + string(mustJSON(t, body["agent_schema_version"])) +
		`, "agent_version": ` + string(mustJSON(t, body["agent_version"])) +
		`, "environment_id": "` + c.srv.EnvironmentID() + `", "agent_id": "` + c.srv.AgentID() + `" }`
	require.Equal(t, a.Raw, c.must("POST", pathRegister, reordered, 200).Raw)

	// The same key for another request, or another endpoint, is refused.
	body["purpose"] = "eval"
	c.mustErr("POST", pathRegister, body, 409, "idempotency_key_already_used")
	inst := a.id()
	c.mustErr("POST", instPath(inst, "start"), map[string]any{"idempotency_key": "same-key-1"}, 409, "idempotency_key_already_used")
	require.Len(t, c.srv.Instances(), 1)
	in, _ := c.srv.Instance(inst)
	require.Equal(t, "pending", in.Status)

	// Start, span create and finish replay without applying again.
	start := map[string]any{"idempotency_key": "start-key-1", "timestamp": "2026-01-02T03:04:05Z"}
	s1 := c.must("POST", instPath(inst, "start"), start, 200)
	s2 := c.must("POST", instPath(inst, "start"), start, 200)
	require.Equal(t, s1.Raw, s2.Raw, "not 409: the start is not applied again")
	// ... but the same key on another instance's path is another request.
	inst2 := c.register(nil)
	c.mustErr("POST", instPath(inst2, "start"), start, 409, "idempotency_key_already_used")

	create := spanBody(inst, "active", nil)
	r1 := c.must("POST", pathSpans, create, 200)
	r2 := c.must("POST", pathSpans, create, 200)
	require.Equal(t, r1.Raw, r2.Raw)
	require.Len(t, c.srv.Spans(inst), 1)
	fin := map[string]any{"idempotency_key": "finish-key-1", "status": "complete", "result_payload": map[string]any{"a": 1}}
	f1 := c.must("POST", spanFinishPath(r1.id()), fin, 200)
	f2 := c.must("POST", spanFinishPath(r1.id()), fin, 200)
	require.Equal(t, f1.Raw, f2.Raw, "not 409 invalid_action: a replay")
	sp, _ := c.srv.Span(r1.id())
	require.Equal(t, 1, sp.Creates)
	require.Equal(t, 1, sp.Finishes)
	fin["status"] = "failed"
	c.mustErr("POST", spanFinishPath(r1.id()), fin, 409, "idempotency_key_already_used")

	// The key of a span create may sit in details: the same operation.
	k := create["idempotency_key"]
	delete(create, "idempotency_key")
	create["details"].(map[string]any)["idempotency_key"] = k
	require.Equal(t, r1.Raw, c.must("POST", pathSpans, create, 200).Raw)
	require.Equal(t, 6, c.srv.Counts().Replays)
	require.NoError(t, c.srv.Validate())
}

func TestIdempotentErrors(t *testing.T) {
	c := newClient(t)
	inst := c.started()

	// A refused request is replayed with its refusal.
	bad := spanBody(inst, "active", map[string]any{"schema_name": "mystery"})
	a := c.mustErr("POST", pathSpans, bad, 422, "validation_errors")
	b := c.mustErr("POST", pathSpans, bad, 422, "validation_errors")
	require.Equal(t, a.Raw, b.Raw)
	reqs := c.srv.Requests()
	require.True(t, reqs[len(reqs)-1].Replayed)
	require.Equal(t, 2, c.srv.Counts().Rejected["validation_errors"])
	// ... and its key stays bound to that request.
	bad["details"].(map[string]any)["schema_name"] = "llm"
	c.mustErr("POST", pathSpans, bad, 409, "idempotency_key_already_used")

	fin := map[string]any{"idempotency_key": key()}
	c.must("POST", instPath(inst, "finish"), fin, 200)
	conflict := map[string]any{"idempotency_key": key()}
	x := c.mustErr("POST", instPath(inst, "finish"), conflict, 409, "invalid_action")
	y := c.mustErr("POST", instPath(inst, "finish"), conflict, 409, "invalid_action")
	require.Equal(t, x.Raw, y.Raw)

	// A 404 is not stored: the resource may appear later, and a client
	// retries under the same key.
	later := otherPFID(t, inst)
	start := map[string]any{"idempotency_key": key()}
	c.mustErr("POST", instPath(later, "start"), start, 404, "not_found")
	c.register(map[string]any{"id": later})
	r := c.must("POST", instPath(later, "start"), start, 200)
	require.Equal(t, "active", r.details()["status"])

	// A request refused before its key was read stores nothing.
	k := key()
	c.mustErr("POST", instPath(later, "finish"), `{"idempotency_key":"`+k+`","colour":1}`, 400, "bad_request")
	c.must("POST", instPath(later, "finish"), map[string]any{"idempotency_key": k}, 200)
	c.mustErr("POST", instPath(later, "finish"), `{"idempotency_key":"`+k+`","colour":1}`, 400, "bad_request")
}

func TestIdempotencyAcrossBulk(t *testing.T) {
	c := newClient(t)
	inst := c.started()
	// A single request, then the same operation as a bulk item: a replay.
	create := spanBody(inst, "active", map[string]any{"id": otherPFID(t, inst)})
	single := c.must("POST", pathSpans, create, 200)
	item := map[string]any{"_type": "agent_spans/create", "idempotency_key": create["idempotency_key"], "details": create["details"]}
	r := c.must("POST", pathBulk, map[string]any{"items": []any{item}}, 200)
	require.JSONEq(t, single.Raw, string(mustJSON(t, r.outputs()[create["idempotency_key"].(string)])))
	require.True(t, c.srv.Requests()[len(c.srv.Requests())-1].Replayed)

	// A bulk item, then the same operation as a single request.
	finish := map[string]any{"_type": "agent_spans/finish", "idempotency_key": key(), "agent_span_id": single.id(), "status": "complete"}
	r = c.must("POST", pathBulk, map[string]any{"items": []any{finish}}, 200)
	out := r.outputs()[finish["idempotency_key"].(string)]
	s := c.must("POST", spanFinishPath(single.id()), map[string]any{"idempotency_key": finish["idempotency_key"], "status": "complete"}, 200)
	require.JSONEq(t, s.Raw, string(mustJSON(t, out)))
	sp, _ := c.srv.Span(single.id())
	require.Equal(t, 1, sp.Creates)
	require.Equal(t, 1, sp.Finishes)
	require.Equal(t, 2, c.srv.Counts().Replays)
}

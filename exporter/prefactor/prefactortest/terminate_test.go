package prefactortest_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/agenttrace/agenttrace/exporter/prefactor/prefactortest"
)

func TestTerminate(t *testing.T) {
	c := newClient(t)
	inst := c.started()
	bystander := c.started()
	s := c.span(inst, "active", nil)
	pending := c.span(inst, "pending", nil)
	require.Nil(t, s.control())
	require.NoError(t, c.srv.Terminate(inst, "operator"))
	require.ErrorIs(t, c.srv.Terminate(inst, "again"), prefactortest.ErrInvalidAction)
	require.ErrorIs(t, c.srv.Terminate("nope", ""), prefactortest.ErrNotFound)

	// Span create and finish answers carry control; spans are still taken.
	want := map[string]any{"terminate": true, "reason": "operator"}
	s2 := c.span(inst, "active", nil)
	require.Equal(t, 200, s2.Status, s2.Raw)
	require.Equal(t, want, s2.control())
	f := c.finishSpan(s.id(), nil)
	require.Equal(t, 200, f.Status, f.Raw)
	require.Equal(t, want, f.control())
	require.Equal(t, want, c.finishSpan(pending.id(), map[string]any{"status": "cancelled"}).control())
	require.NotContains(t, c.span(bystander, "active", nil).Body, "control", "only for the terminated instance")

	// GET shows it; start and finish are refused.
	g := c.must("GET", instPath(inst, ""), nil, 200)
	require.Equal(t, "terminated", g.details()["status"])
	require.Equal(t, "operator", g.details()["termination_reason"])
	require.NotNil(t, g.details()["finished_at"])
	c.mustErr("POST", instPath(inst, "finish"), map[string]any{"idempotency_key": key()}, 409, "invalid_action")
	c.mustErr("POST", instPath(inst, "finish"), map[string]any{"status": "failed", "idempotency_key": key()}, 409, "invalid_action")
	c.mustErr("POST", instPath(inst, "start"), map[string]any{"idempotency_key": key()}, 409, "invalid_action")
	in, _ := c.srv.Instance(inst)
	require.Equal(t, "terminated", in.Status)
	require.Equal(t, "operator", in.TerminationReason)

	// A finished instance cannot be terminated.
	done := c.started()
	c.must("POST", instPath(done, "finish"), map[string]any{"idempotency_key": key()}, 200)
	require.ErrorIs(t, c.srv.Terminate(done, "late"), prefactortest.ErrInvalidAction)
}

func TestTerminateEndpoint(t *testing.T) {
	c := newClient(t)
	inst := c.register(nil) // pending instances can be terminated too
	r := c.must("POST", instPath(inst, "terminate"), map[string]any{"reason": "by API"}, 200)
	require.Equal(t, "terminated", r.details()["status"])
	require.Equal(t, "by API", r.details()["termination_reason"])
	c.mustErr("POST", instPath(inst, "terminate"), map[string]any{"reason": "again"}, 409, "invalid_action")
	c.mustErr("POST", instPath(otherPFID(t, inst), "terminate"), map[string]any{}, 404, "not_found")
	c.mustErr("POST", instPath("x", "terminate"), map[string]any{}, 422, "validation_errors")

	// No reason: control says null; no body is an empty one.
	inst2 := c.started()
	c.must("POST", instPath(inst2, "terminate"), nil, 200)
	require.Equal(t, map[string]any{"terminate": true, "reason": nil}, c.span(inst2, "active", nil).control())
	inst3 := c.started()
	c.mustErr("POST", instPath(inst3, "terminate"), map[string]any{"why": "x"}, 400, "bad_request")
	c.mustErr("POST", instPath(inst3, "terminate"), map[string]any{"reason": 5}, 422, "validation_errors")
	// With a key, it replays like the other operations.
	body := map[string]any{"reason": "r", "idempotency_key": key()}
	a := c.must("POST", instPath(inst3, "terminate"), body, 200)
	b := c.must("POST", instPath(inst3, "terminate"), body, 200)
	require.Equal(t, a.Raw, b.Raw)
	require.Equal(t, 9, c.srv.Counts().Requests[prefactortest.EndpointTerminate])
}

package prefactortest_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/agenttrace/agenttrace/exporter/prefactor/prefactortest"
)

// The fake server takes record_quality as the Python SDK sends it (payload
// null removes), counts it, injects faults on it, and answers the
// debugging export.
func TestRecordQualityAndAgentContext(t *testing.T) {
	c := newClient(t)
	inst := c.started()
	k := key()
	r := c.must("POST", instPath(inst, "record_quality"), map[string]any{"name": "helpfulness", "payload": map[string]any{"score": 3}, "idempotency_key": k}, 200)
	require.Equal(t, map[string]any{"helpfulness": map[string]any{"score": 3.0}}, r.details()["quality_payloads"])
	c.must("POST", instPath(inst, "record_quality"), map[string]any{"name": "helpfulness", "payload": map[string]any{"score": 3}, "idempotency_key": k}, 200)
	require.Equal(t, 1, c.srv.Counts().Replays)
	r = c.must("POST", instPath(inst, "record_quality"), map[string]any{"name": "helpfulness", "payload": nil, "idempotency_key": key()}, 200)
	require.Equal(t, map[string]any{}, r.details()["quality_payloads"])
	c.mustErr("POST", instPath(inst, "record_quality"), map[string]any{"payload": map[string]any{}, "idempotency_key": key()}, 422, "validation_errors")
	c.mustErr("POST", instPath(otherPFID(t, inst), "record_quality"), map[string]any{"name": "a", "payload": map[string]any{}, "idempotency_key": key()}, 404, "not_found")
	require.Equal(t, 5, c.srv.Counts().Requests[prefactortest.EndpointRecordQuality])

	c.srv.FailNext(prefactortest.EndpointRecordQuality, prefactortest.Fault{Status: 503})
	c.mustErr("POST", instPath(inst, "record_quality"), map[string]any{"name": "a", "payload": map[string]any{}, "idempotency_key": key()}, 503, "unexpected")

	ctx := c.must("GET", instPath(inst, "agent_context"), nil, 200)
	require.Contains(t, ctx.Body, "agent_context")
	require.Equal(t, 1, c.srv.Counts().Requests[prefactortest.EndpointAgentContext])
}

package server_test

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// The endpoints of quality, the debugging export and versions over HTTP:
// routed (not 404), authenticated (401), scoped (an ingest token may
// record quality, not read versions), answered as the reference shapes
// them.
func TestQualityContextAndVersionsOverHTTP(t *testing.T) {
	e := newEnv(t)
	reg := e.do("POST", "/api/v1/agent_instance/register", map[string]any{"idempotency_key": key(),
		"agent_version": map[string]any{"external_identifier": "1.0.0", "name": "Helper"},
		"agent_schema_version": map[string]any{"external_identifier": "s1",
			"span_type_schemas": []any{map[string]any{"name": "agent", "params_schema": map[string]any{}}},
			"quality_schemas":   []any{map[string]any{"name": "helpfulness", "schema": map[string]any{}, "template": "{{ score }}/5"}}}})
	require.Equal(t, 200, reg.status, reg.raw)
	inst := details(reg)["id"].(string)
	agent := details(reg)["agent_id"].(string)
	require.Equal(t, map[string]any{}, details(reg)["quality_payloads"])

	// record_quality, with the ingest token as the Python SDK's deployment token.
	q := e.do("POST", "/api/v1/agent_instance/"+inst+"/record_quality",
		`{"name":"helpfulness","payload":{"score":4},"idempotency_key":"`+key()+`"}`, "Authorization", "Bearer ingest-only")
	require.Equal(t, 200, q.status, q.raw)
	require.Equal(t, map[string]any{"helpfulness": "4/5"}, details(q)["quality_summaries"])
	g := e.do("GET", "/api/v1/agent_instance/"+inst, nil)
	require.Equal(t, map[string]any{"helpfulness": map[string]any{"score": 4.0}}, details(g)["quality_payloads"])
	bad := e.do("POST", "/api/v1/agent_instance/"+inst+"/record_quality", `{"name":"other","payload":{}}`)
	require.Equal(t, 422, bad.status, bad.raw)
	require.Equal(t, "validation_errors", bad.body["code"])

	// agent_context.
	ac := e.do("GET", "/api/v1/agent_instance/"+inst+"/agent_context", nil)
	require.Equal(t, 200, ac.status, ac.raw)
	body := ac.body["agent_context"].(map[string]any)["body"].(map[string]any)
	require.Equal(t, inst, body["agent_instance"].(map[string]any)["id"])
	require.Equal(t, 404, e.do("GET", "/api/v1/agent_instance/"+agent+"/agent_context", nil).status)

	// Versions.
	vl := e.do("GET", "/api/v1/agent_version?agent_id="+agent, nil)
	require.Equal(t, 200, vl.status, vl.raw)
	require.Len(t, vl.body["summaries"], 1)
	require.Contains(t, vl.body, "pagination")
	vid := vl.body["summaries"].([]any)[0].(map[string]any)["id"].(string)
	require.Equal(t, "1.0.0", details(e.do("GET", "/api/v1/agent_version/"+vid, nil))["external_identifier"])
	cv := e.do("POST", "/api/v1/agent_version", map[string]any{"details": map[string]any{"agent_id": agent, "external_identifier": "2.0.0"}})
	require.Equal(t, 200, cv.status, cv.raw)
	sl := e.do("GET", "/api/v1/agent_schema_version?agent_id="+agent+"&pagination[page_size]=1", nil)
	require.Equal(t, 200, sl.status, sl.raw)
	sid := sl.body["summaries"].([]any)[0].(map[string]any)["id"].(string)
	require.Equal(t, details(reg)["agent_schema_version_id"], sid)
	require.Equal(t, 200, e.do("GET", "/api/v1/agent_schema_version/"+sid, nil).status)
	cs := e.do("POST", "/api/v1/agent_schema_version", map[string]any{"details": map[string]any{"agent_id": agent, "external_identifier": "s2",
		"span_schemas": map[string]any{"a": map[string]any{}}}})
	require.Equal(t, 200, cs.status, cs.raw)
	require.Equal(t, 422, e.do("GET", "/api/v1/agent_version", nil).status)
	require.Equal(t, 404, e.do("GET", "/api/v1/agent_schema_version/"+vid, nil).status)
	require.Equal(t, 404, e.do("DELETE", "/api/v1/agent_version/"+vid, nil).status, "no such endpoint")

	// Auth and scope.
	for _, path := range []string{"/api/v1/agent_version?agent_id=" + agent, "/api/v1/agent_schema_version/" + sid,
		"/api/v1/agent_instance/" + inst + "/agent_context"} {
		r := e.do("GET", path, nil, "Authorization", "Bearer wrong")
		require.Equal(t, 401, r.status, path)
		require.Equal(t, "bad_authtoken", r.body["code"])
		require.Equal(t, 401, e.do("GET", path, nil, "X-Other", "x").status, path)
		require.Equal(t, 403, e.do("GET", path, nil, "Authorization", "Bearer ingest-only").status, path)
	}
	require.Equal(t, 401, e.do("POST", "/api/v1/agent_instance/"+inst+"/record_quality", `{"name":"helpfulness","payload":null}`,
		"Authorization", "Bearer wrong").status)
}

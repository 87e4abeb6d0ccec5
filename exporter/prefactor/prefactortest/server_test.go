package prefactortest_test

import (
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agenttrace/agenttrace/exporter/prefactor/prefactortest"
)

var pfidRE = regexp.MustCompile(`^[0-7][0-9abcdefghjkmnpqrstvwxyz]{31}$`)

func TestNewServer(t *testing.T) {
	srv := prefactortest.NewServer()
	defer srv.Close()
	require.True(t, strings.HasPrefix(srv.URL, "http://127.0.0.1:"), srv.URL)
	require.Equal(t, "pf-test-token", srv.Token())
	for _, id := range []string{srv.AgentID(), srv.EnvironmentID(), srv.AccountID()} {
		require.Regexp(t, pfidRE, id)
		require.Equal(t, "3nqk8n", id[10:16], "the default partition 123456789")
	}
	require.EqualValues(t, 123456789, srv.Partition())
	require.NotEqual(t, srv.AgentID(), srv.EnvironmentID())
	srv.Close()
	srv.Close() // idempotent

	p := prefactortest.NewServer(prefactortest.WithPartition(42), prefactortest.WithToken("tok"))
	defer p.Close()
	require.Equal(t, "00001a", p.AgentID()[10:16])
	require.Equal(t, "tok", p.Token())
}

func TestAuth(t *testing.T) {
	c := newClient(t, prefactortest.WithToken("sekret-1"))
	r := c.must("GET", "/api/v1/ping", nil, 200)
	require.JSONEq(t, `{"status":"success"}`, r.Raw)
	require.Equal(t, "application/json", r.Header.Get("Content-Type"))

	c.tok = "wrong"
	c.mustErr("GET", "/api/v1/ping", nil, 401, "bad_authtoken")
	c.mustErr("POST", pathRegister, c.registerBody(nil), 401, "bad_authtoken")
	c.tok = ""
	c.mustErr("GET", "/api/v1/ping", nil, 401, "not_authenticated")
	c.mustErr("POST", pathSpans, "{}", 401, "not_authenticated")
	require.Empty(t, c.srv.Instances(), "nothing applied without a token")

	// A token given another way is wrong too.
	req, err := http.NewRequest("GET", c.srv.URL+"/api/v1/ping", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Basic sekret-1")
	resp, err := c.hc.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, 401, resp.StatusCode)

	c.tok = "sekret-1"
	c.mustErr("GET", "/api/v1/nothing", nil, 404, "not_found")
	c.mustErr("GET", "/api/v1/agent_spans", nil, 404, "not_found")
	c.mustErr("DELETE", instPath(c.srv.AgentID(), ""), nil, 404, "not_found")
	c.mustErr("GET", "/ping", nil, 404, "not_found")
	require.Equal(t, 4, c.srv.Counts().Rejected["not_found"])
	require.Equal(t, 3, c.srv.Counts().Rejected["bad_authtoken"])
	require.Equal(t, 2, c.srv.Counts().Rejected["not_authenticated"])
}

func TestRegister(t *testing.T) {
	c := newClient(t)
	body := c.registerBody(map[string]any{"purpose": "eval", "update_current_version": true})
	r := c.must("POST", pathRegister, body, 200)
	require.Equal(t, "success", r.Body["status"])
	d := r.details()
	id := r.id()
	require.Regexp(t, pfidRE, id)
	require.Equal(t, "3nqk8n", id[10:16])
	require.Equal(t, "agent_instance", d["type"])
	require.Equal(t, c.srv.AccountID(), d["account_id"])
	require.Equal(t, c.srv.AgentID(), d["agent_id"])
	require.Equal(t, c.srv.EnvironmentID(), d["environment_id"])
	for _, f := range []string{"agent_version_id", "agent_deployment_id", "agent_schema_version_id"} {
		require.Regexp(t, pfidRE, d[f], f)
	}
	require.Equal(t, "pending", d["status"])
	require.Equal(t, "eval", d["purpose"])
	for _, f := range []string{"started_at", "finished_at", "termination_reason"} {
		require.Contains(t, d, f)
		require.Nil(t, d[f], f)
	}
	for _, f := range []string{"inserted_at", "updated_at"} {
		_, err := time.Parse(time.RFC3339, d[f].(string))
		require.NoError(t, err, f)
	}
	require.Equal(t, map[string]any{"total": 0.0, "pending": 0.0, "active": 0.0, "complete": 0.0, "failed": 0.0,
		"cancelled": 0.0, "finished": 0.0}, d["span_counts"])

	in, ok := c.srv.Instance(id)
	require.True(t, ok)
	require.Equal(t, prefactortest.Instance{ID: id, AgentID: c.srv.AgentID(), EnvironmentID: c.srv.EnvironmentID(),
		Purpose: "eval", Status: "pending", AgentVersion: in.AgentVersion, SchemaVersion: in.SchemaVersion, Register: in.Register}, in)
	require.JSONEq(t, `{"external_identifier":"v1","name":"agent","description":"d"}`, string(in.AgentVersion))
	require.Contains(t, string(in.SchemaVersion), `"span_type_schemas"`)
	require.Equal(t, string(mustJSON(t, body)), string(in.Register), "the body as sent")

	// The same agent version and deployment: the same IDs; purpose live by
	// default; a client-chosen ID is kept.
	mine := otherPFID(t, c.srv.AgentID())
	r2 := c.must("POST", pathRegister, c.registerBody(map[string]any{"id": mine}), 200)
	require.Equal(t, mine, r2.id())
	require.Equal(t, d["agent_version_id"], r2.details()["agent_version_id"])
	require.Equal(t, d["agent_deployment_id"], r2.details()["agent_deployment_id"])
	require.Equal(t, d["agent_schema_version_id"], r2.details()["agent_schema_version_id"])
	require.Equal(t, "live", r2.details()["purpose"])
	r3 := c.must("POST", pathRegister, c.registerBody(map[string]any{"agent_version": map[string]any{"external_identifier": "v2"}}), 200)
	require.NotEqual(t, d["agent_version_id"], r3.details()["agent_version_id"])

	// A registered ID is taken.
	c.mustErr("POST", pathRegister, c.registerBody(map[string]any{"id": mine}), 409, "invalid_action")

	insts := c.srv.Instances()
	require.Len(t, insts, 3)
	require.Equal(t, []string{id, mine, r3.id()}, []string{insts[0].ID, insts[1].ID, insts[2].ID}, "registration order")
	_, ok = c.srv.Instance("nope")
	require.False(t, ok)

	// Without a schema version: no schema version ID; any span type.
	r4 := c.must("POST", pathRegister, c.registerBody(map[string]any{"agent_schema_version": nil, "agent_version": nil}), 200)
	require.Nil(t, r4.details()["agent_schema_version_id"])
	c.must("POST", instPath(r4.id(), "start"), map[string]any{"idempotency_key": key()}, 200)
	require.Equal(t, 200, c.span(r4.id(), "active", map[string]any{"schema_name": "anything:goes"}).Status)
}

func TestRegisterValidation(t *testing.T) {
	c := newClient(t)
	foreign := "01an4z07by" + "000042" + "0123456789abcdef"
	dataRisk := func(change func(map[string]any)) map[string]any {
		ap := map[string]any{}
		for _, f := range []string{"create_data", "read_data", "update_data", "destroy_data", "financial_transactions", "external_communication"} {
			ap[f] = "unknown"
		}
		cat := func() map[string]any {
			m := map[string]any{"classification": "internal"}
			for _, f := range []string{"personal_identifiers", "contact_information", "financial_information", "health_and_medical",
				"criminal_justice", "authentication_and_secrets", "organisational_confidential", "minors_data",
				"location_and_tracking", "behavioural_and_inferred", "gdpr_racial_or_ethnic_origin", "gdpr_political_opinions",
				"gdpr_religious_or_philosophical_beliefs", "gdpr_trade_union_membership", "gdpr_genetic_data",
				"gdpr_biometric_for_identification", "gdpr_sex_life_or_sexual_orientation"} {
				m[f] = "excluded"
			}
			return m
		}
		dr := map[string]any{"action_profile": ap, "params_data_categories": cat(), "result_data_categories": cat()}
		if change != nil {
			change(dr)
		}
		return map[string]any{"external_identifier": "dr", "span_type_schemas": []any{
			map[string]any{"name": "x", "params_schema": map[string]any{}, "data_risk": dr}}}
	}
	// A complete data risk profile is accepted.
	c.register(map[string]any{"agent_schema_version": dataRisk(nil)})

	for name, tc := range map[string]struct {
		extra  map[string]any
		status int
		field  string
	}{
		"agent_id missing":          {map[string]any{"agent_id": nil}, 422, "agent_id"},
		"agent_id empty":            {map[string]any{"agent_id": ""}, 422, "agent_id"},
		"agent_id uppercase":        {map[string]any{"agent_id": strings.ToUpper(c.srv.AgentID())}, 422, "agent_id"},
		"agent_id not a string":     {map[string]any{"agent_id": 7}, 422, "agent_id"},
		"environment_id missing":    {map[string]any{"environment_id": nil}, 422, "environment_id"},
		"environment_id bad":        {map[string]any{"environment_id": "env-1"}, 422, "environment_id"},
		"id bad":                    {map[string]any{"id": "8zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz"}, 422, "id"},
		"id in another partition":   {map[string]any{"id": foreign}, 422, "id"},
		"purpose":                   {map[string]any{"purpose": "fun"}, 422, "purpose"},
		"update_current_version":    {map[string]any{"update_current_version": "yes"}, 422, "update_current_version"},
		"agent_version not object":  {map[string]any{"agent_version": "v1"}, 422, "agent_version"},
		"agent_version unknown":     {map[string]any{"agent_version": map[string]any{"colour": "red"}}, 400, "agent_version.colour"},
		"agent_version name type":   {map[string]any{"agent_version": map[string]any{"name": 1}}, 422, "agent_version.name"},
		"schema not object":         {map[string]any{"agent_schema_version": []any{}}, 422, "agent_schema_version"},
		"schema no identifier":      {map[string]any{"agent_schema_version": map[string]any{"span_type_schemas": []any{}}}, 422, "agent_schema_version.external_identifier"},
		"schema unknown field":      {map[string]any{"agent_schema_version": map[string]any{"external_identifier": "x", "spans": 1}}, 400, "agent_schema_version.spans"},
		"span type without name":    {map[string]any{"agent_schema_version": map[string]any{"external_identifier": "x", "span_type_schemas": []any{map[string]any{"params_schema": map[string]any{}}}}}, 422, "agent_schema_version.span_type_schemas[0].name"},
		"span type without params":  {map[string]any{"agent_schema_version": map[string]any{"external_identifier": "x", "span_type_schemas": []any{map[string]any{"name": "a"}}}}, 422, "agent_schema_version.span_type_schemas[0].params_schema"},
		"span type twice":           {map[string]any{"agent_schema_version": map[string]any{"external_identifier": "x", "span_type_schemas": []any{map[string]any{"name": "a", "params_schema": map[string]any{}}, map[string]any{"name": "a", "params_schema": map[string]any{}}}}}, 422, "agent_schema_version.span_type_schemas[1].name"},
		"result schema not object":  {map[string]any{"agent_schema_version": map[string]any{"external_identifier": "x", "span_type_schemas": []any{map[string]any{"name": "a", "params_schema": map[string]any{}, "result_schema": 3}}}}, 422, "agent_schema_version.span_type_schemas[0].result_schema"},
		"legacy schema not object":  {map[string]any{"agent_schema_version": map[string]any{"external_identifier": "x", "span_schemas": map[string]any{"a": "b"}}}, 422, "agent_schema_version.span_schemas.a"},
		"legacy results alone":      {map[string]any{"agent_schema_version": map[string]any{"external_identifier": "x", "span_result_schemas": map[string]any{"a": map[string]any{}}}}, 422, "agent_schema_version.span_result_schemas"},
		"data risk value":           {map[string]any{"agent_schema_version": dataRisk(func(m map[string]any) { m["action_profile"].(map[string]any)["read_data"] = "maybe" })}, 422, "agent_schema_version.span_type_schemas[0].data_risk.action_profile.read_data"},
		"data risk missing part":    {map[string]any{"agent_schema_version": dataRisk(func(m map[string]any) { delete(m, "result_data_categories") })}, 422, "agent_schema_version.span_type_schemas[0].data_risk.result_data_categories"},
		"data risk missing field":   {map[string]any{"agent_schema_version": dataRisk(func(m map[string]any) { delete(m["params_data_categories"].(map[string]any), "minors_data") })}, 422, "agent_schema_version.span_type_schemas[0].data_risk.params_data_categories.minors_data"},
		"data risk classification":  {map[string]any{"agent_schema_version": dataRisk(func(m map[string]any) { m["params_data_categories"].(map[string]any)["classification"] = "top" })}, 422, "agent_schema_version.span_type_schemas[0].data_risk.params_data_categories.classification"},
		"data risk unknown field":   {map[string]any{"agent_schema_version": dataRisk(func(m map[string]any) { m["action_profile"].(map[string]any)["fly"] = "allowed" })}, 422, "agent_schema_version.span_type_schemas[0].data_risk.action_profile.fly"},
		"unknown field":             {map[string]any{"colour": "red"}, 400, "colour"},
		"a span field":              {map[string]any{"status": "active"}, 400, "status"},
		"idempotency_key missing":   {map[string]any{"idempotency_key": nil}, 422, "idempotency_key"},
		"idempotency_key empty":     {map[string]any{"idempotency_key": ""}, 422, "idempotency_key"},
		"idempotency_key too long":  {map[string]any{"idempotency_key": strings.Repeat("k", 65)}, 422, "idempotency_key"},
		"idempotency_key no string": {map[string]any{"idempotency_key": 12345678}, 422, "idempotency_key"},
	} {
		t.Run(name, func(t *testing.T) {
			r := c.must("POST", pathRegister, c.registerBody(tc.extra), tc.status)
			if tc.status == 400 {
				require.Equal(t, "bad_request", r.code())
			} else {
				require.Equal(t, "validation_errors", r.code())
			}
			require.Contains(t, r.errors(), tc.field, r.Raw)
			require.NotEmpty(t, r.Body["message"])
		})
	}
	c.register(map[string]any{"idempotency_key": strings.Repeat("k", 64)})
	require.Len(t, c.srv.Instances(), 2, "only the valid ones")

	// Bodies that are not JSON objects.
	for _, body := range []string{"", "not json", "[]", "null", `"x"`, "{", `{"agent_id":"x"} {}`, `{"agent_id":"x"}]`} {
		c.mustErr("POST", pathRegister, body, 400, "bad_request")
	}
}

func TestDeploymentToken(t *testing.T) {
	c := newClient(t, prefactortest.WithDeploymentToken(), prefactortest.WithPartition(42))
	r := c.must("POST", pathRegister, map[string]any{"idempotency_key": key()}, 200)
	require.Equal(t, "00001a", r.id()[10:16], "partition 42")
	require.Equal(t, c.srv.AgentID(), r.details()["agent_id"])
	require.Equal(t, c.srv.EnvironmentID(), r.details()["environment_id"])
	in, _ := c.srv.Instance(r.id())
	require.Equal(t, c.srv.AgentID(), in.AgentID)

	// The token's own IDs are accepted; others are not permitted.
	c.must("POST", pathRegister, c.registerBody(nil), 200)
	c.mustErr("POST", pathRegister, c.registerBody(map[string]any{"agent_id": otherPFID(t, c.srv.AgentID())}), 403, "not_permitted")

	// An account token requires them.
	a := newClient(t)
	r = a.mustErr("POST", pathRegister, map[string]any{"idempotency_key": key()}, 422, "validation_errors")
	require.Contains(t, r.errors(), "agent_id")
	require.Contains(t, r.errors(), "environment_id")
}

func TestInstanceLifecycle(t *testing.T) {
	c := newClient(t)
	inst := c.register(nil)
	c.mustErr("POST", instPath(inst, "finish"), map[string]any{"idempotency_key": key()}, 409, "invalid_action")
	c.mustErr("POST", instPath(inst, "finish"), map[string]any{"status": "failed", "idempotency_key": key()}, 409, "invalid_action")
	r := c.must("POST", instPath(inst, "start"), map[string]any{"timestamp": "2026-01-02T03:04:05.678+01:00", "idempotency_key": key()}, 200)
	require.Equal(t, "active", r.details()["status"])
	require.Equal(t, "2026-01-02T02:04:05.678000Z", r.details()["started_at"])
	c.mustErr("POST", instPath(inst, "start"), map[string]any{"idempotency_key": key()}, 409, "invalid_action")
	c.mustErr("POST", instPath(inst, "finish"), map[string]any{"status": "cancelled", "idempotency_key": key()}, 409, "invalid_action")
	c.mustErr("POST", instPath(inst, "finish"), map[string]any{"status": "done", "idempotency_key": key()}, 422, "validation_errors")
	c.mustErr("POST", instPath(inst, "finish"), map[string]any{"timestamp": "tomorrow", "idempotency_key": key()}, 422, "validation_errors")
	r = c.must("POST", instPath(inst, "finish"), map[string]any{"status": "failed", "timestamp": "2026-01-02T03:05:00Z", "idempotency_key": key()}, 200)
	require.Equal(t, "failed", r.details()["status"])
	c.mustErr("POST", instPath(inst, "finish"), map[string]any{"idempotency_key": key()}, 409, "invalid_action")
	in, _ := c.srv.Instance(inst)
	require.Equal(t, time.Date(2026, 1, 2, 2, 4, 5, 678e6, time.UTC), in.StartedAt)
	require.Equal(t, time.Date(2026, 1, 2, 3, 5, 0, 0, time.UTC), in.FinishedAt)
	require.Equal(t, "failed", in.Status)

	// The default finish status is complete; times default to now.
	inst2 := c.started()
	before := time.Now()
	r = c.must("POST", instPath(inst2, "finish"), map[string]any{"idempotency_key": key()}, 200)
	require.Equal(t, "complete", r.details()["status"])
	in, _ = c.srv.Instance(inst2)
	require.WithinRange(t, in.FinishedAt, before.Add(-time.Second), time.Now().Add(time.Second))
	require.False(t, in.StartedAt.IsZero())

	// Cancelled only from pending: both times set to the timestamp.
	inst3 := c.register(nil)
	c.must("POST", instPath(inst3, "finish"), map[string]any{"status": "cancelled", "timestamp": "2026-03-04T05:06:07Z", "idempotency_key": key()}, 200)
	in, _ = c.srv.Instance(inst3)
	require.Equal(t, "cancelled", in.Status)
	require.Equal(t, in.StartedAt, in.FinishedAt)
	c.mustErr("POST", instPath(inst3, "start"), map[string]any{"idempotency_key": key()}, 409, "invalid_action")

	// Unknown instance, malformed ID, stray fields.
	unknown := otherPFID(t, inst3)
	c.mustErr("POST", instPath(unknown, "start"), map[string]any{"idempotency_key": key()}, 404, "not_found")
	c.mustErr("POST", instPath(unknown, "finish"), map[string]any{"idempotency_key": key()}, 404, "not_found")
	c.mustErr("GET", instPath(unknown, ""), nil, 404, "not_found")
	r = c.mustErr("GET", instPath("not-a-pfid", ""), nil, 422, "validation_errors")
	require.Contains(t, r.errors(), "agent_instance_id")
	r = c.mustErr("POST", instPath("not-a-pfid", "start"), map[string]any{"idempotency_key": key()}, 422, "validation_errors")
	require.Contains(t, r.errors(), "agent_instance_id")
	inst4 := c.register(nil)
	c.mustErr("POST", instPath(inst4, "start"), map[string]any{"status": "active", "idempotency_key": key()}, 400, "bad_request")
	c.mustErr("POST", instPath(inst4, "start"), map[string]any{"agent_instance_id": inst4, "idempotency_key": key()}, 400, "bad_request")
	c.mustErr("POST", instPath(inst4, "start"), map[string]any{}, 422, "validation_errors")
	c.mustErr("POST", instPath(inst4, "start"), "", 400, "bad_request")
	// A null timestamp is no timestamp.
	c.must("POST", instPath(inst4, "start"), map[string]any{"timestamp": nil, "idempotency_key": key()}, 200)

	// GET shows the instance with its span counts.
	sp := c.span(inst4, "active", nil).id()
	c.span(inst4, "pending", nil)
	c.span(inst4, "complete", map[string]any{"result_payload": map[string]any{}})
	c.finishSpan(sp, map[string]any{"status": "failed"})
	g := c.must("GET", instPath(inst4, ""), nil, 200)
	require.Equal(t, "active", g.details()["status"])
	require.Equal(t, map[string]any{"total": 3.0, "pending": 1.0, "active": 0.0, "complete": 1.0, "failed": 1.0,
		"cancelled": 0.0, "finished": 2.0}, g.details()["span_counts"])
	g2 := c.must("GET", instPath(inst4, "")+"/", nil, 200)
	require.Equal(t, inst4, g2.id(), "a trailing slash is the same path")
}

func TestSpans(t *testing.T) {
	c := newClient(t)
	inst := c.register(nil)

	// Spans are accepted on a pending instance.
	root := c.span(inst, "active", map[string]any{"started_at": "2026-01-02T03:04:05Z", "sensitive_encoding": true})
	require.Equal(t, 200, root.Status, root.Raw)
	require.Nil(t, root.control(), "no control while the instance runs")
	require.NotContains(t, root.Body, "control")
	d := root.details()
	rootID := root.id()
	require.Regexp(t, pfidRE, rootID)
	require.Equal(t, "agent_span", d["type"])
	require.Equal(t, c.srv.AccountID(), d["account_id"])
	require.Equal(t, c.srv.AgentID(), d["agent_id"])
	require.Equal(t, inst, d["agent_instance_id"])
	require.Nil(t, d["parent_span_id"])
	require.Equal(t, "llm", d["schema_name"])
	require.Equal(t, "LLM call", d["schema_title"], "the span type's title")
	require.Equal(t, "active", d["status"])
	require.Equal(t, map[string]any{"m": 1.0}, d["payload"])
	for _, f := range []string{"result_payload", "summary", "finished_at"} {
		require.Contains(t, d, f)
		require.Nil(t, d[f], f)
	}
	require.Equal(t, "2026-01-02T03:04:05.000000Z", d["started_at"])
	for _, f := range []string{"inserted_at", "updated_at"} {
		_, err := time.Parse(time.RFC3339, d[f].(string))
		require.NoError(t, err, f)
	}

	// A client-chosen ID in the account partition, a parent, and a span
	// created finished.
	mine := otherPFID(t, rootID)
	child := c.span(inst, "complete", map[string]any{"id": mine, "parent_span_id": rootID, "schema_name": "tool",
		"result_payload": map[string]any{"ok": true}, "started_at": "2026-01-02T03:04:06Z", "finished_at": "2026-01-02T03:04:07.5Z",
		"sensitive_encoding": false})
	require.Equal(t, 200, child.Status, child.Raw)
	require.Equal(t, mine, child.id())
	require.Equal(t, rootID, child.details()["parent_span_id"])
	require.Equal(t, "tool", child.details()["schema_title"], "the title defaults to the name")
	require.Equal(t, map[string]any{"ok": true}, child.details()["result_payload"])
	c.mustErr("POST", pathSpans, spanBody(inst, "active", map[string]any{"id": mine}), 409, "invalid_action")

	pending := c.span(inst, "pending", map[string]any{"parent_span_id": rootID})
	require.Equal(t, 200, pending.Status, pending.Raw)
	require.Nil(t, pending.details()["started_at"])
	// A span created complete with no times gets now for both.
	quick := c.span(inst, "failed", nil)
	require.Equal(t, 200, quick.Status, quick.Raw)
	require.NotNil(t, quick.details()["started_at"])
	require.NotNil(t, quick.details()["finished_at"])

	// Finish rules: active -> complete|failed, pending -> cancelled.
	require.Equal(t, "invalid_action", c.finishSpan(pending.id(), map[string]any{"status": "complete"}).code())
	require.Equal(t, "invalid_action", c.finishSpan(pending.id(), map[string]any{"status": "failed"}).code())
	r := c.finishSpan(pending.id(), map[string]any{"status": "cancelled", "timestamp": "2026-01-02T03:04:09Z"})
	require.Equal(t, 200, r.Status, r.Raw)
	require.Equal(t, "cancelled", r.details()["status"])
	require.Equal(t, r.details()["started_at"], r.details()["finished_at"])
	require.Equal(t, "invalid_action", c.finishSpan(rootID, map[string]any{"status": "cancelled"}).code())
	require.Equal(t, 422, c.finishSpan(rootID, map[string]any{"status": "pending"}).Status)
	require.Equal(t, 422, c.finishSpan(rootID, map[string]any{"result_payload": []any{}}).Status)
	require.Equal(t, 400, c.finishSpan(rootID, map[string]any{"payload": map[string]any{}}).Status)
	r = c.finishSpan(rootID, map[string]any{"status": "failed", "result_payload": map[string]any{"e": 1}, "sensitive_encoding": false,
		"timestamp": "2026-01-02T03:04:10.25Z"})
	require.Equal(t, 200, r.Status, r.Raw)
	require.Equal(t, map[string]any{"e": 1.0}, r.details()["result_payload"])
	second := c.finishSpan(rootID, nil)
	require.Equal(t, 409, second.Status)
	require.Equal(t, "invalid_action", second.code())
	require.Equal(t, 409, c.finishSpan(child.id(), nil).Status, "created finished")
	require.Equal(t, 404, c.finishSpan(otherPFID(t, mine), nil).Status)
	require.Equal(t, 422, c.finishSpan("nope", nil).Status)
	require.Equal(t, 422, c.must("POST", spanFinishPath(quick.id()), map[string]any{}, 422).Status, "no idempotency key")

	spans := c.srv.Spans(inst)
	require.Len(t, spans, 4)
	require.Equal(t, []string{rootID, mine, pending.id(), quick.id()}, []string{spans[0].ID, spans[1].ID, spans[2].ID, spans[3].ID})
	f, tr := false, true
	require.Equal(t, prefactortest.Span{ID: rootID, InstanceID: inst, SchemaName: "llm", Status: "failed",
		Payload: []byte(`{"m":1}`), ResultPayload: []byte(`{"e":1}`),
		StartedAt: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), FinishedAt: time.Date(2026, 1, 2, 3, 4, 10, 25e7, time.UTC),
		SensitiveEncoding: &f, Creates: 1, Finishes: 1}, spans[0])
	require.Equal(t, &f, spans[1].SensitiveEncoding)
	require.Equal(t, 0, spans[1].Finishes)
	require.Nil(t, spans[2].SensitiveEncoding)
	require.Equal(t, "cancelled", spans[2].Status)
	_ = tr
	got, ok := c.srv.Span(mine)
	require.True(t, ok)
	require.Equal(t, spans[1], got)
	_, ok = c.srv.Span("nope")
	require.False(t, ok)
	require.Empty(t, c.srv.Spans("nope"))
	require.Equal(t, spans, c.srv.AllSpans())
	require.NoError(t, c.srv.Validate())

	// No spans on a finished instance; none on an unknown one.
	c.must("POST", instPath(inst, "start"), map[string]any{"idempotency_key": key()}, 200)
	c.must("POST", instPath(inst, "finish"), map[string]any{"idempotency_key": key()}, 200)
	c.mustErr("POST", pathSpans, spanBody(inst, "active", nil), 409, "invalid_action")
	c.mustErr("POST", pathSpans, spanBody(otherPFID(t, inst), "active", nil), 404, "not_found")
}

func TestSpanValidation(t *testing.T) {
	c := newClient(t)
	inst := c.started()
	other := c.started()
	otherSpan := c.span(other, "active", nil).id()
	foreign := "01an4z07by" + "000042" + "0123456789abcdef"
	for name, tc := range map[string]struct {
		extra  map[string]any
		status int
		field  string
	}{
		"no instance":             {map[string]any{"agent_instance_id": nil}, 422, "agent_instance_id"},
		"bad instance":            {map[string]any{"agent_instance_id": "inst-1"}, 422, "agent_instance_id"},
		"no schema_name":          {map[string]any{"schema_name": nil}, 422, "schema_name"},
		"empty schema_name":       {map[string]any{"schema_name": ""}, 422, "schema_name"},
		"unknown schema":          {map[string]any{"schema_name": "mystery"}, 422, "schema_name"},
		"no status":               {map[string]any{"status": nil}, 422, "status"},
		"bad status":              {map[string]any{"status": "running"}, 422, "status"},
		"created cancelled":       {map[string]any{"status": "cancelled"}, 422, "status"},
		"no payload":              {map[string]any{"payload": nil}, 422, "payload"},
		"payload not object":      {map[string]any{"payload": []int{1}}, 422, "payload"},
		"payload a string":        {map[string]any{"payload": "{}"}, 422, "payload"},
		"result not object":       {map[string]any{"status": "complete", "result_payload": 5}, 422, "result_payload"},
		"result while active":     {map[string]any{"result_payload": map[string]any{}}, 422, "result_payload"},
		"result while pending":    {map[string]any{"status": "pending", "result_payload": map[string]any{}}, 422, "result_payload"},
		"finished_at on active":   {map[string]any{"finished_at": "2026-01-02T03:04:05Z"}, 422, "finished_at"},
		"started_at on pending":   {map[string]any{"status": "pending", "started_at": "2026-01-02T03:04:05Z"}, 422, "started_at"},
		"bad started_at":          {map[string]any{"started_at": "yesterday"}, 422, "started_at"},
		"started_at no zone":      {map[string]any{"started_at": "2026-01-02T03:04:05"}, 422, "started_at"},
		"bad finished_at":         {map[string]any{"status": "complete", "finished_at": "2026-13-02T03:04:05Z"}, 422, "finished_at"},
		"bad id":                  {map[string]any{"id": "ABC"}, 422, "id"},
		"id in another partition": {map[string]any{"id": foreign}, 422, "id"},
		"bad parent":              {map[string]any{"parent_span_id": "nope"}, 422, "parent_span_id"},
		"unknown parent":          {map[string]any{"parent_span_id": otherPFID(t, otherSpan)}, 422, "parent_span_id"},
		"parent elsewhere":        {map[string]any{"parent_span_id": otherSpan}, 422, "parent_span_id"},
		"sensitive not bool":      {map[string]any{"sensitive_encoding": "yes"}, 422, "details.sensitive_encoding"},
		"unknown field":           {map[string]any{"colour": "red"}, 400, "colour"},
	} {
		t.Run(name, func(t *testing.T) {
			r := c.span(inst, "active", tc.extra)
			require.Equal(t, tc.status, r.Status, r.Raw)
			if tc.status == 400 {
				require.Equal(t, "bad_request", r.code())
			} else {
				require.Equal(t, "validation_errors", r.code())
			}
			require.Contains(t, r.errors(), tc.field, r.Raw)
		})
	}
	require.Len(t, c.srv.Spans(inst), 0, "nothing stored")

	// Several problems are reported together.
	r := c.mustErr("POST", pathSpans, map[string]any{"details": map[string]any{}, "idempotency_key": key()}, 422, "validation_errors")
	for _, f := range []string{"agent_instance_id", "schema_name", "status", "payload"} {
		require.Contains(t, r.errors(), f)
	}
	// The envelope: details required and an object; fields of a bulk item
	// are not fields of the request.
	c.mustErr("POST", pathSpans, map[string]any{"idempotency_key": key()}, 422, "validation_errors")
	c.mustErr("POST", pathSpans, map[string]any{"details": nil, "idempotency_key": key()}, 422, "validation_errors")
	c.mustErr("POST", pathSpans, map[string]any{"details": "x", "idempotency_key": key()}, 422, "validation_errors")
	r = c.mustErr("POST", pathSpans, map[string]any{"agent_instance_id": inst, "schema_name": "llm", "status": "active",
		"payload": map[string]any{}, "idempotency_key": key()}, 400, "bad_request")
	require.Contains(t, r.errors(), "agent_instance_id")
	c.mustErr("POST", pathSpans, map[string]any{"_type": "agent_spans/create", "details": spanBody(inst, "active", nil)["details"],
		"idempotency_key": key()}, 400, "bad_request")
	c.mustErr("POST", pathSpans, "[]", 400, "bad_request")
	c.mustErr("POST", pathSpans, `{"details":`, 400, "bad_request")

	// The key: at the top level or inside details, not two different ones.
	body := spanBody(inst, "active", nil)
	delete(body, "idempotency_key")
	c.mustErr("POST", pathSpans, body, 422, "validation_errors")
	body["details"].(map[string]any)["idempotency_key"] = key()
	c.must("POST", pathSpans, body, 200)
	body = spanBody(inst, "active", nil)
	body["details"].(map[string]any)["idempotency_key"] = key()
	r = c.mustErr("POST", pathSpans, body, 422, "validation_errors")
	require.Contains(t, r.errors(), "idempotency_key")
	// Nulls are absent values.
	r = c.must("POST", pathSpans, spanBody(inst, "active", map[string]any{"parent_span_id": nil, "finished_at": nil,
		"result_payload": nil, "id": nil, "sensitive_encoding": nil}), 200)
	require.Nil(t, r.details()["parent_span_id"])
	assert.Len(t, c.srv.Spans(inst), 2)
}

func TestSchemaVersions(t *testing.T) {
	c := newClient(t)
	// Legacy maps declare span types too.
	legacy := c.register(map[string]any{"agent_schema_version": map[string]any{"external_identifier": "legacy",
		"span_schemas": map[string]any{"lc:llm": map[string]any{}}, "span_result_schemas": map[string]any{"lc:llm": map[string]any{}}}})
	require.Equal(t, 200, c.span(legacy, "active", map[string]any{"schema_name": "lc:llm"}).Status)
	require.Equal(t, 422, c.span(legacy, "active", map[string]any{"schema_name": "llm"}).Status)

	// With span_type_schemas, the legacy maps are ignored.
	both := c.register(map[string]any{"agent_schema_version": map[string]any{"external_identifier": "both",
		"span_type_schemas": []any{map[string]any{"name": "new", "params_schema": map[string]any{}}},
		"span_schemas":      map[string]any{"old": map[string]any{}}}})
	require.Equal(t, 200, c.span(both, "active", map[string]any{"schema_name": "new"}).Status)
	require.Equal(t, 422, c.span(both, "active", map[string]any{"schema_name": "old"}).Status)

	// An empty list of span types allows any name.
	empty := c.register(map[string]any{"agent_schema_version": map[string]any{"external_identifier": "empty", "span_type_schemas": []any{}}})
	require.Equal(t, 200, c.span(empty, "active", map[string]any{"schema_name": "whatever"}).Status)

	// A schema version is immutable once stored: the same identifier with
	// other span types keeps the first ones.
	first := c.register(nil)
	second := c.register(map[string]any{"agent_schema_version": map[string]any{"external_identifier": "s1",
		"span_type_schemas": []any{map[string]any{"name": "other", "params_schema": map[string]any{}}}}})
	require.Equal(t, 200, c.span(first, "active", nil).Status)
	require.Equal(t, 200, c.span(second, "active", nil).Status)
	r := c.span(second, "active", map[string]any{"schema_name": "other"})
	require.Equal(t, 422, r.Status, r.Raw)
}

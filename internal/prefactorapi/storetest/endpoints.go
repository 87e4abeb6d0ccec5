package storetest

import (
	"encoding/json"
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agenttrace/agenttrace/internal/prefactorapi"
)

// runEndpoints runs the tests of record_quality, agent_context and the
// version endpoints, each on a store of its own.
func runEndpoints(t *testing.T, newStore NewStore, codec prefactorapi.Codec) {
	for _, tc := range []struct {
		name string
		fn   func(*testing.T, prefactorapi.Store, prefactorapi.Codec)
	}{
		{"QualityRoundTrip", func(t *testing.T, s prefactorapi.Store, _ prefactorapi.Codec) { testQualityRoundTrip(t, s) }},
		{"RecordQuality", testRecordQuality},
		{"AgentContext", testAgentContext},
		{"Versions", testVersions},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore(t)
			t.Cleanup(func() { _ = s.Close() })
			tc.fn(t, s, codec)
		})
	}
}

// endpointAPI is an API over s with a fresh account and environment,
// decoding with codec.
func endpointAPI(t *testing.T, s prefactorapi.Store, codec prefactorapi.Codec) *prefactorapi.API {
	return newAPI(t, s, codec)
}

// An instance's quality payloads are kept with it: written, replaced,
// removed, read back as written.
func testQualityRoundTrip(t *testing.T, s prefactorapi.Store) {
	in := sampleInstance(id(), 1)
	sum := "score 4"
	in.Quality = map[string]prefactorapi.QualityRecord{
		"helpfulness": {Payload: json.RawMessage(`{"score":4,"notes":["a","b"]}`), Summary: &sum},
		"safety":      {Payload: json.RawMessage(`{}`)},
	}
	update(t, s, func(tx prefactorapi.Tx) error { return tx.PutInstance(in) })
	read := func() prefactorapi.InstanceRecord {
		var got prefactorapi.InstanceRecord
		require.NoError(t, s.View(ctx, func(tx prefactorapi.ReadTx) error {
			r, ok, err := tx.Instance(in.ID)
			require.True(t, ok)
			got = r
			return err
		}))
		return got
	}
	assert.Equal(t, in, read())
	in.Quality = nil
	update(t, s, func(tx prefactorapi.Tx) error { return tx.PutInstance(in) })
	assert.Nil(t, read().Quality, "removed")
	// A failed update keeps the payloads as they were.
	in.Quality = map[string]prefactorapi.QualityRecord{"x": {Payload: json.RawMessage(`{"y":1}`)}}
	err := s.Update(ctx, func(tx prefactorapi.Tx) error {
		require.NoError(t, tx.PutInstance(in))
		return errors.New("boom")
	})
	require.Error(t, err)
	assert.Nil(t, read().Quality)
}

// clockAPI is an API whose clock moves a millisecond per reading, so that
// records made one after another have increasing times.
func clockAPI(t *testing.T, s prefactorapi.Store, codec prefactorapi.Codec) *prefactorapi.API {
	now := ts(0)
	api, err := prefactorapi.New(s, prefactorapi.Config{AccountID: id(), EnvironmentID: id(), Codec: codec,
		Now: func() time.Time { now = now.Add(time.Millisecond); return now }})
	require.NoError(t, err)
	return api
}

func mustOK(t *testing.T, m map[string]any) map[string]any {
	t.Helper()
	require.Equal(t, 200.0, m["http_status"], m)
	d, _ := m["details"].(map[string]any)
	return d
}

func requireError(t *testing.T, m map[string]any, status float64, code string, field string) {
	t.Helper()
	require.Equal(t, status, m["http_status"], m)
	require.Equal(t, code, m["code"], m)
	if field != "" {
		errs, _ := m["errors"].(map[string]any)
		require.Contains(t, errs, field, m)
	}
}

const qualitySchemaVersion = `"agent_schema_version":{"external_identifier":"s1",
	"span_type_schemas":[{"name":"llm","params_schema":{},"template":"{{ model }}"}],
	"quality_schemas":[{"name":"helpfulness","schema":{"type":"object"},"template":"score {{ score }}"},
	{"name":"safety","schema":{},"title":"Safety","description":"d"}]}`

// record_quality: payloads by name with their summaries, null removes one,
// the names the schema version declares, idempotency, the error codes;
// GET shows what was recorded, also after the instance finished.
func testRecordQuality(t *testing.T, s prefactorapi.Store, codec prefactorapi.Codec) {
	api := endpointAPI(t, s, codec)
	inst := detailsID(do(t, api, prefactorapi.EndpointRegister, "", `{"agent_version":{"external_identifier":"v1"},`+
		qualitySchemaVersion+`,"idempotency_key":"reg-1"}`))
	require.NotEmpty(t, inst)
	rec := func(body string) map[string]any { return do(t, api, prefactorapi.EndpointRecordQuality, inst, body) }

	d := mustOK(t, rec(`{"name":"helpfulness","payload":{"score": 4},"idempotency_key":"q-1"}`))
	assert.Equal(t, map[string]any{"helpfulness": map[string]any{"score": 4.0}}, d["quality_payloads"])
	assert.Equal(t, map[string]any{"helpfulness": "score 4"}, d["quality_summaries"])
	d = mustOK(t, rec(`{"name":"safety","payload":{"flagged":false},"idempotency_key":"q-2"}`))
	assert.Equal(t, map[string]any{"helpfulness": map[string]any{"score": 4.0}, "safety": map[string]any{"flagged": false}},
		d["quality_payloads"], "other names are left unchanged")
	assert.Equal(t, map[string]any{"helpfulness": "score 4"}, d["quality_summaries"], "safety has no template")

	// The same request under its key replays; another body is refused.
	again := rec(`{"name":"helpfulness","payload":{"score": 4},"idempotency_key":"q-1"}`)
	assert.Equal(t, map[string]any{"helpfulness": map[string]any{"score": 4.0}}, mustOK(t, again)["quality_payloads"],
		"the stored answer")
	requireError(t, rec(`{"name":"helpfulness","payload":{"score":5},"idempotency_key":"q-1"}`), 409, prefactorapi.CodeIdempotencyReused, "")

	// Replacing, then removing with null.
	d = mustOK(t, rec(`{"name":"helpfulness","payload":{"score":2},"idempotency_key":"q-3"}`))
	assert.Equal(t, map[string]any{"helpfulness": "score 2"}, d["quality_summaries"])
	d = mustOK(t, rec(`{"name":"helpfulness","payload":null,"idempotency_key":"q-4"}`))
	assert.Equal(t, map[string]any{"safety": map[string]any{"flagged": false}}, d["quality_payloads"])
	assert.Equal(t, map[string]any{}, d["quality_summaries"])

	// Bad input, nothing stored.
	requireError(t, rec(`{"name":"nope","payload":{},"idempotency_key":"q-5"}`), 422, prefactorapi.CodeValidation, "name")
	requireError(t, rec(`{"payload":{},"idempotency_key":"q-6"}`), 422, prefactorapi.CodeValidation, "name")
	requireError(t, rec(`{"name":"safety","idempotency_key":"q-7"}`), 422, prefactorapi.CodeValidation, "payload")
	requireError(t, rec(`{"name":"safety","payload":[1],"idempotency_key":"q-8"}`), 422, prefactorapi.CodeValidation, "payload")
	requireError(t, rec(`{"name":"safety","payload":{},"extra":1,"idempotency_key":"q-9"}`), 400, prefactorapi.CodeBadRequest, "extra")
	requireError(t, rec(`{"name":`), 400, prefactorapi.CodeBadRequest, "")
	requireError(t, do(t, api, prefactorapi.EndpointRecordQuality, id(), `{"name":"safety","payload":{},"idempotency_key":"q-10"}`),
		404, prefactorapi.CodeNotFound, "")
	requireError(t, do(t, api, prefactorapi.EndpointRecordQuality, "not-a-pfid", `{"name":"safety","payload":{}}`),
		422, prefactorapi.CodeValidation, "agent_instance_id")

	// After the finish, quality is still recorded (Python queues it so).
	mustOK(t, do(t, api, prefactorapi.EndpointFinishInstance, inst, `{"status":"cancelled","idempotency_key":"fin-1"}`))
	mustOK(t, rec(`{"name":"helpfulness","payload":{"score":5},"idempotency_key":"q-11"}`))
	got := mustOK(t, do(t, api, prefactorapi.EndpointGetInstance, inst, ""))
	assert.Equal(t, "cancelled", got["status"])
	assert.Equal(t, map[string]any{"helpfulness": map[string]any{"score": 5.0}, "safety": map[string]any{"flagged": false}},
		got["quality_payloads"])
	assert.Equal(t, map[string]any{"helpfulness": "score 5"}, got["quality_summaries"])

	// Without quality schemas, any name is taken; without a key too.
	other := detailsID(do(t, api, prefactorapi.EndpointRegister, "", `{"idempotency_key":"reg-2"}`))
	d = mustOK(t, do(t, api, prefactorapi.EndpointRecordQuality, other, `{"name":"anything","payload":{"a":1}}`))
	assert.Equal(t, map[string]any{"anything": map[string]any{"a": 1.0}}, d["quality_payloads"])
	assert.Equal(t, map[string]any{}, mustOK(t, do(t, api, prefactorapi.EndpointRegister, "", `{"idempotency_key":"reg-3"}`))["quality_payloads"],
		"an instance without quality shows empty maps")

	// Register checks the quality schemas.
	bad := do(t, api, prefactorapi.EndpointRegister, "", `{"agent_schema_version":{"external_identifier":"s2",
		"quality_schemas":[{"schema":{}},{"name":"a","schema":{},"colour":"red"},{"name":"b"}]},"idempotency_key":"reg-4"}`)
	requireError(t, bad, 422, prefactorapi.CodeValidation, "agent_schema_version.quality_schemas[0].name")
	errs := bad["errors"].(map[string]any)
	assert.Contains(t, errs, "agent_schema_version.quality_schemas[1].colour")
	assert.Contains(t, errs, "agent_schema_version.quality_schemas[2].schema")
}

// agent_context: the instance, its versions and its spans with summaries,
// under agent_context.body; the error codes.
func testAgentContext(t *testing.T, s prefactorapi.Store, codec prefactorapi.Codec) {
	api := endpointAPI(t, s, codec)
	reg := mustOK(t, do(t, api, prefactorapi.EndpointRegister, "", `{"agent_version":{"external_identifier":"v1","name":"support"},`+
		qualitySchemaVersion+`,"idempotency_key":"reg-1"}`))
	inst := reg["id"].(string)
	root := mustOK(t, do(t, api, prefactorapi.EndpointCreateSpan, "", `{"details":{"agent_instance_id":"`+inst+
		`","schema_name":"llm","status":"active","payload":{"model":"m1"}},"idempotency_key":"span-1"}`))
	mustOK(t, do(t, api, prefactorapi.EndpointCreateSpan, "", `{"details":{"agent_instance_id":"`+inst+
		`","schema_name":"llm","status":"complete","parent_span_id":"`+root["id"].(string)+`","payload":{"model":"m2"},"result_payload":{}},"idempotency_key":"span-2"}`))
	mustOK(t, do(t, api, prefactorapi.EndpointRecordQuality, inst, `{"name":"safety","payload":{"ok":true},"idempotency_key":"q-1"}`))

	m := do(t, api, prefactorapi.EndpointAgentContext, inst, "")
	require.Equal(t, 200.0, m["http_status"], m)
	assert.Equal(t, "success", m["status"])
	body := m["agent_context"].(map[string]any)["body"].(map[string]any)
	ai := body["agent_instance"].(map[string]any)
	assert.Equal(t, inst, ai["id"])
	assert.Equal(t, map[string]any{"safety": map[string]any{"ok": true}}, ai["quality_payloads"])
	av := body["agent_version"].(map[string]any)
	assert.Equal(t, reg["agent_version_id"], av["id"])
	assert.Equal(t, "v1", av["external_identifier"])
	assert.Equal(t, true, av["current_version"])
	sv := body["agent_schema_version"].(map[string]any)
	assert.Equal(t, reg["agent_schema_version_id"], sv["id"])
	spans := body["spans"].([]any)
	require.Len(t, spans, 2)
	assert.Equal(t, root["id"], spans[0].(map[string]any)["id"])
	assert.Equal(t, "m2", spans[1].(map[string]any)["summary"])
	assert.Equal(t, root["id"], spans[1].(map[string]any)["parent_span_id"])

	// An instance without a schema version or spans.
	bare := detailsID(do(t, api, prefactorapi.EndpointRegister, "", `{"idempotency_key":"reg-2"}`))
	body = do(t, api, prefactorapi.EndpointAgentContext, bare, "")["agent_context"].(map[string]any)["body"].(map[string]any)
	assert.Nil(t, body["agent_schema_version"])
	assert.Equal(t, []any{}, body["spans"])

	requireError(t, do(t, api, prefactorapi.EndpointAgentContext, id(), ""), 404, prefactorapi.CodeNotFound, "")
	requireError(t, do(t, api, prefactorapi.EndpointAgentContext, "x", ""), 422, prefactorapi.CodeValidation, "agent_instance_id")
	requireError(t, do(t, api, prefactorapi.EndpointGetInstance, id(), ""), 404, prefactorapi.CodeNotFound, "")
	requireError(t, do(t, api, prefactorapi.EndpointGetInstance, "x", ""), 422, prefactorapi.CodeValidation, "agent_instance_id")
	requireError(t, do(t, api, prefactorapi.EndpointGetInstance, strings.ToUpper(inst), ""), 422, prefactorapi.CodeValidation, "agent_instance_id")
}

func doAgents(t *testing.T, api *prefactorapi.API, ep prefactorapi.Endpoint, pathID, body string, q url.Values) map[string]any {
	t.Helper()
	ans := api.DoAgents(ctx, ep, pathID, []byte(body), q)
	var m map[string]any
	require.NoError(t, json.Unmarshal(ans.Body, &m), string(ans.Body))
	m["http_status"] = float64(ans.Status)
	return m
}

func summaryIDs(t *testing.T, m map[string]any) []string {
	t.Helper()
	require.Equal(t, 200.0, m["http_status"], m)
	var out []string
	for _, s := range m["summaries"].([]any) {
		out = append(out, s.(map[string]any)["id"].(string))
	}
	return out
}

// Agent versions and schema versions: made by register and by create,
// listed by agent with pagination, read by ID; the error codes.
func testVersions(t *testing.T, s prefactorapi.Store, codec prefactorapi.Codec) {
	api := clockAPI(t, s, codec)
	reg1 := mustOK(t, do(t, api, prefactorapi.EndpointRegister, "", `{"agent_version":{"external_identifier":"v1","name":"support"},`+
		qualitySchemaVersion+`,"idempotency_key":"reg-1"}`))
	agent := reg1["agent_id"].(string)
	reg2 := mustOK(t, do(t, api, prefactorapi.EndpointRegister, "", `{"agent_id":"`+agent+`","agent_version":{"external_identifier":"v2","name":"support"},
		"agent_schema_version":{"external_identifier":"s2","span_schemas":{"a":{},"b":{}}},"idempotency_key":"reg-2"}`))
	v1, v2 := reg1["agent_version_id"].(string), reg2["agent_version_id"].(string)
	s1, s2 := reg1["agent_schema_version_id"].(string), reg2["agent_schema_version_id"].(string)
	q := func(kv ...string) url.Values {
		v := url.Values{"agent_id": {agent}}
		for i := 0; i+1 < len(kv); i += 2 {
			v.Set(kv[i], kv[i+1])
		}
		return v
	}

	// Create: a third version, not current; a third schema version.
	d := mustOK(t, doAgents(t, api, prefactorapi.EndpointCreateAgentVersion, "", `{"details":{"agent_id":"`+agent+`","external_identifier":"v3"}}`, nil))
	v3 := d["id"].(string)
	assert.Equal(t, "agent_version", d["type"])
	assert.Equal(t, 3.0, d["number"])
	assert.Equal(t, false, d["current_version"])
	d = mustOK(t, doAgents(t, api, prefactorapi.EndpointCreateSchemaVersion, "", `{"details":{"agent_id":"`+agent+`","external_identifier":"s3",
		"span_type_schemas":[{"name":"tool","title":"Tool call","params_schema":{},"template":"{{ name }}"}]},"idempotency_key":"sv-1"}`, nil))
	s3 := d["id"].(string)
	assert.Equal(t, "agent_schema_version", d["type"])
	assert.Equal(t, map[string]any{"tool": map[string]any{"name": "tool", "title": "Tool call", "template": "{{ name }}"}}, d["span_type_schemas"])
	assert.Equal(t, 1.0, d["span_schemas_count"])
	replay := doAgents(t, api, prefactorapi.EndpointCreateSchemaVersion, "", `{"details":{"agent_id":"`+agent+`","external_identifier":"s3",
		"span_type_schemas":[{"name":"tool","title":"Tool call","params_schema":{},"template":"{{ name }}"}]},"idempotency_key":"sv-1"}`, nil)
	assert.Equal(t, s3, mustOK(t, replay)["id"], "replayed under its key")

	// Lists, by number and in creation order, paginated.
	assert.Equal(t, []string{v1, v2, v3}, summaryIDs(t, doAgents(t, api, prefactorapi.EndpointListAgentVersions, "", "", q())))

	assert.Equal(t, []string{s1, s2, s3}, summaryIDs(t, doAgents(t, api, prefactorapi.EndpointListSchemaVersions, "", "", q())))
	page := doAgents(t, api, prefactorapi.EndpointListAgentVersions, "", "", q("pagination[offset]", "1", "pagination[page_size]", "1"))
	assert.Equal(t, []string{v2}, summaryIDs(t, page))
	p := page["pagination"].(map[string]any)
	assert.Equal(t, 3.0, p["item_count"])
	assert.Equal(t, 2.0, p["page_index"])
	assert.Equal(t, 2.0, p["next_page_offset"])
	assert.Equal(t, 0.0, p["previous_page_offset"])
	past := doAgents(t, api, prefactorapi.EndpointListSchemaVersions, "", "", q("pagination[offset]", "1000000000"))
	assert.Empty(t, summaryIDs(t, past))

	// A version names the schema version it was created with.
	d = mustOK(t, doAgents(t, api, prefactorapi.EndpointCreateAgentVersion, "", `{"details":{"agent_id":"`+agent+
		`","external_identifier":"v4","agent_schema_version_id":"`+s3+`","name":"n4","description":"d4"}}`, nil))
	v4 := d["id"].(string)
	assert.Equal(t, s3, d["agent_schema_version_id"])
	assert.Equal(t, "n4", d["name"])
	assert.Equal(t, s1, mustOK(t, doAgents(t, api, prefactorapi.EndpointGetAgentVersion, v1, "", nil))["agent_schema_version_id"])
	assert.Nil(t, mustOK(t, doAgents(t, api, prefactorapi.EndpointGetAgentVersion, v3, "", nil))["agent_schema_version_id"])
	requireError(t, doAgents(t, api, prefactorapi.EndpointCreateAgentVersion, "", `{"details":{"agent_id":"`+agent+
		`","external_identifier":"v5","agent_schema_version_id":"`+id()+`"}}`, nil), 422, prefactorapi.CodeValidation, "details.agent_schema_version_id")
	requireError(t, doAgents(t, api, prefactorapi.EndpointCreateAgentVersion, "", `{"details":{"agent_id":"`+agent+
		`","external_identifier":"v5","agent_schema_version_id":"x"}}`, nil), 422, prefactorapi.CodeValidation, "details.agent_schema_version_id")

	// Get: the current flags follow the agent.
	d = mustOK(t, doAgents(t, api, prefactorapi.EndpointGetAgentVersion, v2, "", nil))
	assert.Equal(t, "v2", d["external_identifier"])
	assert.Equal(t, "support", d["name"])
	assert.Equal(t, true, d["current_version"])
	assert.Equal(t, false, mustOK(t, doAgents(t, api, prefactorapi.EndpointGetAgentVersion, v1, "", nil))["current_version"])
	d = mustOK(t, doAgents(t, api, prefactorapi.EndpointGetSchemaVersion, s2, "", nil))
	assert.Equal(t, true, d["current_schema_version"])
	assert.Equal(t, 2.0, d["span_schemas_count"])
	assert.Equal(t, false, mustOK(t, doAgents(t, api, prefactorapi.EndpointGetSchemaVersion, s3, "", nil))["current_schema_version"])

	// Errors.
	requireError(t, doAgents(t, api, prefactorapi.EndpointGetAgentVersion, id(), "", nil), 404, prefactorapi.CodeNotFound, "")
	requireError(t, doAgents(t, api, prefactorapi.EndpointGetSchemaVersion, v1, "", nil), 404, prefactorapi.CodeNotFound, "")
	requireError(t, doAgents(t, api, prefactorapi.EndpointGetAgentVersion, "nope", "", nil), 404, prefactorapi.CodeNotFound, "")
	requireError(t, doAgents(t, api, prefactorapi.EndpointListAgentVersions, "", "", nil), 422, prefactorapi.CodeValidation, "agent_id")
	requireError(t, doAgents(t, api, prefactorapi.EndpointListSchemaVersions, "", "", url.Values{"agent_id": {id()}}), 404, prefactorapi.CodeNotFound, "")
	requireError(t, doAgents(t, api, prefactorapi.EndpointListAgentVersions, "", "", q("pagination[page_size]", "0")), 422,
		prefactorapi.CodeValidation, "pagination[page_size]")
	requireError(t, doAgents(t, api, prefactorapi.EndpointCreateAgentVersion, "", `{"details":{"agent_id":"`+agent+`","external_identifier":"v1"}}`, nil),
		422, prefactorapi.CodeValidation, "details.external_identifier")
	requireError(t, doAgents(t, api, prefactorapi.EndpointCreateAgentVersion, "", `{"details":{"agent_id":"`+id()+`","external_identifier":"v9"}}`, nil),
		404, prefactorapi.CodeNotFound, "")
	requireError(t, doAgents(t, api, prefactorapi.EndpointCreateAgentVersion, "", `{"details":{"external_identifier":""}}`, nil),
		422, prefactorapi.CodeValidation, "details.agent_id")
	requireError(t, doAgents(t, api, prefactorapi.EndpointCreateAgentVersion, "", `{}`, nil), 422, prefactorapi.CodeValidation, "details")
	requireError(t, doAgents(t, api, prefactorapi.EndpointCreateAgentVersion, "", `{"details":{"agent_id":"`+agent+`","external_identifier":"v9","colour":1}}`, nil),
		400, prefactorapi.CodeBadRequest, "colour")
	requireError(t, doAgents(t, api, prefactorapi.EndpointCreateSchemaVersion, "", `{"details":{"agent_id":"`+agent+`","external_identifier":"s9",
		"span_type_schemas":[{"name":"x"}]}}`, nil), 422, prefactorapi.CodeValidation, "details.span_type_schemas[0].params_schema")
	requireError(t, doAgents(t, api, prefactorapi.EndpointCreateSchemaVersion, "", `{"details":{"agent_id":"`+agent+`","external_identifier":"s1"}}`, nil),
		422, prefactorapi.CodeValidation, "details.external_identifier")
	requireError(t, doAgents(t, api, prefactorapi.EndpointCreateSchemaVersion, "", `{"details":{"agent_id":"`+agent+`","external_identifier":"s3"},"idempotency_key":"sv-1"}`, nil),
		409, prefactorapi.CodeIdempotencyReused, "")
	// Nothing refused was stored.
	assert.Equal(t, []string{v1, v2, v3, v4}, summaryIDs(t, doAgents(t, api, prefactorapi.EndpointListAgentVersions, "", "", q())))
	assert.Len(t, summaryIDs(t, doAgents(t, api, prefactorapi.EndpointListSchemaVersions, "", "", q())), 3)
	// A created schema version's span types are the instance's.
	inst := detailsID(do(t, api, prefactorapi.EndpointRegister, "", `{"agent_id":"`+agent+`","agent_version":{"external_identifier":"v3"},
		"agent_schema_version":{"external_identifier":"s3"},"idempotency_key":"reg-3"}`))
	sp := mustOK(t, do(t, api, prefactorapi.EndpointCreateSpan, "", `{"details":{"agent_instance_id":"`+inst+
		`","schema_name":"tool","status":"active","payload":{"name":"grep"}},"idempotency_key":"span-1"}`))
	assert.Equal(t, "Tool call", sp["schema_title"])
	assert.Equal(t, "grep", sp["summary"])
}

package prefactorapi

import (
	"encoding/json"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
)

// decodeBulkItem answers as the two-step decoding (head, then the item as
// its type) does, for items it decodes in one step and for the others.
func TestDecodeBulkItemMatchesTwoSteps(t *testing.T) {
	items := []string{
		`{"_type":"agent_spans/create","idempotency_key":"k-000001","details":{"agent_instance_id":"x","schema_name":"llm","status":"active","payload":{"a":1}}}`,
		` {"_type":"agent_spans/create","idempotency_key":"k-000002","agent_instance_id":"x","schema_name":"llm","status":"active","payload":{}}`,
		`{"_type":"agent_spans/create","idempotency_key":"k-000003","details":{"schema_name":"llm"},"schema_name":"llm"}`,
		`{"_type":"agent_spans/create","idempotency_key":"k-000004","details":{"schema_name":"llm","bogus":1}}`,
		`{"_type":"agent_spans/create","idempotency_key":"k-000005","details":{"schema_name":7}}`,
		`{"_type":"agent_spans/create","idempotency_key":"k-000006","_type":"agent_spans/finish","agent_span_id":"s"}`,
		`{"_type":"agent_spans/create","idempotency_key":"k-000007","_TYPE":"agent_spans/finish","agent_span_id":"s"}`,
		`{"_type":"agent_spans/finish","idempotency_key":"k-000008","agent_span_id":"s","status":"complete","result_payload":{"x":[1]}}`,
		`{"_type":"agent_spans/finish","idempotency_key":"k-000009","agent_span_id":"s","schema_name":null}`,
		`{"_type":"agent_instances/register","idempotency_key":"k-000010","agent_version":{"name":"a"}}`,
		`{"_type":"agent_instances/start","idempotency_key":"k-000011","agent_instance_id":"i","timestamp":"2026-01-01T00:00:00Z"}`,
		`{"_type":"agent_instances/finish","idempotency_key":"k-000012","agent_instance_id":"i","status":"failed"}`,
		`{"idempotency_key":"k-000013","_type":"agent_spans/finish","agent_span_id":"s"}`,
		`{"_type":"agent_spans/nothing","idempotency_key":"k-000014"}`,
		`{"_type":"agent_spans\/create","idempotency_key":"k-000015","details":{"schema_name":"llm"}}`,
		`{"_type":"agent_spans/create","idempotency_key":7,"details":{"schema_name":"llm"}}`,
		`{"_type":"agent_spans/create","IDEMPOTENCY_KEY":"k-000017","details":{"schema_name":"llm"}}`,
		`{"_type":"agent_instances/start"}`,
		`{"_type":"agent_spans/create","idempotency_key":"k-000019","details":null}`,
	}
	for _, raw := range items {
		var h bulkHead
		_ = json.Unmarshal([]byte(raw), &h)
		wantOp, wantErr := Codec{}.decodeItem(h.Type, []byte(raw))
		head, op, e := Codec{}.decodeBulkItem([]byte(raw))
		assert.Equal(t, h, head, raw)
		assert.Equal(t, wantOp, op, raw)
		assert.Equal(t, wantErr, e, raw)
	}
}

func TestLeadingType(t *testing.T) {
	assert.Equal(t, "agent_spans/create", leadingType([]byte(" {\"_type\":\"agent_spans/create\",\"x\":1}")))
	assert.Equal(t, "", leadingType([]byte(`{"_type": "agent_spans/create"}`)))
	assert.Equal(t, "", leadingType([]byte(`{"_type":"agent_spans\/create"}`)))
	assert.Equal(t, "", leadingType([]byte(`{"_type":"unterminated`)))
	assert.Equal(t, "", leadingType([]byte(`{"x":1,"_type":"agent_spans/create"}`)))
}

// Decoded by several goroutines, a large request's items come out as each
// decoded alone, hashes computed; items that are not objects are left.
func TestDecodeBulkItemsInParallel(t *testing.T) {
	var items []json.RawMessage
	for i := range 300 {
		var raw string
		switch {
		case i == 7:
			raw = `[1]`
		case i%50 == 3:
			raw = `{"_type":"agent_spans/create","idempotency_key":"k-` + strconv.Itoa(i) + `","details":{"bogus":1}}`
		case i%2 == 0:
			raw = `{"_type":"agent_spans/create","idempotency_key":"k-` + strconv.Itoa(i) + `","details":{"schema_name":"llm","status":"active","payload":{"i":` + strconv.Itoa(i) + `}}}`
		default:
			raw = `{"idempotency_key":"k-` + strconv.Itoa(i) + `","_type":"agent_spans/finish","agent_span_id":"s` + strconv.Itoa(i) + `"}`
		}
		items = append(items, json.RawMessage(raw))
	}
	heads, ops, errs := Codec{}.decodeBulkItems(items)
	for i, raw := range items {
		if i == 7 {
			assert.Nil(t, ops[i])
			assert.Nil(t, errs[i])
			continue
		}
		h, o, e := Codec{}.decodeBulkItem(raw)
		if o != nil {
			o.hash()
		}
		assert.Equal(t, h, heads[i], i)
		assert.Equal(t, o, ops[i], i)
		assert.Equal(t, e, errs[i], i)
		if i%50 == 3 {
			assert.NotNil(t, errs[i], i)
		} else {
			assert.NotEmpty(t, ops[i].h, i)
		}
	}
}

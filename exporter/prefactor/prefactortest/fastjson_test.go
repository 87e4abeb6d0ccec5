package prefactortest

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
)

// fastSeeds: the first 8 take the fast path, the others do not.
var fastSeeds = []string{
	`{"items":[]}`,
	`{"items":null}`,
	`{}`,
	` { "items" : [ { "_type" : "agent_spans/create" , "idempotency_key":"k-00000001","details":{"agent_instance_id":"013xrzp12g3nqk8n4evtrcj59k8dhn3t","schema_name":"llm","status":"active","payload":{"a":[1,2.5e3,-0.1,true,false,null,"x\"y\u00e9"],"b":{}},"parent_span_id":null,"started_at":"2026-01-02T03:04:05.000Z"}} ] } `,
	`{"items":[{"_type":"agent_spans/finish","idempotency_key":"k-00000002","agent_span_id":"013xrzp12g3nqk8n4evtrcj59k8dhn3t","timestamp":"2026-01-02T03:04:05.000Z","status":"complete","result_payload":{"text":"hi"},"sensitive_encoding":true}]}`,
	`{"items":[{"_type":"agent_instances/register","idempotency_key":"k-00000003","agent_id":"a","environment_id":"e","agent_version":{"external_identifier":"v1"},"agent_schema_version":{"span_type_schemas":[{"name":"llm","params_schema":{}}]},"update_current_version":false,"purpose":"eval","id":null}]}`,
	`{"items":[{"_type":"agent_spans/create","idempotency_key":"k","schema_name":"x","payload":[],"reason":"r","details":null}]}`,
	`{"items":[{"details":{"sensitive_encoding":null,"payload":null}}]}`,
	`{"items":[{"_type":"x","_type":"y"}]}`,
	`{"items":[{"Status":"x"}]}`,
	`{"items":[null]}`,
	`{"items":[{"status":"\u0041"}]}`,
	`{"items":[{"payload":{"a":1,}}]}`,
	`{"items":[{"payload":01}]}`,
	`{"items":[{"payload":1.}]}`,
	`{"items":[{"payload":"\x"}]}`,
	`{"items":[{"payload":[1 2]}]}`,
	`{"items":[{"payload":{"a" 1}}]}`,
	`{"items":[{"status":"é"}]}`,
	`{"items":[]} x`,
	`{"items":[],"items":[]}`,
	`{"items":[{"details":{"id":"a","id":"b"}}]}`,
}

// fastBulk agrees with encoding/json on everything it accepts.
func FuzzFastBulk(f *testing.F) {
	for _, s := range fastSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		fast, ok := fastBulk(b)
		var slow struct {
			Items []union `json:"items"`
		}
		err := decodeStrict(b, &slow)
		if !ok {
			return
		}
		require.NoError(t, err, "%s", b)
		require.Equal(t, slow.Items == nil, fast == nil, "%s", b)
		require.Equal(t, len(slow.Items), len(fast))
		for i := range fast {
			require.Equal(t, slow.Items[i], fast[i], "%s", b)
		}
	})
}

// fastRequest agrees with encoding/json on everything it accepts.
func FuzzFastRequest(f *testing.F) {
	for _, s := range fastSeeds {
		f.Add([]byte(s))
	}
	f.Add([]byte(`{"details":{"agent_instance_id":"i","schema_name":"s","status":"active","payload":{}},"idempotency_key":"k"}`))
	f.Add([]byte(`{"timestamp":null,"idempotency_key":"k"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var fast, slow union
		ok := fastRequest(b, &fast)
		err := decodeStrict(b, &slow)
		if ok {
			require.NoError(t, err, "%s", b)
			require.Equal(t, slow, fast, "%s", b)
		}
	})
}

func TestFastPathTaken(t *testing.T) {
	for _, s := range fastSeeds[:8] {
		_, ok := fastBulk([]byte(s))
		require.True(t, ok, s)
	}
	for _, s := range fastSeeds[8:] {
		_, ok := fastBulk([]byte(s))
		require.False(t, ok, s)
		var v struct {
			Items []union `json:"items"`
		}
		_ = json.Unmarshal([]byte(s), &v) // the slow path decides
	}
}

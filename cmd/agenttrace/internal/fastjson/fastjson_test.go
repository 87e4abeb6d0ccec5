package fastjson_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/agenttrace/agenttrace/cmd/agenttrace/internal/fastjson"
	"github.com/agenttrace/agenttrace/internal/prefactorapi"
	"github.com/agenttrace/agenttrace/internal/prefactorapi/storetest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// The store suite's protocol tests pass with the codec plugged.
func TestStoreSuiteWithCodec(t *testing.T) {
	storetest.RunWithCodec(t, func(t *testing.T) prefactorapi.Store { return prefactorapi.NewMemoryStore() }, fastjson.Codec())
}

// partition is the account's; span IDs chosen by the client carry it.
const partition = 123456789

var account = prefactorapi.NewPFID(partition)

func newAPI(t *testing.T, codec prefactorapi.Codec) *prefactorapi.API {
	now := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	api, err := prefactorapi.New(prefactorapi.NewMemoryStore(), prefactorapi.Config{AccountID: account, EnvironmentID: account,
		Now: func() time.Time { return now }, Codec: codec})
	require.NoError(t, err)
	return api
}

var pfidRE = regexp.MustCompile(`"[0-9a-z]{32}"`)

// normalize names the generated IDs of an answer stream in order of
// appearance, so that two APIs' answers compare.
type normalize map[string]string

func (n normalize) apply(b []byte) string {
	return pfidRE.ReplaceAllStringFunc(string(b), func(id string) string {
		if v, ok := n[id]; ok {
			return v
		}
		n[id] = fmt.Sprintf(`"ID%d"`, len(n))
		return n[id]
	})
}

// The codec answers every request of a corpus of valid and invalid bulk
// requests byte for byte as encoding/json does: duplicate and
// case-variant keys, unknown fields (top level, details, flat), invalid
// UTF-8, escapes and lone surrogates, numbers of every form in fields and
// payloads (rollups, templates), wrong types, trailing data, nulls, HTML
// and U+2028 in payloads (answers), and a request of more than 64 items
// (decoded in parallel).
func TestSameAnswersAsReference(t *testing.T) {
	ref, fast := newAPI(t, prefactorapi.Codec{}), newAPI(t, fastjson.Codec())
	nref, nfast := normalize{}, normalize{}
	ctx := context.Background()
	reg := `{"agent_version":{"external_identifier":"v1","name":"support"},
		"agent_schema_version":{"external_identifier":"s1","span_type_schemas":[{"name":"agent","params_schema":{}},
		{"name":"llm","title":"LLM","params_schema":{},"template":"{{ model }} said {{ text | default: \"nothing\" }} {{ n }} {{ a[1].b | upcase }}"}]},
		"idempotency_key":"reg-00001"}`
	inst := map[*prefactorapi.API]string{}
	for _, api := range []*prefactorapi.API{ref, fast} {
		ans := api.Do(ctx, prefactorapi.EndpointRegister, "", []byte(reg), nil)
		require.Equal(t, 200, ans.Status, string(ans.Body))
		var d struct{ Details struct{ ID string } }
		require.NoError(t, json.Unmarshal(ans.Body, &d))
		inst[api] = d.Details.ID
		require.Equal(t, 200, api.Do(ctx, prefactorapi.EndpointStart, d.Details.ID, []byte(`{"idempotency_key":"start-0001"}`), nil).Status)
	}
	nref.apply([]byte(`"` + inst[ref] + `"`))
	nfast.apply([]byte(`"` + inst[fast] + `"`))
	ids := make([]string, 40)
	for i := range ids {
		ids[i] = prefactorapi.NewPFID(partition)
	}
	create := func(k, id, extra string) string {
		return `{"_type":"agent_spans/create","idempotency_key":"` + k + `","details":{"id":"` + id + `","agent_instance_id":"INST","schema_name":"llm","status":"active"` + extra + `}}`
	}
	items := []string{
		create("key-00001", ids[0], `,"payload":{"model":"m<1>&","text":"hi\u2028there","n":1.50,"a":[0,{"b":"x"}]}`),
		create("key-00002", ids[1], `,"status":"complete","payload":{"model":"dup","model":"last"}`),
		create("key-00003", ids[2], `,"Schema_Name":"llm","PAYLOAD":{"model":"case"}`),
		create("key-00004", ids[3], `,"unknown":1`),
		`{"_type":"agent_spans/create","idempotency_key":"key-00005","extra":true,"details":{"id":"` + ids[4] + `","agent_instance_id":"INST","schema_name":"llm","status":"active"}}`,
		`{"_type":"agent_spans/create","idempotency_key":"key-00006","id":"` + ids[5] + `","agent_instance_id":"INST","schema_name":"llm","status":"active","payload":{"model":"flat"}}`,
		`{"_type":"agent_spans/create","idempotency_key":"key-00007","id":"` + ids[6] + `","agent_instance_id":"INST","schema_name":"llm","status":"active","details":{}}`,
		create("key-00008", ids[7], ",\"payload\":{\"model\":\"bad \xff\xfe utf8\"}"),
		create("key-00009", ids[8], `,"payload":{"model":"\u00e9\ud83d\ude00 \ud800 lone \\ \/ \b\f\n\r\t \u0000"}`),
		create("key-00010", ids[9], `,"status":5`),
		create("key-00011", ids[10], `,"payload":null,"result_payload":null,"parent_span_id":null`),
		`{"_type":"agent_spans/create","idempotency_key":"key-00012","details":null}`,
		`{"_type":"agent_spans/create","idempotency_key":12345678,"details":{}}`,
		`{"_type":"agent_spans/create","idempotency_key":"key-00014","details":[1,2]}`,
		`{"_type":"agent_spans/create","idempotency_key":"key-00015","details":{"id":"` + ids[14] + `","agent_instance_id":"INST","schema_name":"llm","status":"active","payload":{"model":"m"},}}`,
		create("key-00016", ids[15], `,"status":"complete","payload":{"model":"m"},"result_payload":{"token_usage":{"prompt_tokens":1e2,"completion_tokens":3},"cost":{"prompt":1e-7,"completion":0.1,"currency":"USD"},"ttft_ms":"12"}`),
		create("key-00017", ids[16], `,"status":"complete","payload":{"token_usage":{"prompt_tokens":1.5,"completion_tokens":4}},"result_payload":{"token_usage":{"prompt_tokens":12345678901234567890}}`),
		create("key-00018", ids[17], `,"status":"complete","payload":{},"result_payload":{"cost":{"total":1e400},"ttft_ms":-3,"first_token_at":"2026-03-04T05:06:08Z"}`),
		create("key-00019", ids[18], `,"status":"complete","payload":{"ttft_ms":5},"started_at":"2026-03-04T05:06:07Z","result_payload":{"first_token_at":"2026-03-04T05:06:07.250Z","text":{"k":[true,false,null]}}`),
		create("key-00020", ids[19], `,"sensitive_encoding":"yes"`),
		create("key-00021", ids[20], `,"sensitive_encoding":true,"payload":{"n":-0.0,"model":1e21}`),
		create("key-00022", ids[21], `,"payload":"not an object"`),
		create("key-00023", ids[22], `,"payload":[1,2,3],"result_payload":{"model":"from result"}`),
		`  {"_type":"agent_spans/finish","idempotency_key":"key-00024","agent_span_id":"` + ids[0] + `","status":"complete","result_payload":{"text":"done","token_usage":{"prompt_tokens":7}}}`,
		`{"idempotency_key":"key-00025","_type":"agent_spans/finish","agent_span_id":"` + ids[1] + `","status":"complete"}`,
		`{"_type":"agent_spans/finish","idempotency_key":"key-00026","agent_span_id":"` + ids[2] + `","status":"complete","timestamp":17}`,
		`{"_type":"agent_spans/finish","_type":"agent_instances/start","idempotency_key":"key-00027","agent_span_id":"` + ids[5] + `","status":"complete"}`,
		`{"_type":"agent_spans/nope","idempotency_key":"key-00028"}`,
		`{"_type":"agent_spans/create","idempotency_key":"key-00029","details":{"id":"` + ids[23] + `","agent_instance_id":"INST","schema_name":"llm","status":"active","idempotency_key":"inner"}}`,
		`{"_TYPE":"agent_spans/create","idempotency_key":"key-00030","details":{"id":"` + ids[24] + `","agent_instance_id":"INST","schema_name":"llm","status":"active"}}`,
		`{"_type":"agent_spans/create","idempotency_key":"key-00031","details":{"id":"` + ids[25] + `","agent_instance_id":"INST","schema_name":"llm","status":"active","payload":{"deep":[[[[{"a":{"b":[1,{"c":"\"quoted\""}]}}]]]]}}}`,
		`{"_type":"agent_spans/create","idempotency_key":"key-00032","details":{"id":"` + ids[26] + `","agent_instance_id":"INST","schema_name":"llm","status":"active","payload":{"model":"unterminated}}}`,
		`{"_type":"agent_instances/finish","idempotency_key":"key-00033","agent_instance_id":"INST","status":"complete","unknown":{}}`,
	}
	var bodies []string
	for _, it := range items {
		bodies = append(bodies, `{"items":[`+it+`]}`)
	}
	var many []string
	for i := range 80 {
		many = append(many, create(fmt.Sprintf("many-%05d", i), prefactorapi.NewPFID(partition), fmt.Sprintf(`,"payload":{"model":"m%d","n":%d.25}`, i, i)))
	}
	bodies = append(bodies, `{"items":[`+strings.Join(many, ",")+`]}`, `{"items":[`+strings.Join(many[:70], ",")+`,`+items[3]+`]}`,
		`{"items":[`+items[0]+`]} trailing`, `{"items":[`+items[0]+`]}{}`, `{"items":[1,"x"]}`, `{"items":{}}`, `{"items":[]}`, `{"Items":null}`,
		`{"items":[`+items[0]+`],"items":[`+items[1]+`]}`, "{\"items\":[]}\xff", `[]`, ` `, `{"items":[`+items[0]+`],"other":1}`,
		`{"items":[`+items[23]+`,`+items[24]+`]}`, // replays
		`{"items":[`+items[0]+`,`+items[23]+`]}`)
	for i, b := range bodies {
		var got [2]string
		for j, api := range []*prefactorapi.API{ref, fast} {
			n := []normalize{nref, nfast}[j]
			body := strings.ReplaceAll(b, "INST", inst[api])
			ans := api.Do(ctx, prefactorapi.EndpointBulk, "", []byte(body), nil)
			got[j] = fmt.Sprintf("%d %v %d %q %s", ans.Status, ans.Replayed, ans.ReplayedItems, ans.ItemError, n.apply(ans.Body))
		}
		assert.Equal(t, got[0], got[1], "body %d: %.300s", i, b)
	}
	// The stored instances (rollups) agree too.
	var runs [2]string
	for j, api := range []*prefactorapi.API{ref, fast} {
		ans := api.Do(ctx, prefactorapi.EndpointGetInstance, inst[api], nil, nil)
		var spans []prefactorapi.SpanRecord
		require.NoError(t, api.Store().View(ctx, func(tx prefactorapi.ReadTx) error {
			in, _, err := tx.Instance(inst[api])
			r := in.Run
			runs[j] = fmt.Sprintf("%+v %s", r, []normalize{nref, nfast}[j].apply(ans.Body))
			spans, err = tx.ListSpans(inst[api])
			return err
		}))
		runs[j] += fmt.Sprintf(" %d spans", len(spans))
	}
	assert.Equal(t, runs[0], runs[1])
	assert.Contains(t, runs[0], "spans")
}

// Marshal writes what json.Marshal writes: the idempotency hash depends
// on it.
func TestMarshalSameBytes(t *testing.T) {
	s := func(v string) *string { return &v }
	vals := []any{
		prefactorapi.SpanDetails{ID: "x", Payload: json.RawMessage(" {\"a\" : [1, 2],\n \"h\":\"<b>&\u2028\"} "), ResultPayload: json.RawMessage(`null`), Summary: s("<i>\xff")},
		prefactorapi.CreateSpanRequest{Details: &prefactorapi.SpanDetailsInput{SchemaName: s("llm\u2029"), Payload: json.RawMessage(`{"n":1e21,"m":-0.0,"s":"\u00e9"}`)}},
		prefactorapi.FinishSpanRequest{Status: s("complete"), ResultPayload: json.RawMessage(`{"z":1,"a":2}`)},
		map[string]any{"b": 1.0, "a": []any{1e21, 1e-7, 123456789.0, math.MaxFloat64, 0.1, float64(1 << 53)}, "c": "\x00\x1f\x7f"},
		[]string{"\xed\xa0\x80", "ok", `"\`},
	}
	for _, v := range vals {
		want, err := json.Marshal(v)
		require.NoError(t, err)
		got, err := fastjson.Marshal(v)
		require.NoError(t, err)
		assert.Equal(t, string(want), string(got))
	}
}

// FuzzDecodeStrict: whatever the codec accepts, encoding/json accepts
// with the same value (and the same bytes when encoded again).
func FuzzDecodeStrict(f *testing.F) {
	for _, s := range []string{
		`{"details":{"agent_instance_id":"a","schema_name":"llm","status":"active","payload":{"x":[1,2.5e3,"é"]}},"idempotency_key":"k"}`,
		`{"details":{"Status":"a","status":"b"},"IDEMPOTENCY_KEY":"k"}`,
		`{"details":null,"x":1}`, `{"details":{"payload":{}} }  `, `{"timestamp":"t","status":"complete","result_payload":[]}`,
		`{"status":"\ud800"}`, "{\"status\":\"\xff\"}", `{"sensitive_encoding":1}`, `{}{}`, `{"result_payload":01}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		check := func(newV func() any) {
			fv := newV()
			if fastjson.DecodeStrict(b, fv) != nil {
				return
			}
			rv := newV()
			d := json.NewDecoder(bytes.NewReader(b))
			d.DisallowUnknownFields()
			require.NoError(t, d.Decode(rv), "codec accepted %q", b)
			require.Empty(t, bytes.TrimLeft(b[d.InputOffset():], " \t\r\n"), "codec accepted trailing data: %q", b)
			require.True(t, reflect.DeepEqual(fv, rv), "%q: %#v != %#v", b, fv, rv)
			fb, err1 := fastjson.Marshal(fv)
			rb, err2 := json.Marshal(rv)
			require.Equal(t, err2 == nil, err1 == nil)
			require.Equal(t, string(rb), string(fb))
		}
		check(func() any { return new(prefactorapi.CreateSpanRequest) })
		check(func() any { return new(prefactorapi.FinishSpanRequest) })
		var fm, rm map[string]any
		if fastjson.Unmarshal(b, &fm) == nil {
			require.NoError(t, json.Unmarshal(b, &rm))
			require.Equal(t, rm, fm)
		}
	})
}

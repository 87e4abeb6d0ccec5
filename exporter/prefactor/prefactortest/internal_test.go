package prefactortest

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/stretchr/testify/require"
)

func TestEncodePFID(t *testing.T) {
	var b [20]byte
	require.Equal(t, strings.Repeat("0", 32), encodePFID(&b))
	for i := 10; i < 20; i++ {
		b[i] = 0xff
	}
	require.Equal(t, "0000000000000000zzzzzzzzzzzzzzzz", encodePFID(&b), "a fixture of the PFID library")
	// The API documentation's example IDs: 1,234,567,890,000 ms and
	// partition 123,456,789.
	ms := uint64(1_234_567_890_000)
	b = [20]byte{byte(ms >> 40), byte(ms >> 32), byte(ms >> 24), byte(ms >> 16), byte(ms >> 8), byte(ms),
		0x07, 0x5b, 0xcd, 0x15}
	require.Equal(t, "013xrzp12g3nqk8n0000000000000000", encodePFID(&b))

	s := &Server{cfg: config{partition: 42}}
	for range 100 {
		id := s.newPFID()
		require.True(t, validPFID(id), id)
		require.Equal(t, "00001a", id[10:16])
	}
	s.cfg.partition = 1<<30 - 1
	require.Equal(t, "zzzzzz", s.newPFID()[10:16])
}

func TestValidPFID(t *testing.T) {
	for id, ok := range map[string]bool{
		"013xrzp12g3nqk8ngskn1wtxgka5b0nf":  true,
		"7zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz":  true,
		"8zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz":  false, // the first character carries 3 bits
		"013XRZP12G3NQK8NGSKN1WTXGKA5B0NF":  false, // lowercase only
		"013xrzp12g3nqk8ngskn1wtxgka5b0nu":  false, // no u
		"013xrzp12g3nqk8ngskn1wtxgka5b0ni":  false,
		"013xrzp12g3nqk8ngskn1wtxgka5b0n":   false,
		"013xrzp12g3nqk8ngskn1wtxgka5b0nf0": false,
		"":                                  false,
	} {
		require.Equal(t, ok, validPFID(id), id)
	}
}

func TestValidateFindsProblems(t *testing.T) {
	s := &Server{instances: map[string]*instance{}, spans: map[string]*span{}}
	id := func(n int) string { return fmt.Sprintf("013xrzp12g3nqk8n%016d", n) }
	add := func(sp Span) {
		s.spans[sp.ID] = &span{Span: sp}
		s.spanOrder = append(s.spanOrder, sp.ID)
	}
	s.instances[id(1)] = &instance{Instance: Instance{ID: id(1)}}
	s.instances[id(2)] = &instance{Instance: Instance{ID: id(2)}}
	add(Span{ID: id(10), InstanceID: id(1), Creates: 1, Finishes: 1})
	require.NoError(t, s.Validate())
	add(Span{ID: id(11), InstanceID: id(1), ParentID: id(12), Creates: 1}) // parent created after it
	add(Span{ID: id(12), InstanceID: id(1), Creates: 1})
	add(Span{ID: id(13), InstanceID: id(2), ParentID: id(10), Creates: 1}) // parent elsewhere
	add(Span{ID: id(14), InstanceID: id(1), ParentID: id(99), Creates: 1}) // unknown parent
	add(Span{ID: id(15), InstanceID: id(3), Creates: 1})                   // unknown instance
	add(Span{ID: id(16), InstanceID: id(1), Creates: 2, Finishes: 2})      // twice
	err := s.Validate()
	require.Error(t, err)
	msg := err.Error()
	for _, want := range []string{"created before its parent", "in another instance", "unknown parent", "unknown instance",
		"created 2 times", "finished 2 times"} {
		require.Contains(t, msg, want)
	}
	require.Len(t, err.(interface{ Unwrap() []error }).Unwrap(), 6)
}

// The log keeps the bodies of the last 10,000 requests only.
func TestRequestBodiesCapped(t *testing.T) {
	s := NewServer()
	defer s.Close()
	for i := range maxBodies + 5 {
		req := httptest.NewRequest(http.MethodPost, "/api/v1/bulk", strings.NewReader(fmt.Sprintf(`{"n":%d}`, i)))
		s.serve(httptest.NewRecorder(), req)
	}
	reqs := s.Requests()
	require.Len(t, reqs, maxBodies+5)
	for i := range 5 {
		require.Nil(t, reqs[i].Body, i)
	}
	require.Equal(t, `{"n":5}`, string(reqs[5].Body))
	require.Equal(t, fmt.Sprintf(`{"n":%d}`, maxBodies+4), string(reqs[maxBodies+4].Body))
	require.Equal(t, maxBodies+5, s.Counts().Rejected["not_authenticated"])
}

func TestAppendTS(t *testing.T) {
	// The formatting is wiretime's (tested there); this is its layout.
	require.Equal(t, "null", string(appendTS(nil, time.Time{})))
	tm := time.Date(2026, 12, 31, 1, 2, 3, 4000, time.FixedZone("x", 3600))
	require.Equal(t, `"2026-12-31T00:02:03.000004Z"`, string(appendTS(nil, tm)))
}

// The strings decoded from a body are substrings of it; what the server
// stores must be copies (or canonical values), or each stored span would
// keep a whole request body alive.
func TestStoredStringsDoNotPinTheBody(t *testing.T) {
	s := NewServer()
	defer s.Close()
	inst, parent, child := s.AgentID()[:26]+"000001", s.AgentID()[:26]+"000002", s.AgentID()[:26]+"000003"
	body := fmt.Appendf(nil, `{"items":[`+
		`{"_type":"agent_instances/register","idempotency_key":"register-1","id":%q,"agent_id":%q,"environment_id":%q,"purpose":"eval"},`+
		`{"_type":"agent_instances/start","idempotency_key":"start-01","agent_instance_id":%q},`+
		`{"_type":"agent_spans/create","idempotency_key":"create-1","details":{"id":%q,"agent_instance_id":%q,"schema_name":"agent","status":"active","payload":{}}},`+
		`{"_type":"agent_spans/create","idempotency_key":"create-2","details":{"id":%q,"agent_instance_id":%q,"schema_name":"llm","status":"active","payload":{},"parent_span_id":%q}},`+
		`{"_type":"agent_spans/finish","idempotency_key":"finish-2","agent_span_id":%q,"status":"failed","result_payload":{}},`+
		`{"_type":"agent_instances/finish","idempotency_key":"finish-i","agent_instance_id":%q,"status":"complete"}]}`,
		inst, s.AgentID(), s.EnvironmentID(), inst, parent, inst, child, inst, parent, child, inst)
	sc := newScan(body)
	items, ok := sc.bulk()
	require.True(t, ok)
	ans, _ := s.runBulk(items, nil)
	require.Equal(t, http.StatusOK, ans.status)
	require.NotContains(t, string(ans.body), `"status":"error"`, string(ans.body))

	lo := uintptr(unsafe.Pointer(unsafe.StringData(sc.S)))
	hi := lo + uintptr(len(sc.S))
	pinned := func(what, v string) {
		t.Helper()
		if v == "" {
			return
		}
		p := uintptr(unsafe.Pointer(unsafe.StringData(v)))
		require.False(t, p >= lo && p < hi, "%s %q points into the request body", what, v)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	require.Len(t, s.spans, 2)
	for _, in := range s.instances {
		for _, v := range []string{in.ID, in.AgentID, in.EnvironmentID, in.Purpose, in.Status, in.TerminationReason} {
			pinned("instance field", v)
		}
	}
	for _, sp := range s.spans {
		for _, v := range []string{sp.ID, sp.InstanceID, sp.ParentID, sp.SchemaName, sp.Status, sp.title, sp.agentID} {
			pinned("span field", v)
		}
	}
	for k := range s.idem {
		pinned("idempotency key", k)
	}
	for k, v := range s.names {
		pinned("name", k)
		pinned("name", v)
	}
}

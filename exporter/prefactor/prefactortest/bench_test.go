package prefactortest_test

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/agenttrace/agenttrace/exporter/prefactor/prefactortest"
)

// BenchmarkBulk measures the server: spans per second created and finished
// through bulk requests of 500 items over loopback (the client's work is
// small: the bodies are built before the clock runs).
func BenchmarkBulk(b *testing.B) {
	srv := prefactortest.NewServer()
	defer srv.Close()
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr}
	post := func(path string, body []byte) {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+path, bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+srv.Token())
		resp, err := hc.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			b.Fatal(resp.Status)
		}
	}
	inst := srv.AgentID()[:26] + "000001"
	post("/api/v1/agent_instance/register", fmt.Appendf(nil, `{"id":%q,"agent_id":%q,"environment_id":%q,"idempotency_key":"register"}`,
		inst, srv.AgentID(), srv.EnvironmentID()))
	post("/api/v1/agent_instance/"+inst+"/start", []byte(`{"idempotency_key":"start"}`))

	const batch = 250 // spans per request: a create and a finish each
	var bodies [][]byte
	for n := 0; n < b.N; n += batch {
		var buf bytes.Buffer
		buf.WriteString(`{"items":[`)
		for i := n; i < n+batch && i < b.N; i++ {
			id := srv.AgentID()[:26] + toCrockford(i+16)
			if i > n {
				buf.WriteByte(',')
			}
			fmt.Fprintf(&buf, `{"_type":"agent_spans/create","idempotency_key":"sc-%08d","details":{"id":%q,"agent_instance_id":%q,`+
				`"schema_name":"llm","status":"active","payload":{"model":"m","messages":[{"role":"user","content":"hello there"}]},`+
				`"parent_span_id":null,"started_at":"2026-01-02T03:04:05.000Z"}},`, i, id, inst)
			fmt.Fprintf(&buf, `{"_type":"agent_spans/finish","idempotency_key":"sf-%08d","agent_span_id":%q,`+
				`"timestamp":"2026-01-02T03:04:06.000Z","status":"complete","result_payload":{"text":"ok","token_usage":{"prompt_tokens":10}}}`, i, id)
		}
		buf.WriteString("]}")
		bodies = append(bodies, buf.Bytes())
	}
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for _, body := range bodies {
		post("/api/v1/bulk", body)
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "spans/s")
	b.StopTimer()
	if got := len(srv.Spans(inst)); got != b.N {
		b.Fatalf("%d spans stored, want %d", got, b.N)
	}
}

func toCrockford(n int) string {
	const crockford = "0123456789abcdefghjkmnpqrstvwxyz"
	var out [6]byte
	for i := 5; i >= 0; i-- {
		out[i] = crockford[n&31]
		n >>= 5
	}
	return string(out[:])
}

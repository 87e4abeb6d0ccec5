package sqlitestore_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/agenttrace/agenttrace/cmd/agenttrace/internal/fastjson"
	"github.com/agenttrace/agenttrace/internal/prefactorapi"
)

// BenchmarkAPIBulk measures the protocol over SQLite without HTTP: spans
// created and finished through bulk requests of 250 spans (500 items).
func BenchmarkAPIBulk(b *testing.B) {
	for _, c := range []struct {
		name  string
		codec prefactorapi.Codec
	}{{"codec=encoding-json", prefactorapi.Codec{}}, {"codec=fastjson", fastjson.Codec()}} {
		b.Run(c.name, func(b *testing.B) { benchAPIBulk(b, c.codec) })
	}
}

func benchAPIBulk(b *testing.B, codec prefactorapi.Codec) {
	ctx := context.Background()
	s := open(&testing.T{}, filepath.Join(b.TempDir(), "b.db"))
	defer s.Close()
	acct := prefactorapi.NewPFID(123456789)
	api, _ := prefactorapi.New(s, prefactorapi.Config{AccountID: acct, EnvironmentID: acct, Codec: codec})
	ans := api.Do(ctx, prefactorapi.EndpointRegister, "", []byte(`{"idempotency_key":"register"}`), nil)
	var reg struct{ Details struct{ ID string } }
	_ = json.Unmarshal(ans.Body, &reg)
	inst := reg.Details.ID
	api.Do(ctx, prefactorapi.EndpointStart, inst, []byte(`{"idempotency_key":"start"}`), nil)
	const batch = 250
	var bodies [][]byte
	for n := 0; n < b.N; n += batch {
		var buf bytes.Buffer
		buf.WriteString(`{"items":[`)
		for i := n; i < n+batch && i < b.N; i++ {
			id := acct[:26] + fmt.Sprintf("%06d", i)
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
		if a := api.Do(ctx, prefactorapi.EndpointBulk, "", body, nil); a.Status != 200 || bytes.Contains(a.Body, []byte(`"status":"error"`)) {
			b.Fatal(string(a.Body[:min(len(a.Body), 500)]))
		}
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "spans/s")
}

package pgstore_test

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/agenttrace/agenttrace/cmd/agenttrace/internal/sqlitestore"
	"github.com/agenttrace/agenttrace/internal/prefactorapi"
)

// BenchmarkBulkIngest sends bulk requests of 100 span creates (complete,
// with usage) into one instance through the protocol implementation, on
// PostgreSQL and, for comparison in the same run, on SQLite; spans/s is
// the rate of committed spans.
//
//	go test ./cmd/agenttrace/internal/pgstore/ -run '^$' -bench BulkIngest -benchtime 3s
func BenchmarkBulkIngest(b *testing.B) {
	pg := open(b, newSchema(b))
	b.Cleanup(func() { _ = pg.Close() })
	lite, err := sqlitestore.Open(context.Background(), filepath.Join(b.TempDir(), "bench.db"), sqlitestore.Options{})
	require.NoError(b, err)
	b.Cleanup(func() { _ = lite.Close() })
	for _, c := range []struct {
		name  string
		store prefactorapi.Store
	}{{"postgres", pg}, {"sqlite", lite}} {
		account := prefactorapi.NewPFID(99)
		api, err := prefactorapi.New(c.store, prefactorapi.Config{AccountID: account, EnvironmentID: account})
		require.NoError(b, err)
		ctx := context.Background()
		reg := api.Do(ctx, prefactorapi.EndpointRegister, "", []byte(`{"agent_version":{"external_identifier":"v1","name":"bot"},"idempotency_key":"reg-00001"}`), nil)
		require.Equal(b, 200, reg.Status, string(reg.Body))
		var r struct {
			Details struct{ ID string } `json:"details"`
		}
		require.NoError(b, json.Unmarshal(reg.Body, &r))
		require.Equal(b, 200, api.Do(ctx, prefactorapi.EndpointStart, r.Details.ID, []byte(`{"idempotency_key":"start-0001"}`), nil).Status)
		round := 0
		b.Run(c.name, func(b *testing.B) {
			round++
			const per = 100
			bodies := make([][]byte, b.N)
			for i := range bodies {
				items := make([]string, per)
				for j := range items {
					items[j] = fmt.Sprintf(`{"_type":"agent_spans/create","idempotency_key":"bench-%d-%d-%d","details":{"agent_instance_id":%q,`+
						`"schema_name":"llm","status":"complete","payload":{"model":"m","n":%d},`+
						`"result_payload":{"text":"hello","token_usage":{"prompt_tokens":12,"completion_tokens":4}}}}`, round, i, j, r.Details.ID, j)
				}
				bodies[i] = []byte(`{"items":[` + strings.Join(items, ",") + `]}`)
			}
			b.ResetTimer()
			start := time.Now()
			for i := range b.N {
				ans := api.Do(ctx, prefactorapi.EndpointBulk, "", bodies[i], nil)
				if ans.Status != 200 || ans.ItemError != "" || ans.Replayed {
					b.Fatalf("bulk: %d %s replayed=%v: %.300s", ans.Status, ans.ItemError, ans.Replayed, ans.Body)
				}
			}
			b.ReportMetric(float64(b.N*per)/time.Since(start).Seconds(), "spans/s")
		})
	}
}

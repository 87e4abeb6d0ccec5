package otlpreceiver_test

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/agenttrace/agenttrace"
	"github.com/agenttrace/agenttrace/agenttracetest"
	"github.com/agenttrace/agenttrace/bridge/otel/otlpreceiver"
	"github.com/stretchr/testify/require"
	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// FuzzReceiver sends arbitrary bodies, as protobuf and as JSON: the
// receiver never panics, answers 200 or 400, and every span it counts as
// taken or rejected adds up to what the decoded request holds.
func FuzzReceiver(f *testing.F) {
	msg := &collectortrace.ExportTraceServiceRequest{}
	require.NoError(f, protojson.UnmarshalOptions{DiscardUnknown: true}.Unmarshal([]byte(jsonRun), msg))
	pb, err := proto.Marshal(msg)
	require.NoError(f, err)
	f.Add(pb, false)
	f.Add([]byte(jsonRun), true)
	f.Add([]byte(`{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"00","spanId":"zz"}]}]}]}`), true)
	f.Add([]byte{}, false)
	rec := agenttracetest.NewRecorder()
	tr, err := agenttrace.New(agenttrace.WithExporter(rec), agenttrace.WithFlushInterval(time.Hour))
	require.NoError(f, err)
	rcv := otlpreceiver.New(tr)
	f.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		require.NoError(f, rcv.Shutdown(ctx))
		require.NoError(f, tr.Shutdown(ctx))
	})
	f.Fuzz(func(t *testing.T, body []byte, asJSON bool) {
		ct := "application/x-protobuf"
		if asJSON {
			ct = "application/json"
		}
		req := httptest.NewRequest(http.MethodPost, "/v1/traces", bytes.NewReader(body))
		req.Header.Set("Content-Type", ct)
		before := rcv.Stats()
		w := httptest.NewRecorder()
		rcv.ServeHTTP(w, req)
		after := rcv.Stats()
		switch w.Code {
		case http.StatusOK:
			var m collectortrace.ExportTraceServiceRequest
			if asJSON {
				require.NoError(t, protojson.UnmarshalOptions{DiscardUnknown: true}.Unmarshal(body, &m))
			} else {
				require.NoError(t, proto.Unmarshal(body, &m))
			}
			n := 0
			for _, rs := range m.GetResourceSpans() {
				for _, ss := range rs.GetScopeSpans() {
					n += len(ss.GetSpans())
				}
			}
			require.Equal(t, uint64(n), (after.Spans-before.Spans)+(after.Rejected-before.Rejected))
		case http.StatusBadRequest:
			require.Equal(t, before.Spans, after.Spans)
			require.Equal(t, before.Refused+1, after.Refused)
		default:
			t.Fatalf("status %d", w.Code)
		}
	})
}

package e2e_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/goleak"

	"github.com/agenttrace/agenttrace"
	otelbridge "github.com/agenttrace/agenttrace/bridge/otel"
	"github.com/agenttrace/agenttrace/bridge/otel/otlpreceiver"
	"github.com/agenttrace/agenttrace/cmd/agenttrace/internal/pgstore"
	"github.com/agenttrace/agenttrace/cmd/agenttrace/internal/pgtest"
	"github.com/agenttrace/agenttrace/cmd/agenttrace/internal/server"
	"github.com/agenttrace/agenttrace/cmd/agenttrace/internal/sqlitestore"
	"github.com/agenttrace/agenttrace/exporter/prefactor"
	"github.com/agenttrace/agenttrace/internal/prefactorapi"
	tsinterop "github.com/agenttrace/agenttrace/interop/ts"
)

// TestMain stops the PostgreSQL test cluster after the tests and fails
// them if any goroutine outlives them.
func TestMain(m *testing.M) {
	code := m.Run()
	pgtest.Stop()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

const token = "e2e-token-0123456789"

// stores are the store constructors the tests run on.
var stores = []struct {
	name string
	open func(t *testing.T) prefactorapi.Store
}{
	{"sqlite", func(t *testing.T) prefactorapi.Store {
		s, err := sqlitestore.Open(context.Background(), filepath.Join(t.TempDir(), "e2e.db"), sqlitestore.Options{})
		require.NoError(t, err)
		return s
	}},
	{"postgres", func(t *testing.T) prefactorapi.Store {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		s, err := pgstore.Open(ctx, pgtest.NewSchema(t))
		require.NoError(t, err)
		return s
	}},
}

// startServer serves the API over st on loopback.
func startServer(t *testing.T, st prefactorapi.Store) *httptest.Server {
	t.Helper()
	srv, err := server.New(server.Config{Store: st, Token: token})
	require.NoError(t, err)
	hs := httptest.NewServer(srv)
	t.Cleanup(func() {
		hs.Close()
		_ = st.Close()
	})
	return hs
}

// stored returns the instances and every instance's spans.
func stored(t *testing.T, st prefactorapi.Store) ([]prefactorapi.InstanceRecord, map[string][]prefactorapi.SpanRecord) {
	t.Helper()
	var insts []prefactorapi.InstanceRecord
	spans := map[string][]prefactorapi.SpanRecord{}
	require.NoError(t, st.View(context.Background(), func(tx prefactorapi.ReadTx) error {
		var err error
		if insts, _, err = tx.ListInstances(prefactorapi.InstanceQuery{}); err != nil {
			return err
		}
		for _, in := range insts {
			if spans[in.ID], err = tx.ListSpans(in.ID); err != nil {
				return err
			}
		}
		return nil
	}))
	return insts, spans
}

func TestOfficialSDKIntoServer(t *testing.T) {
	for _, sc := range stores {
		t.Run(sc.name, func(t *testing.T) {
			t.Run("as published", func(t *testing.T) {
				st := sc.open(t)
				hs := startServer(t, st)
				// @prefactor/core 0.2.9, the only version on npm, sends no
				// idempotency keys; the server takes them as optional, as
				// the reference does.
				sum, err := tsinterop.Run(t, hs.URL, token, "")
				require.NoError(t, err)
				checkSDKRun(t, st, sum)
			})
			t.Run("with idempotency keys added", func(t *testing.T) {
				st := sc.open(t)
				hs := startServer(t, st)
				sum, err := tsinterop.Run(t, tsinterop.KeyShim(t, hs.URL), token, "")
				require.NoError(t, err)
				checkSDKRun(t, st, sum)
			})
		})
	}
}

// checkSDKRun checks what the server stored of run.mjs's run.
func checkSDKRun(t *testing.T, st prefactorapi.Store, sum tsinterop.Summary) {
	t.Helper()
	insts, spans := stored(t, st)
	require.Len(t, insts, 1)
	in := insts[0]
	assert.Equal(t, "complete", in.Status)
	assert.False(t, in.StartedAt.IsZero())
	assert.False(t, in.FinishedAt.IsZero())
	assert.Equal(t, prefactorapi.StatusCounts{Complete: 3, Failed: 1}, in.SpanCounts)
	// The llm span's usage, which the SDK puts in the payload's
	// token_usage, rolls up into the run.
	assert.Equal(t, [3]int64{812, 64, 876}, [3]int64{in.Run.PromptTokens, in.Run.CompletionTokens, in.Run.TotalTokens})
	require.NoError(t, st.View(context.Background(), func(tx prefactorapi.ReadTx) error {
		v, ok, err := tx.AgentVersion(in.VersionID)
		require.True(t, ok)
		assert.Equal(t, tsinterop.AgentVersion, v.ExternalID)
		assert.Equal(t, tsinterop.AgentName, v.Name)
		sv, ok, err2 := tx.SchemaVersion(in.SchemaVersionID)
		require.True(t, ok)
		assert.Equal(t, tsinterop.SchemaVersion, sv.ExternalID)
		if err == nil {
			err = err2
		}
		return err
	}))
	by := map[string]prefactorapi.SpanRecord{}
	for _, sp := range spans[in.ID] {
		var p struct {
			SpanID string `json:"span_id"`
			Name   string `json:"name"`
		}
		require.NoError(t, json.Unmarshal(sp.Payload, &p))
		by[p.Name] = sp
		assert.Equal(t, sum.Spans[p.Name], p.SpanID, "payload.span_id is the SDK's ID")
		assert.Equal(t, 1, sp.Creates)
	}
	require.Len(t, by, 4)
	agent, llm, tool, step := by[tsinterop.SpanAgent], by[tsinterop.SpanLLM], by[tsinterop.SpanTool], by[tsinterop.SpanStep]
	assert.Equal(t, "agent", agent.SchemaName)
	assert.Empty(t, agent.ParentID)
	assert.Equal(t, "complete", agent.Status)
	assert.JSONEq(t, `{"answer":"Your order has shipped."}`, string(agent.ResultPayload))
	assert.Equal(t, agent.ID, llm.ParentID)
	assert.Equal(t, "complete", llm.Status)
	assert.Equal(t, agent.ID, tool.ParentID)
	assert.Equal(t, "failed", tool.Status)
	assert.Contains(t, string(tool.ResultPayload), `"refund service down"`)
	assert.Equal(t, tool.ID, step.ParentID, "nested two deep")
	assert.Equal(t, "chain", step.SchemaName)
}

// TestOTLPIntoServer: GenAI spans from OpenTelemetry instrumentation, sent
// over OTLP/HTTP to the receiver, go through a tracer and the Prefactor
// exporter into the server, and are stored as one run with its usage.
func TestOTLPIntoServer(t *testing.T) {
	for _, sc := range stores {
		t.Run(sc.name, func(t *testing.T) {
			st := sc.open(t)
			hs := startServer(t, st)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			exp, err := prefactor.New(prefactor.WithURL(hs.URL), prefactor.WithToken(token),
				prefactor.WithAgentVersion("otel-agent", "2.0.0"))
			require.NoError(t, err)
			tracer, err := agenttrace.New(agenttrace.WithExporter(exp), agenttrace.WithFlushInterval(10*time.Millisecond))
			require.NoError(t, err)
			rcv := otlpreceiver.New(tracer)
			mux := http.NewServeMux()
			mux.Handle("POST /v1/traces", rcv)
			otlpSrv := httptest.NewServer(mux)
			defer otlpSrv.Close()

			otlp, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpointURL(otlpSrv.URL+"/v1/traces"),
				otlptracehttp.WithCompression(otlptracehttp.GzipCompression))
			require.NoError(t, err)
			tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(otlp))
			otelRun(ctx, tp.Tracer("app"))
			require.NoError(t, tp.Shutdown(ctx))
			require.NoError(t, rcv.Shutdown(ctx))
			require.NoError(t, tracer.Shutdown(ctx))
			assert.Zero(t, exp.Stats().Rejected)
			assert.Zero(t, exp.Stats().GaveUp)

			insts, spans := stored(t, st)
			require.Len(t, insts, 1)
			in := insts[0]
			assert.Equal(t, "complete", in.Status)
			assert.Equal(t, prefactorapi.StatusCounts{Complete: 2, Failed: 1}, in.SpanCounts)
			assert.Equal(t, [2]int64{130, 42}, [2]int64{in.Run.PromptTokens, in.Run.CompletionTokens})
			types := map[string]string{}
			for _, sp := range spans[in.ID] {
				types[sp.SchemaName] += sp.Status + " "
			}
			assert.Equal(t, map[string]string{"agent": "complete ", "llm": "complete ", "tool": "failed "}, types)
		})
	}
}

// otelRun records, with plain OTel instrumentation in the GenAI
// conventions, invoke_agent > chat (usage 130 in, 42 out) and a failing
// execute_tool.
func otelRun(ctx context.Context, tr trace.Tracer) {
	ctx, agent := tr.Start(ctx, "invoke_agent helper", trace.WithAttributes(
		otelbridge.KeyOperationName.String("invoke_agent"), otelbridge.KeyAgentName.String("helper")))
	_, chat := tr.Start(ctx, "chat gpt-4o", trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(
		otelbridge.KeyOperationName.String("chat"), otelbridge.KeyProviderName.String("openai"),
		otelbridge.KeyRequestModel.String("gpt-4o"), otelbridge.KeyUsageInputTokens.Int64(130),
		otelbridge.KeyUsageOutputTokens.Int64(42)))
	chat.End()
	_, tool := tr.Start(ctx, "execute_tool refund", trace.WithAttributes(
		otelbridge.KeyOperationName.String("execute_tool"), otelbridge.KeyToolName.String("refund"),
		attribute.String("error.type", "Timeout")))
	tool.SetStatus(codes.Error, "refund service down")
	tool.End()
	agent.End()
}

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// syncBuffer is a bytes.Buffer safe for the server goroutine to write while
// the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestServeTakesOTLP runs `agenttrace serve` itself on a fresh database and
// sends it GenAI spans with the OpenTelemetry SDK's OTLP/HTTP exporter: they
// are stored as a run (POST /v1/traces, behind the token), and a request
// without the token is refused. Stopping the server delivers what the OTLP
// path still holds.
func TestServeTakesOTLP(t *testing.T) {
	db := filepath.Join(t.TempDir(), "runs.db")
	ctx, cancel := context.WithCancel(context.Background())
	var stdout, stderr syncBuffer
	done := make(chan error, 1)
	go func() { done <- serve(ctx, []string{"--addr", "127.0.0.1:0", "--db", db}, &stdout, &stderr) }()
	defer func() {
		cancel()
		require.NoError(t, <-done, stderr.String())
	}()

	addrRe := regexp.MustCompile(`serving http://([0-9.:]+) `)
	var addr string
	require.Eventually(t, func() bool {
		m := addrRe.FindStringSubmatch(stdout.String())
		if m != nil {
			addr = m[1]
		}
		return m != nil
	}, 20*time.Second, 10*time.Millisecond, "serve printed no address: %s", stderr.String())
	tokRe := regexp.MustCompile(`\(mode 0600\):\n  (\S+)\n`)
	m := tokRe.FindStringSubmatch(stdout.String())
	require.NotNil(t, m, stdout.String())
	token := m[1]

	// No token: 401, nothing taken.
	resp, err := http.Post("http://"+addr+"/v1/traces", "application/json", strings.NewReader(`{}`))
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode)

	exp, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpointURL("http://"+addr+"/v1/traces"),
		otlptracehttp.WithHeaders(map[string]string{"Authorization": "Bearer " + token}))
	require.NoError(t, err)
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp))
	tr := tp.Tracer("app")
	actx, agent := tr.Start(ctx, "invoke_agent helper", trace.WithAttributes(
		attribute.String("gen_ai.operation.name", "invoke_agent"), attribute.String("gen_ai.agent.name", "helper")))
	_, chat := tr.Start(actx, "chat gpt-4o", trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(
		attribute.String("gen_ai.operation.name", "chat"), attribute.String("gen_ai.provider.name", "openai"),
		attribute.String("gen_ai.request.model", "gpt-4o"), attribute.Int64("gen_ai.usage.input_tokens", 130),
		attribute.Int64("gen_ai.usage.output_tokens", 42)))
	chat.End()
	_, tool := tr.Start(actx, "execute_tool refund", trace.WithAttributes(
		attribute.String("gen_ai.operation.name", "execute_tool"), attribute.String("gen_ai.tool.name", "refund")))
	tool.SetStatus(codes.Error, "refund service down")
	tool.End()
	agent.End()
	require.NoError(t, tp.Shutdown(ctx))

	// The run lands through the server's own ingest: read it back.
	type inst struct {
		ID         string           `json:"id"`
		Status     string           `json:"status"`
		SpanCounts map[string]int64 `json:"span_counts"`
	}
	var got inst
	require.Eventually(t, func() bool {
		req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/api/v1/agent_instance", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		var body struct {
			Summaries []inst `json:"summaries"`
		}
		if json.NewDecoder(resp.Body).Decode(&body) != nil || len(body.Summaries) != 1 {
			return false
		}
		got = body.Summaries[0]
		return got.Status == "complete" && got.SpanCounts["complete"]+got.SpanCounts["failed"] == 3
	}, 30*time.Second, 50*time.Millisecond, "the OTLP run was not stored: %+v\n%s", got, stderr.String())
	require.EqualValues(t, 2, got.SpanCounts["complete"])
	require.EqualValues(t, 1, got.SpanCounts["failed"])
	require.NotContains(t, stderr.String(), token, "the token is never logged")
}

// A PostgreSQL URL selects the PostgreSQL store; its password never reaches
// the line serve prints, and size retention is refused for it.
func TestPostgresDB(t *testing.T) {
	f := storeFlags{db: "postgres://agent:s3cret@db.internal:5432/runs?sslmode=disable&password=s3cret"}
	require.True(t, isPostgres(f.db))
	require.False(t, isPostgres("/var/lib/agenttrace/runs.db"))
	require.NotContains(t, f.describe(), "s3cret")
	require.Contains(t, f.describe(), "db.internal:5432/runs")
	require.Equal(t, defaultDB(), f.tokenFile(), "the token is kept under the state directory, not beside a URL")
	var stdout, stderr bytes.Buffer
	err := serve(context.Background(), []string{"--db", f.db, "--retain-mb", "10"}, &stdout, &stderr)
	require.ErrorContains(t, err, "--retain-mb is for SQLite")
	require.NotContains(t, err.Error(), "s3cret")
}

// Listening beyond loopback needs an explicit token: serve refuses to
// generate one there, before it opens the database or listens.
func TestServeNonLoopbackNeedsToken(t *testing.T) {
	t.Setenv("AGENTTRACE_TOKEN", "")
	db := filepath.Join(t.TempDir(), "runs.db")
	var stdout, stderr bytes.Buffer
	err := serve(context.Background(), []string{"--addr", "0.0.0.0:0", "--db", db}, &stdout, &stderr)
	require.ErrorContains(t, err, "needs a token")
	require.NoFileExists(t, db, "nothing opened")
	require.Empty(t, stdout.String(), "no token generated or printed")
}

package otelbridge_test

import (
	"context"
	"testing"
	"time"

	"github.com/agenttrace/agenttrace"
	"github.com/agenttrace/agenttrace/agenttracetest"
	otelbridge "github.com/agenttrace/agenttrace/bridge/otel"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.uber.org/goleak"
)

// TestMain fails the package's tests if any goroutine outlives them.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fixture is an agenttrace tracer exporting through the bridge into an SDK
// provider whose spans a SpanRecorder keeps; an agenttracetest.Recorder on
// the same tracer keeps the agenttrace side for comparison.
type fixture struct {
	tracer *agenttrace.Tracer
	exp    *otelbridge.Exporter
	tp     *sdktrace.TracerProvider
	otel   *tracetest.SpanRecorder
	rec    *agenttracetest.Recorder
}

func newFixture(t *testing.T, opts []otelbridge.Option, tpOpts ...sdktrace.TracerProviderOption) *fixture {
	t.Helper()
	return newFixtureWith(t, opts, nil, tpOpts...)
}

// newFixtureWith is newFixture with extra tracer options.
func newFixtureWith(t *testing.T, opts []otelbridge.Option, trOpts []agenttrace.Option, tpOpts ...sdktrace.TracerProviderOption) *fixture {
	t.Helper()
	f := &fixture{otel: tracetest.NewSpanRecorder(), rec: agenttracetest.NewRecorder()}
	if tpOpts == nil {
		tpOpts = []sdktrace.TracerProviderOption{sdktrace.WithIDGenerator(otelbridge.IDGenerator())}
	}
	f.tp = sdktrace.NewTracerProvider(append(tpOpts, sdktrace.WithSpanProcessor(f.otel))...)
	f.exp = otelbridge.NewExporter(f.tp, opts...)
	tr, err := agenttrace.New(append([]agenttrace.Option{
		agenttrace.WithExporter(f.exp, f.rec),
		agenttrace.WithAgent("support-bot", "1.4.0"),
		agenttrace.WithFlushInterval(5 * time.Millisecond),
	}, trOpts...)...)
	require.NoError(t, err)
	f.tracer = tr
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		require.NoError(t, tr.Shutdown(ctx))
		require.NoError(t, f.tp.Shutdown(ctx))
	})
	return f
}

// flush hands everything recorded so far to the exporters.
func (f *fixture) flush(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	require.NoError(t, f.tracer.Flush(ctx))
}

// shutdown shuts the tracer down (ending the default instance and calling
// the exporter's Shutdown).
func (f *fixture) shutdown(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	require.NoError(t, f.tracer.Shutdown(ctx))
}

// byName returns the ended OTel spans by name; it fails on duplicates.
func byName(t *testing.T, spans []sdktrace.ReadOnlySpan) map[string]sdktrace.ReadOnlySpan {
	t.Helper()
	m := map[string]sdktrace.ReadOnlySpan{}
	for _, s := range spans {
		require.NotContains(t, m, s.Name(), "duplicate span name")
		m[s.Name()] = s
	}
	return m
}

// attrMap returns a span's attributes by key.
func attrMap(kvs []attribute.KeyValue) map[attribute.Key]attribute.Value {
	m := make(map[attribute.Key]attribute.Value, len(kvs))
	for _, kv := range kvs {
		m[kv.Key] = kv.Value
	}
	return m
}

// newRecordingProvider returns a SpanRecorder and a provider feeding it,
// shut down when the test ends.
func newRecordingProvider(t *testing.T, opts ...sdktrace.TracerProviderOption) (*tracetest.SpanRecorder, *sdktrace.TracerProvider) {
	t.Helper()
	sr := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(append(opts, sdktrace.WithSpanProcessor(sr))...)
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	return sr, tp
}

// newID returns an ID with time t and a random part made from n.
func newID(t time.Time, n byte) agenttrace.ID {
	var id agenttrace.ID
	ms := uint64(t.UnixMilli())
	for i := range 6 {
		id[i] = byte(ms >> (40 - 8*i))
	}
	for i := 6; i < 16; i++ {
		id[i] = n + byte(i)
	}
	return id
}

package otelbridge_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/agenttrace/agenttrace"
	otelbridge "github.com/agenttrace/agenttrace/bridge/otel"
)

// The tracer's Shutdown flushes the provider's batcher by default, so what
// was recorded reaches the OTel exporter; WithoutFlushOnShutdown leaves
// the batch to the provider's owner, and the provider is never shut down by
// the bridge either way.
func TestFlushOnShutdown(t *testing.T) {
	for name, tc := range map[string]struct {
		opts    []otelbridge.Option
		flushed bool
	}{
		"default":                {flushed: true},
		"WithoutFlushOnShutdown": {opts: []otelbridge.Option{otelbridge.WithoutFlushOnShutdown()}},
	} {
		t.Run(name, func(t *testing.T) {
			mem := tracetest.NewInMemoryExporter()
			tp := sdktrace.NewTracerProvider(sdktrace.WithIDGenerator(otelbridge.IDGenerator()),
				sdktrace.WithBatcher(mem, sdktrace.WithBatchTimeout(time.Hour)))
			t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
			tr, err := agenttrace.New(agenttrace.WithExporter(otelbridge.NewExporter(tp, tc.opts...)), agenttrace.WithAgent("bot", "1"))
			require.NoError(t, err)
			ctx, inst := tr.StartInstance(context.Background())
			_, s := tr.Start(ctx, agenttrace.TypeTool, agenttrace.ToolInput{Name: "search"})
			s.End()
			inst.End()
			require.NoError(t, tr.Shutdown(context.Background()))
			if !tc.flushed {
				require.Empty(t, mem.GetSpans(), "the batch waits for its owner")
				require.NoError(t, tp.ForceFlush(context.Background()))
			}
			require.Len(t, mem.GetSpans(), 2, "the instance root and the tool span")
			_, live := tp.Tracer("still").Start(context.Background(), "after")
			require.True(t, live.IsRecording(), "the provider was not shut down")
			live.End()
		})
	}
}

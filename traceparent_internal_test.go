package agenttrace

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
)

// Capturing costs nothing without an extractor, and an extractor that
// finds nothing allocates nothing; only a captured context is allocated.
func TestExtractParentAllocations(t *testing.T) {
	ctx := context.Background()
	none := &Tracer{}
	require.Zero(t, testing.AllocsPerRun(100, func() { _ = none.extractParent(ctx) }))

	found := false
	var tp TraceParent
	with := &Tracer{cfg: config{parentExtractor: func(context.Context) (TraceParent, bool) { return tp, found }}}
	require.Zero(t, testing.AllocsPerRun(100, func() { _ = with.extractParent(ctx) }), "nothing found")

	tp, found = TraceParent{TraceID: [16]byte{1}, SpanID: [8]byte{1}}, true
	require.Equal(t, 1.0, testing.AllocsPerRun(100, func() { _ = with.extractParent(ctx) }), "the captured context")
}

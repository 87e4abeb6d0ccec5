package agenttrace_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/agenttrace/agenttrace"
	"github.com/agenttrace/agenttrace/agenttracetest"
)

// terminatingRecorder is a recorder that can terminate instances.
type terminatingRecorder struct {
	*agenttracetest.Recorder
	terminate func(agenttrace.ID, string) bool
}

func (r *terminatingRecorder) SetTerminate(f func(agenttrace.ID, string) bool) { r.terminate = f }

func TestTermination(t *testing.T) {
	rec := &terminatingRecorder{Recorder: agenttracetest.NewRecorder()}
	tr, err := agenttrace.New(agenttrace.WithExporter(rec))
	require.NoError(t, err)
	t.Cleanup(func() { _ = tr.Shutdown(context.Background()) })
	require.NotNil(t, rec.terminate, "New hands the terminate function to a Terminator")

	parent, cancelParent := context.WithCancel(context.Background())
	defer cancelParent()
	ctx, inst := tr.StartInstance(parent)
	other, inst2 := tr.StartInstance(parent)
	ctx, span := tr.Start(ctx, "llm", nil)
	require.NoError(t, ctx.Err())
	require.Nil(t, inst.Terminated())

	require.False(t, rec.terminate(agenttrace.ID{}, "unknown instance"))
	require.True(t, rec.terminate(inst.ID(), "budget exceeded"))
	require.False(t, rec.terminate(inst.ID(), "again"), "a second signal is ignored")

	select {
	case <-ctx.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("span context not cancelled")
	}
	cause := context.Cause(ctx)
	require.ErrorIs(t, cause, agenttrace.ErrTerminated)
	var te *agenttrace.TerminatedError
	require.True(t, errors.As(cause, &te))
	require.Equal(t, "budget exceeded", te.Reason)
	require.Equal(t, inst.ID(), te.Instance)
	require.Contains(t, te.Error(), "budget exceeded")
	require.ErrorIs(t, inst.Terminated(), agenttrace.ErrTerminated)
	require.NoError(t, other.Err(), "other runs are untouched")
	require.NoError(t, parent.Err(), "the caller's context is untouched")

	// The run records its failure as usual.
	span.Fail(context.Cause(ctx))
	inst.Fail(context.Cause(ctx))
	require.Equal(t, agenttrace.StatusFailed, span.Status())

	// Ending does not cancel; a signal after the end is stale.
	inst2.End()
	require.NoError(t, other.Err())
	require.False(t, rec.terminate(inst2.ID(), "late"))
	require.NoError(t, other.Err())
	require.EqualValues(t, 1, tr.Stats().InstancesTerminated)

	// Parent cancellation still reaches the instance context.
	cancelParent()
	<-other.Done()
}

func TestNoTerminatorNoCancellableContext(t *testing.T) {
	tr, _ := newTracer(t)
	ctx, inst := tr.StartInstance(context.Background())
	require.Nil(t, ctx.Done(), "without a Terminator the instance context adds no cancellation")
	require.Nil(t, inst.Terminated())
	inst.End()
	var nilInst *agenttrace.Instance
	require.Nil(t, nilInst.Terminated())
}

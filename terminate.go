package agenttrace

import (
	"context"
	"errors"
	"sync"
)

// ErrTerminated is the cause of an instance's context when the backend
// terminated the run: errors.Is(context.Cause(ctx), ErrTerminated) reports
// it. The cause itself is a *TerminatedError carrying the reason.
var ErrTerminated = errors.New("agenttrace: instance terminated")

// TerminatedError is the context cause of an instance the backend
// terminated. It matches ErrTerminated with errors.Is.
type TerminatedError struct {
	// Instance is the terminated instance.
	Instance ID
	// Reason is the backend's reason, possibly empty.
	Reason string
}

// Error implements error.
func (e *TerminatedError) Error() string {
	if e.Reason == "" {
		return "agenttrace: instance " + e.Instance.String() + " terminated"
	}
	return "agenttrace: instance " + e.Instance.String() + " terminated: " + e.Reason
}

// Unwrap returns ErrTerminated.
func (e *TerminatedError) Unwrap() error { return ErrTerminated }

// Terminator is implemented by exporters whose backend can terminate a
// running instance (the Prefactor exporter). New calls SetTerminate once,
// before any record is exported, with a function that cancels the
// instance's context with a *TerminatedError cause. The function returns
// false, and does nothing, for an instance that has already ended, was
// already terminated or is unknown: a stale signal never reaches a
// finished or later run. It is safe to call from any goroutine.
type Terminator interface {
	SetTerminate(terminate func(instance ID, reason string) bool)
}

// liveInstances tracks running instances for termination. It is used only
// when an exporter is a Terminator.
type liveInstances struct {
	mu sync.Mutex
	m  map[ID]*Instance
}

func (l *liveInstances) add(inst *Instance) {
	l.mu.Lock()
	if l.m == nil {
		l.m = make(map[ID]*Instance)
	}
	l.m[inst.id] = inst
	l.mu.Unlock()
}

func (l *liveInstances) remove(id ID) {
	l.mu.Lock()
	delete(l.m, id)
	l.mu.Unlock()
}

func (l *liveInstances) get(id ID) *Instance {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.m[id]
}

// terminate cancels instance id's context; see Terminator.
func (t *Tracer) terminate(id ID, reason string) bool {
	inst := t.live.get(id)
	if inst == nil || inst.ended.Load() {
		return false
	}
	err := &TerminatedError{Instance: id, Reason: reason}
	if !inst.terminated.CompareAndSwap(nil, err) {
		return false
	}
	t.stats.instancesTerminated.Add(1)
	if inst.cancel != nil {
		inst.cancel(err)
	}
	return true
}

// Terminated returns the *TerminatedError of an instance the backend
// terminated, or nil. The instance still needs End or Fail: spans that run
// on after the termination are recorded as usual.
func (i *Instance) Terminated() error {
	if i == nil {
		return nil
	}
	if err := i.terminated.Load(); err != nil {
		return err
	}
	return nil
}

// instanceContext derives the context of a new instance: cancellable with a
// cause when an exporter can terminate runs, plain otherwise.
func (t *Tracer) instanceContext(ctx context.Context) (context.Context, context.CancelCauseFunc) {
	if !t.terminable {
		return ctx, nil
	}
	return context.WithCancelCause(ctx)
}

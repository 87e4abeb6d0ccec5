package prefactor

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"

	"github.com/agenttrace/agenttrace"
)

// Export sends a batch. It implements agenttrace.Exporter. Records the API
// refused, or that could not be sent before their deadline, are reported in
// an *agenttrace.PartialError.
func (e *Exporter) Export(ctx context.Context, recs []agenttrace.Record) error {
	if e.shut.Load() {
		return ErrShutdown
	}
	if err := e.stoppedErr(); err != nil {
		e.stats.unauthorized.Add(uint64(len(recs)))
		return err
	}
	e.startPoll()
	if !e.cfg.noPing && !e.pinged {
		if err := e.ping(ctx); err != nil {
			if errors.Is(err, ErrUnauthorized) {
				e.stats.unauthorized.Add(uint64(len(recs)))
				return e.stoppedErr()
			}
			// The API is unreachable: the operations below retry anyway.
		}
	}

	lanes, order := e.plan(recs)
	failed := make([]bool, len(recs))
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
		sem  = make(chan struct{}, e.cfg.concurrency)
	)
	for _, inst := range order {
		ops := lanes[inst]
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			bad, err := e.runLane(ctx, ops)
			mu.Lock()
			for _, i := range bad {
				failed[i] = true
			}
			if err != nil {
				errs = append(errs, err)
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	var idx []int
	for i, f := range failed {
		if f {
			idx = append(idx, i)
		}
	}
	if len(idx) == 0 {
		return nil
	}
	return &agenttrace.PartialError{Failed: idx, Err: errors.Join(errs...)}
}

// ping checks the token once.
func (e *Exporter) ping(ctx context.Context) error {
	resp, err := e.do(ctx, http.MethodGet, "/api/v1/ping", nil)
	if err != nil {
		return err
	}
	if resp.status >= 400 {
		return fmt.Errorf("prefactor: ping: HTTP %d", resp.status)
	}
	e.pinged = true
	return nil
}

// plan turns records into operations, grouped by instance in the order
// instances first appear.
func (e *Exporter) plan(recs []agenttrace.Record) (map[agenttrace.ID][]*op, []agenttrace.ID) {
	lanes := map[agenttrace.ID][]*op{}
	var order []agenttrace.ID
	add := func(o *op) {
		if _, ok := lanes[o.inst]; !ok {
			order = append(order, o.inst)
		}
		lanes[o.inst] = append(lanes[o.inst], o)
	}
	// emit adds a span's operations, or holds them back while an ancestor
	// is deferred; resolving a deferred span releases what waits on it.
	var emit func(o *op)
	emit = func(o *op) {
		if anc, ok := e.waitOn[o.span]; ok {
			// Held past this Export: it must not point into the batch.
			o.rec = -1
			d := *o.sdata
			o.sdata = &d
			e.deferred[anc].ops = append(e.deferred[anc].ops, o)
			return
		}
		add(o)
	}
	release := func(id agenttrace.ID) {
		d := e.deferred[id]
		delete(e.deferred, id)
		if anc, waits := e.waitOn[id]; waits {
			// id itself waits on a deferred ancestor: so does what waited on it.
			for k, v := range e.waitOn {
				if v == id {
					e.waitOn[k] = anc
				}
			}
			e.deferred[anc].ops = append(e.deferred[anc].ops, d.ops...)
			return
		}
		for k, v := range e.waitOn {
			if v == id {
				delete(e.waitOn, k)
			}
		}
		for _, w := range d.ops {
			emit(w)
		}
	}
	for i := range recs {
		r := &recs[i]
		switch r.Kind {
		case agenttrace.InstanceStarted:
			d := r.Instance
			add(&op{kind: opRegister, rec: i, inst: d.ID, idata: d})
			add(&op{kind: opStartInstance, rec: i, inst: d.ID, idata: d})
		case agenttrace.InstanceEnded:
			d := r.Instance
			st := "complete"
			if d.Status == agenttrace.StatusFailed {
				st = "failed"
			}
			add(&op{kind: opFinishInstance, rec: i, inst: d.ID, idata: d, status: st})
		case agenttrace.SpanStarted, agenttrace.SpanActivated, agenttrace.SpanEnded:
			d := &r.Span
			if r.Kind == agenttrace.SpanStarted {
				// Wait on the nearest deferred ancestor.
				if _, ok := e.deferred[d.ParentID]; ok {
					e.waitOn[d.ID] = d.ParentID
				} else if anc, ok := e.waitOn[d.ParentID]; ok {
					e.waitOn[d.ID] = anc
				}
			}
			_, isDeferred := e.deferred[d.ID]
			switch {
			case r.Kind == agenttrace.SpanStarted && d.Status == agenttrace.StatusPending:
				// The API has no pending -> active transition: the span is
				// created when it activates or is cancelled.
				e.deferred[d.ID] = &deferred{data: *d}
			case isDeferred && d.Status == agenttrace.StatusCancelled,
				!isDeferred && r.Kind == agenttrace.SpanStarted && d.Status == agenttrace.StatusCancelled:
				emit(&op{kind: opCreateSpan, rec: i, inst: d.InstanceID, span: d.ID, sdata: d, status: "pending", pendingCreate: true})
				emit(&op{kind: opFinishSpan, rec: i, inst: d.InstanceID, span: d.ID, sdata: d, status: "cancelled"})
				if isDeferred {
					release(d.ID)
				}
			case isDeferred:
				emit(&op{kind: opCreateSpan, rec: i, inst: d.InstanceID, span: d.ID, sdata: d, status: d.Status.String()})
				release(d.ID)
			case r.Kind == agenttrace.SpanStarted:
				emit(&op{kind: opCreateSpan, rec: i, inst: d.InstanceID, span: d.ID, sdata: d, status: d.Status.String()})
			case r.Kind == agenttrace.SpanEnded:
				emit(&op{kind: opFinishSpan, rec: i, inst: d.InstanceID, span: d.ID, sdata: d, status: d.Status.String()})
			}
		}
	}
	return lanes, order
}

// runLane sends one instance's operations in order. It returns the batch
// indexes of the records that were not delivered.
func (e *Exporter) runLane(ctx context.Context, ops []*op) (bad []int, err error) {
	lost := map[agenttrace.ID]bool{} // instances and spans whose creation failed
	fail := func(o *op, reason string, cause error) {
		if o.kind <= opStartInstance {
			lost[o.inst] = true
		} else if o.kind == opCreateSpan {
			lost[o.span] = true
		}
		if o.rec >= 0 {
			bad = append(bad, o.rec)
		}
		switch reason {
		case "rejected":
			e.stats.rejected.Add(1)
		case "unauthorized":
			e.stats.unauthorized.Add(1)
		default:
			e.stats.gaveUp.Add(1)
		}
		if cause != nil && reason != "unauthorized" {
			e.report(reason, cause)
		}
		if err == nil {
			err = cause
		}
	}
	orphan := func(o *op) bool {
		if lost[o.inst] || (o.kind >= opCreateSpan && lost[o.span]) {
			return true
		}
		return o.kind == opCreateSpan && !o.sdata.ParentID.IsZero() && lost[o.sdata.ParentID]
	}
	for i := 0; i < len(ops); {
		if orphan(ops[i]) {
			fail(ops[i], "orphaned", fmt.Errorf("prefactor: %s of %s skipped: what it depends on was not delivered", ops[i].name(), ops[i].key()))
			i++
			continue
		}
		var chunk []*op
		if e.noBulk.Load() {
			chunk = ops[i : i+1]
		} else {
			chunk = e.chunk(ops[i:], orphan)
		}
		done, cerr := e.send(ctx, chunk)
		// done ops succeeded or were rejected (handled in send); the first
		// op after them is retried or failed below.
		for _, r := range done {
			if r.err != nil {
				fail(r.op, "rejected", r.err)
			} else if r.op.kind == opStartInstance {
				e.mu.Lock()
				e.running[r.op.inst] = true
				e.mu.Unlock()
			} else if r.op.kind == opFinishInstance {
				e.mu.Lock()
				delete(e.running, r.op.inst)
				e.mu.Unlock()
			}
		}
		i += len(done)
		if cerr != nil {
			reason := "gave_up"
			if errors.Is(cerr, ErrUnauthorized) {
				reason = "unauthorized"
			}
			// Nothing more gets through before the deadline: fail the rest.
			for _, o := range ops[i:] {
				fail(o, reason, cerr)
				cerr = nil // report once
			}
			return bad, err
		}
	}
	return bad, err
}

// chunk takes the operations for one bulk request from the front of ops:
// within the item and byte limits, stopping before an orphan, and right
// after a register without a client-chosen ID (the answer gives the ID the
// rest must use).
func (e *Exporter) chunk(ops []*op, orphan func(*op) bool) []*op {
	size := 0
	for n, o := range ops {
		if n > 0 && orphan(o) {
			return ops[:n]
		}
		size += 512 + len(o.payloadSize())
		if o.sdata != nil {
			size += len(o.sdata.Result)
		}
		if n > 0 && (n >= e.cfg.maxBulkItems || size > e.cfg.maxBulkBytes) {
			return ops[:n]
		}
		if o.kind == opRegister && !e.partitionKnown() {
			return ops[:n+1]
		}
	}
	return ops
}

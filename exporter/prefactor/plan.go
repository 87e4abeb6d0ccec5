package prefactor

import (
	"errors"
	"sync/atomic"

	"github.com/agenttrace/agenttrace"
)

// sink is where the outcome of records is reported: an *agenttrace.Batch,
// or the collector of a synchronous Export.
type sink interface {
	Done(i int, err error)
	Hold(i int)
	Resume(i int)
}

// recRef is one record's completion: it is reported done when the last
// operation it produced is done (with the first error met), and held while
// one of them waits for a pending ancestor.
type recRef struct {
	sink sink
	idx  int
	left atomic.Int32 // operations not done (one reserved while deferred)
	held atomic.Bool
	err  atomic.Pointer[error]
}

func (r *recRef) hold() {
	if r.held.CompareAndSwap(false, true) {
		r.sink.Hold(r.idx)
	}
}

// resume reports a held record on its way again.
func (r *recRef) resume() {
	if r.held.Load() && r.held.CompareAndSwap(true, false) {
		r.sink.Resume(r.idx)
	}
}

func (r *recRef) opDone(err error) {
	if err != nil {
		first := err // a copy: taking err's address would move it to the heap on every call
		r.err.CompareAndSwap(nil, &first)
	}
	if r.left.Add(-1) == 0 {
		var first error
		if p := r.err.Load(); p != nil {
			first = *p
		}
		r.sink.Done(r.idx, first)
	}
}

// errPendingNeverResolved fails what still waits at Shutdown.
var errPendingNeverResolved = errors.New("prefactor: span still pending at shutdown (never activated or cancelled); not sent")

// plan maps records to operations and hands them to their instances'
// lanes, in order; operations of spans under a pending ancestor wait in
// e.pending. It runs under e.planMu.
func (e *Exporter) plan(recs []agenttrace.Record, s sink) {
	for i := range recs {
		rr := refFor{sink: s, idx: i}
		e.planRecord(&recs[i], &rr)
		if rr.ref == nil {
			s.Done(i, nil) // nothing to send
			continue
		}
		rr.ref.opDone(nil) // the reservation: the record is done when its operations are
	}
}

// refFor makes a record's recRef when its first operation (or its
// deferral) needs it: inside that operation, so that the common record,
// one operation, costs one allocation.
type refFor struct {
	sink sink
	idx  int
	ref  *recRef
}

// get returns the record's recRef, placing it in own if it is new.
func (rr *refFor) get(own *recRef) *recRef {
	if rr.ref == nil {
		if own == nil {
			own = &recRef{}
		}
		own.sink, own.idx = rr.sink, rr.idx
		own.left.Store(1) // reserved until plan has made every operation
		rr.ref = own
	}
	return rr.ref
}

// planRecord maps one record to its operations: a pure function of the
// record and of whether its span is deferred (started pending and not
// resolved), which e.pending tracks.
func (e *Exporter) planRecord(r *agenttrace.Record, ref *refFor) {
	switch r.Kind {
	case agenttrace.InstanceStarted:
		d := r.Instance
		if e.instances == nil {
			e.instances = map[agenttrace.ID]*agenttrace.InstanceData{}
		}
		e.instances[d.ID] = d
		e.enqueue(newOp(opRegister, d.ID, agenttrace.ID{}, ref).withInstance(d))
		e.enqueue(newOp(opStartInstance, d.ID, agenttrace.ID{}, ref).withInstance(d))
	case agenttrace.InstanceEnded:
		d := r.Instance
		delete(e.instances, d.ID)
		o := newOp(opFinishInstance, d.ID, agenttrace.ID{}, ref).withInstance(d)
		o.status = "complete"
		if d.Status == agenttrace.StatusFailed {
			o.status = "failed"
		}
		e.enqueue(o)
	case agenttrace.SpanStarted, agenttrace.SpanActivated, agenttrace.SpanEnded:
		e.planSpan(r.Kind, &r.Span, ref)
	}
}

func (e *Exporter) planSpan(kind agenttrace.RecordKind, d *agenttrace.SpanData, ref *refFor) {
	p := &e.pending
	if kind == agenttrace.SpanStarted {
		p.join(d.ID, d.ParentID)
	}
	node := p.nodes[d.ID]
	span := func(k opKind, status string) *op {
		o := newOp(k, d.InstanceID, d.ID, ref)
		o.sdata, o.status = d, status
		if k == opCreateSpan && d.ParentID.IsZero() {
			o.idata = e.instances[d.InstanceID] // for the root span's "instance" object
		}
		return o
	}
	switch {
	case kind == agenttrace.SpanStarted && d.Status == agenttrace.StatusPending:
		// The API has no pending -> active transition: the span is created
		// when it activates or is cancelled.
		p.deferSpan(d, ref.get(nil))
	case d.Status == agenttrace.StatusCancelled && (node != nil || kind == agenttrace.SpanStarted):
		create := span(opCreateSpan, "pending")
		create.pendingCreate = true
		create.adopt(node)
		e.emit(create)
		e.emit(span(opFinishSpan, "cancelled"))
		e.resolve(node)
	case node != nil:
		create := span(opCreateSpan, d.Status.String())
		create.adopt(node)
		e.emit(create)
		e.resolve(node)
	case kind == agenttrace.SpanStarted:
		e.emit(span(opCreateSpan, d.Status.String()))
	case kind == agenttrace.SpanEnded:
		e.emit(span(opFinishSpan, d.Status.String()))
	}
	// SpanActivated of a span created active: the API has nothing to do.
}

func newOp(k opKind, inst, span agenttrace.ID, rr *refFor) *op {
	o := &op{kind: k, inst: inst, span: span}
	ref := rr.get(&o.own)
	o.refs[0] = ref
	ref.left.Add(1)
	return o
}

func (o *op) withInstance(d *agenttrace.InstanceData) *op {
	o.idata = d
	return o
}

// adopt makes the operation complete the start record of a deferred span
// too (its reserved count).
func (o *op) adopt(node *pnode) {
	if node != nil {
		o.refs[1] = node.start
		node.start = nil
	}
}

// finish reports the operation's records.
func (o *op) finish(err error) {
	for _, r := range o.refs {
		if r != nil {
			r.opDone(err)
		}
	}
}

// resume marks the operation's held records on their way again.
func (o *op) resume() {
	for _, r := range o.refs {
		if r != nil {
			r.resume()
		}
	}
}

// hold marks the operation's records held: it waits for an ancestor.
func (o *op) hold() {
	for _, r := range o.refs {
		if r != nil {
			r.hold()
		}
	}
}

// emit sends a span's operation to its lane, or holds it while an ancestor
// is deferred. Held, it must not point into the batch (which could then
// stay alive for one record): its span data is copied.
func (e *Exporter) emit(o *op) {
	if anc := e.pending.waiting(o.span); anc != nil {
		d := *o.sdata
		o.sdata = &d
		o.hold()
		anc.push(o)
		e.pending.held++
		return
	}
	e.enqueue(o)
}

// resolve ends a deferred span's wait (it was created, or created and
// cancelled): what waited on it waits on its own deferred ancestor, if it
// has one, or goes to its lane.
func (e *Exporter) resolve(node *pnode) {
	if node == nil {
		return
	}
	for o := range e.pending.resolve(node) {
		e.enqueue(o)
	}
}

// pendingSpans owns the bookkeeping of deferred spans: spans started
// pending wait, with the operations of their descendants, until they are
// resolved. Every operation is linear in what it touches: a span joins its
// nearest deferred ancestor once; resolving a node moves its waiting list
// in O(1) to its own deferred ancestor (a forward pointer stands for its
// members), or releases it, deleting each member's entry once.
type pendingSpans struct {
	nodes  map[agenttrace.ID]*pnode // deferred and not resolved
	waitOn map[agenttrace.ID]*pnode // span -> the node it joined (maybe forwarded)
	held   int                      // operations waiting
}

// pnode is one deferred span and what waits on it.
type pnode struct {
	id         agenttrace.ID
	start      *recRef // the span's start record, until its create takes it
	head, tail *op     // waiting operations, in order (linked by op.next)
	n          int
	fwd        *pnode // resolved while it waited on fwd: its waiters wait there
	done       bool   // resolved and released
	members    []agenttrace.ID
	merged     []*pnode
}

func (p *pendingSpans) init() {
	p.nodes = map[agenttrace.ID]*pnode{}
	p.waitOn = map[agenttrace.ID]*pnode{}
}

// root follows forward pointers, compressing the path.
func (p *pendingSpans) root(n *pnode) *pnode {
	r := n
	for r.fwd != nil {
		r = r.fwd
	}
	for n.fwd != nil {
		n, n.fwd = n.fwd, r
	}
	return r
}

// waiting returns the unresolved node span id waits on, or nil.
func (p *pendingSpans) waiting(id agenttrace.ID) *pnode {
	n, ok := p.waitOn[id]
	if !ok {
		return nil
	}
	if r := p.root(n); !r.done {
		return r
	}
	return nil
}

// join makes a span that just started wait on its nearest deferred
// ancestor, if any.
func (p *pendingSpans) join(id, parent agenttrace.ID) {
	if parent.IsZero() {
		return
	}
	anc := p.nodes[parent]
	if anc == nil {
		anc = p.waiting(parent)
	}
	if anc != nil {
		p.waitOn[id] = anc
		anc.members = append(anc.members, id)
	}
}

// deferSpan records a span started pending; its start record is held.
func (p *pendingSpans) deferSpan(d *agenttrace.SpanData, ref *recRef) {
	ref.left.Add(1) // reserved for the create that resolves it
	ref.hold()
	p.nodes[d.ID] = &pnode{id: d.ID, start: ref}
}

func (n *pnode) push(o *op) {
	if n.tail == nil {
		n.head = o
	} else {
		n.tail.next = o
	}
	n.tail = o
	n.n++
}

// resolve removes node from the deferred spans. If it waits on an
// ancestor, its list joins the ancestor's and nothing is released;
// otherwise it returns its waiting operations, in order.
func (p *pendingSpans) resolve(node *pnode) func(func(*op) bool) {
	delete(p.nodes, node.id)
	if anc := p.waiting(node.id); anc != nil {
		if node.head != nil {
			if anc.tail == nil {
				anc.head = node.head
			} else {
				anc.tail.next = node.head
			}
			anc.tail = node.tail
			anc.n += node.n
		}
		node.head, node.tail, node.n = nil, nil, 0
		node.fwd = anc
		anc.merged = append(anc.merged, node)
		return func(func(*op) bool) {}
	}
	node.done = true
	p.forget(node)
	head := node.head
	node.head, node.tail = nil, nil
	p.held -= node.n
	return func(yield func(*op) bool) {
		for o := head; o != nil; {
			next := o.next
			o.next = nil
			if !yield(o) {
				return
			}
			o = next
		}
	}
}

// forget deletes the wait entries of a released node's members, and of the
// nodes merged into it.
func (p *pendingSpans) forget(node *pnode) {
	stack := []*pnode{node}
	for len(stack) > 0 {
		n := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		for _, m := range n.members {
			delete(p.waitOn, m)
		}
		n.members = nil
		stack = append(stack, n.merged...)
		n.merged = nil
	}
}

// drain fails every deferred span and what waits on it (at Shutdown),
// returning how many spans were still pending.
func (p *pendingSpans) drain() int {
	spans := len(p.nodes)
	for _, n := range p.nodes {
		for o := n.head; o != nil; o = o.next {
			o.finish(errPendingNeverResolved)
		}
		if n.start != nil {
			n.start.opDone(errPendingNeverResolved)
		}
	}
	p.init()
	p.held = 0
	return spans
}

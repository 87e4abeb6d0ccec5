// Package agenttracetest holds an in-memory exporter and helpers for
// testing code instrumented with agenttrace.
//
//	tracer, rec := agenttracetest.New(t)
//	runMyAgent(ctx, tracer)
//	require.NoError(t, tracer.Flush(ctx))
//	require.Len(t, rec.SpansOfType("llm"), 2)
package agenttracetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/agenttrace/agenttrace"
)

// TestingT is the part of *testing.T the helpers use.
type TestingT interface {
	Helper()
	Errorf(format string, args ...any)
	Cleanup(func())
}

// New returns a tracer, configured by opts, exporting to a new Recorder.
// When the test ends the tracer is shut down (with a 5 s timeout) and the
// test fails if the shutdown fails or the recorded stream breaks the
// ordering invariants (see CheckOrdering). If the options are invalid, New
// reports it with t.Errorf and returns a nil (no-op) tracer.
func New(t TestingT, opts ...agenttrace.Option) (*agenttrace.Tracer, *Recorder) {
	t.Helper()
	rec := NewRecorder()
	tr, err := agenttrace.New(append([]agenttrace.Option{agenttrace.WithExporter(rec)}, opts...)...)
	if err != nil {
		t.Errorf("agenttracetest: %v", err)
		return nil, rec
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := tr.Shutdown(ctx); err != nil && !onlyUndelivered(err) {
			t.Errorf("agenttracetest: shutdown: %v", err)
		}
		if err := rec.CheckOrdering(); err != nil {
			t.Errorf("agenttracetest: %v", err)
		}
	})
	return tr, rec
}

// onlyUndelivered reports whether err only says that records were not
// delivered (*agenttrace.DeliveryError): losses a test caused on purpose,
// which it checks in Stats.
func onlyUndelivered(err error) bool {
	errs := []error{err}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	}
	for _, e := range errs {
		var de *agenttrace.DeliveryError
		if !errors.As(e, &de) {
			return false
		}
	}
	return true
}

// Recorder is an agenttrace.Exporter that keeps every record in memory. It
// is safe for concurrent use.
type Recorder struct {
	mu      sync.Mutex
	records []agenttrace.Record
	hook    func(context.Context, []agenttrace.Record) error
	changed chan struct{} // closed and replaced on every Export
}

// NewRecorder returns an empty Recorder.
func NewRecorder() *Recorder { return &Recorder{changed: make(chan struct{})} }

// Name returns "agenttracetest".
func (r *Recorder) Name() string { return "agenttracetest" }

// SetExportHook installs fn, called with every batch before it is stored;
// a non-nil error fails the export and the batch is not stored. Use it to
// make the exporter fail or stall (a stalling hook should honour ctx).
func (r *Recorder) SetExportHook(fn func(ctx context.Context, batch []agenttrace.Record) error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.hook = fn
}

// Export implements agenttrace.Exporter.
func (r *Recorder) Export(ctx context.Context, batch []agenttrace.Record) error {
	r.mu.Lock()
	hook := r.hook
	r.mu.Unlock()
	if hook != nil {
		if err := hook(ctx, batch); err != nil {
			return err
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.records = append(r.records, batch...)
	close(r.changed)
	r.changed = make(chan struct{})
	return nil
}

// Shutdown implements agenttrace.Exporter. The records stay readable.
func (r *Recorder) Shutdown(context.Context) error { return nil }

// Records returns a copy of every record received, in arrival order.
func (r *Recorder) Records() []agenttrace.Record {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.records)
}

// Reset forgets every record.
func (r *Recorder) Reset() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.records = nil
}

// WaitFor waits until cond holds or ctx ends, returning ctx's error in the
// latter case. It checks cond now and again after every stored batch (it is
// woken by Export, it does not poll), so cond must not block; it may call
// the Recorder's methods.
func (r *Recorder) WaitFor(ctx context.Context, cond func(*Recorder) bool) error {
	for {
		r.mu.Lock()
		ch := r.changed
		r.mu.Unlock()
		if cond(r) {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// view is an index over one snapshot of the records.
type view struct {
	spans    []agenttrace.SpanData   // latest states, first-seen order
	pos      map[agenttrace.ID]int   // span id -> index in spans
	children map[agenttrace.ID][]int // parent id -> child indexes, sorted
	roots    map[agenttrace.ID][]int // instance id -> root indexes, sorted
}

func isSpanKind(k agenttrace.RecordKind) bool {
	return k == agenttrace.SpanStarted || k == agenttrace.SpanActivated || k == agenttrace.SpanEnded
}

func isInstanceKind(k agenttrace.RecordKind) bool {
	return k == agenttrace.InstanceStarted || k == agenttrace.InstanceEnded
}

// spansOf returns the latest state of every span in recs, in first-seen
// order, and each span's index.
func spansOf(recs []agenttrace.Record) ([]agenttrace.SpanData, map[agenttrace.ID]int) {
	var out []agenttrace.SpanData
	pos := map[agenttrace.ID]int{}
	for _, rec := range recs {
		if !isSpanKind(rec.Kind) {
			continue
		}
		if i, ok := pos[rec.Span.ID]; ok {
			out[i] = rec.Span
			continue
		}
		pos[rec.Span.ID] = len(out)
		out = append(out, rec.Span)
	}
	return out, pos
}

// newView indexes the spans of recs by parent and by instance; siblings
// are sorted by CreatedAt, then first-seen order.
func newView(recs []agenttrace.Record) *view {
	v := &view{children: map[agenttrace.ID][]int{}, roots: map[agenttrace.ID][]int{}}
	v.spans, v.pos = spansOf(recs)
	for i, s := range v.spans {
		if s.ParentID.IsZero() {
			v.roots[s.InstanceID] = append(v.roots[s.InstanceID], i)
		} else {
			v.children[s.ParentID] = append(v.children[s.ParentID], i)
		}
	}
	byCreation := func(a, b int) int {
		if c := v.spans[a].CreatedAt.Compare(v.spans[b].CreatedAt); c != 0 {
			return c
		}
		return a - b
	}
	for _, l := range v.children {
		slices.SortFunc(l, byCreation)
	}
	for _, l := range v.roots {
		slices.SortFunc(l, byCreation)
	}
	return v
}

func (v *view) list(idx []int) []agenttrace.SpanData {
	if len(idx) == 0 {
		return nil
	}
	out := make([]agenttrace.SpanData, len(idx))
	for k, i := range idx {
		out[k] = v.spans[i]
	}
	return out
}

// Spans returns the latest state of every span, in the order spans were
// first seen.
func (r *Recorder) Spans() []agenttrace.SpanData {
	spans, _ := spansOf(r.Records())
	return spans
}

// Span returns the latest state of the span with the given ID, and whether
// any record of it was received.
func (r *Recorder) Span(id agenttrace.ID) (agenttrace.SpanData, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := len(r.records) - 1; i >= 0; i-- {
		if rec := &r.records[i]; isSpanKind(rec.Kind) && rec.Span.ID == id {
			return rec.Span, true
		}
	}
	return agenttrace.SpanData{}, false
}

// Instances returns the latest state of every instance, in the order
// instances were first seen.
func (r *Recorder) Instances() []agenttrace.InstanceData {
	var out []agenttrace.InstanceData
	pos := map[agenttrace.ID]int{}
	for _, rec := range r.Records() {
		if !isInstanceKind(rec.Kind) || rec.Instance == nil {
			continue
		}
		if i, ok := pos[rec.Instance.ID]; ok {
			out[i] = *rec.Instance
			continue
		}
		pos[rec.Instance.ID] = len(out)
		out = append(out, *rec.Instance)
	}
	return out
}

// FindSpans returns the spans (latest states, first-seen order) for which
// keep returns true.
func (r *Recorder) FindSpans(keep func(agenttrace.SpanData) bool) []agenttrace.SpanData {
	var out []agenttrace.SpanData
	for _, s := range r.Spans() {
		if keep(s) {
			out = append(out, s)
		}
	}
	return out
}

// SpansOfType returns the spans of type typ, in first-seen order.
func (r *Recorder) SpansOfType(typ string) []agenttrace.SpanData {
	return r.FindSpans(func(s agenttrace.SpanData) bool { return s.Type == typ })
}

// Children returns the children of span id, by creation time (CreatedAt,
// which is the start time of a span started active), then first-seen order.
func (r *Recorder) Children(id agenttrace.ID) []agenttrace.SpanData {
	if id.IsZero() {
		return nil
	}
	v := newView(r.Records())
	return v.list(v.children[id])
}

// Roots returns the spans of instance instanceID that have no parent, by
// creation time, then first-seen order.
func (r *Recorder) Roots(instanceID agenttrace.ID) []agenttrace.SpanData {
	v := newView(r.Records())
	return v.list(v.roots[instanceID])
}

// Tree renders the spans of instance instanceID, one line per span,
// indented by two spaces per level of depth: "type name status", or "type
// status" for a span with no name. Siblings are ordered by CreatedAt, then
// first-seen order. It shows no IDs or times, so a test can compare it with
// a literal:
//
//	require.Equal(t, "agent complete\n  llm complete\n", rec.Tree(inst.ID()))
func (r *Recorder) Tree(instanceID agenttrace.ID) string {
	v := newView(r.Records())
	var b strings.Builder
	seen := make([]bool, len(v.spans)) // guards against parent cycles in hand-built records
	var walk func(idx []int, depth int)
	walk = func(idx []int, depth int) {
		for _, i := range idx {
			if seen[i] {
				continue
			}
			seen[i] = true
			s := &v.spans[i]
			b.WriteString(strings.Repeat("  ", depth))
			b.WriteString(s.Type)
			if s.Name != "" {
				b.WriteString(" " + s.Name)
			}
			b.WriteString(" " + s.Status.String() + "\n")
			walk(v.children[s.ID], depth+1)
		}
	}
	walk(v.roots[instanceID], 0)
	return b.String()
}

// CheckOrdering verifies the pipeline's guarantees on the recorded stream:
// no span record before its instance started, no child before its parent
// (and the parent in the same instance), no activation or end before the
// span's start, nothing after a span's final record, no duplicate start, no
// end without a final status, no instance ended twice or before its start,
// and no span end after its instance's end when the span ended earlier.
// It returns every violation found.
//
// The last check reads "earlier" from the end timestamps, which holds for
// times taken from the tracer's clock. Spans ended with explicit times
// (Span.EndAt, Instance.EndAt: replayed work) are ordered by when they were
// recorded, not by the times given, so a replayed end recorded after its
// instance's end with an earlier time is reported here though the pipeline
// delivered it correctly; use a Recorder without this check for such tests.
func (r *Recorder) CheckOrdering() error {
	c := orderCheck{spans: map[agenttrace.ID]*spanOrder{}, insts: map[agenttrace.ID]*instOrder{}}
	for i, rec := range r.Records() {
		c.i = i
		switch {
		case isInstanceKind(rec.Kind) && rec.Instance == nil:
			c.bad("%s record without instance data", rec.Kind)
		case rec.Kind == agenttrace.InstanceStarted:
			c.instanceStarted(rec.Instance)
		case rec.Kind == agenttrace.InstanceEnded:
			c.instanceEnded(rec.Instance)
		case rec.Kind == agenttrace.SpanStarted || rec.Kind == agenttrace.SpanActivated || rec.Kind == agenttrace.SpanEnded:
			c.span(rec.Kind, &rec.Span)
		default:
			c.bad("unknown record kind %d", rec.Kind)
		}
	}
	return errors.Join(c.errs...)
}

// orderCheck is CheckOrdering's state: the instances and spans seen so
// far, the record being checked and the violations found.
type orderCheck struct {
	spans map[agenttrace.ID]*spanOrder
	insts map[agenttrace.ID]*instOrder
	i     int
	errs  []error
}

type spanOrder struct {
	instance agenttrace.ID
	final    bool // its final record was seen
}

type instOrder struct {
	ended   bool
	endedAt time.Time
}

func (c *orderCheck) bad(format string, args ...any) {
	c.errs = append(c.errs, fmt.Errorf("record %d: "+format, append([]any{c.i}, args...)...))
}

func (c *orderCheck) instanceStarted(d *agenttrace.InstanceData) {
	if _, ok := c.insts[d.ID]; ok {
		c.bad("instance %s started twice", d.ID)
		return
	}
	c.insts[d.ID] = &instOrder{}
}

func (c *orderCheck) instanceEnded(d *agenttrace.InstanceData) {
	in, ok := c.insts[d.ID]
	switch {
	case !ok:
		c.bad("instance %s ended before it started", d.ID)
	case in.ended:
		c.bad("instance %s ended twice", d.ID)
	default:
		in.ended, in.endedAt = true, d.EndedAt
	}
	if !d.Status.Finished() {
		c.bad("instance %s ended with status %s", d.ID, d.Status)
	}
}

// span checks a span record: after its instance's start, and, once the
// span is final, not after its instance's end if it ended before it.
func (c *orderCheck) span(kind agenttrace.RecordKind, d *agenttrace.SpanData) {
	in, inOK := c.insts[d.InstanceID]
	if !inOK {
		c.bad("span %s (%s) before its instance %s started", d.ID, d.Type, d.InstanceID)
	}
	var st *spanOrder
	if kind == agenttrace.SpanStarted {
		st = c.spanStarted(d)
	} else {
		st = c.spanChanged(kind, d)
	}
	if st == nil || !d.Status.Finished() {
		return
	}
	st.final = true
	if inOK && in.ended && d.EndedAt.Before(in.endedAt) {
		c.bad("span %s ended before its instance but arrived after the instance end", d.ID)
	}
}

// spanStarted checks a start: the first of its span, after its parent's
// start, in the parent's instance. It returns nil for a second start.
func (c *orderCheck) spanStarted(d *agenttrace.SpanData) *spanOrder {
	if _, seen := c.spans[d.ID]; seen {
		c.bad("span %s started twice", d.ID)
		return nil
	}
	if !d.ParentID.IsZero() {
		p, ok := c.spans[d.ParentID]
		switch {
		case !ok:
			c.bad("span %s (%s) before its parent %s", d.ID, d.Type, d.ParentID)
		case p.instance != d.InstanceID:
			c.bad("span %s has a parent in another instance", d.ID)
		}
	}
	st := &spanOrder{instance: d.InstanceID}
	c.spans[d.ID] = st
	return st
}

// spanChanged checks an activation or end: after the span's start and
// before its final record, an end with a final status. It returns nil
// when the record comes before the start or after the final record.
func (c *orderCheck) spanChanged(kind agenttrace.RecordKind, d *agenttrace.SpanData) *spanOrder {
	st, seen := c.spans[d.ID]
	switch {
	case !seen:
		c.bad("span %s %s before its start", d.ID, kind)
		return nil
	case st.final:
		c.bad("span %s %s after its final record", d.ID, kind)
		return nil
	}
	if kind == agenttrace.SpanEnded && !d.Status.Finished() {
		c.bad("span %s ended with status %s", d.ID, d.Status)
	}
	return st
}

// CheckComplete verifies that every span recorded reached a final status
// and every instance recorded ended.
func (r *Recorder) CheckComplete() error {
	var errs []error
	for _, s := range r.Spans() {
		if !s.Status.Finished() {
			errs = append(errs, fmt.Errorf("span %s (%s) is still %s", s.ID, s.Type, s.Status))
		}
	}
	for _, in := range r.Instances() {
		if !in.Status.Finished() {
			errs = append(errs, fmt.Errorf("instance %s is still %s", in.ID, in.Status))
		}
	}
	return errors.Join(errs...)
}

// Package stdout is an agenttrace exporter for people and for quick
// pipelines.
//
// By default it prints each instance (one agent run) as an indented tree
// when the instance ends:
//
//	● support-bot 1.4.0  complete  500ms  instance 01KDYAK34J6AF4ZZTVMH1595GR
//	│ spans 4 (4 complete)  llm calls 2  tokens 661 (640 in, 21 out)  cost $0.0012  ttft 50ms
//	│ user=u-42 channel=email
//	└─ agent support-bot  complete  400ms
//	   ├─ llm claude-sonnet-4  complete  50ms  provider=anthropic  tokens 312 (300 in, 12 out)  finish=tool_use
//	   ├─ tool lookup_order  complete  50ms  call=toolu_1
//	   └─ llm claude-sonnet-4  complete  100ms  provider=anthropic  streamed  tokens 349 (340 in, 9 out)  cost $0.0012  ttft 50ms  finish=end_turn
//
// Each span shows its type, its name (or a key field of its payload: the
// model of an llm span, the tool name of a tool span, the agent name of an
// agent span), status and duration, then the key payload fields (model,
// provider, tool call id, agent name), token usage, cost, time to first
// token, finish reason, and the error of a failed or cancelled span. Payloads
// themselves are never printed in a tree. Children are sorted by start time;
// a span whose parent was not exported is shown at the root with a note.
// Instances that never ended are printed at Shutdown, marked "(still
// running)"; a span that ends after its instance was printed gets a line of
// its own.
//
// With WithJSONLines it writes one JSON object per record instead, as
// records arrive, in the Record's JSON form.
package stdout

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/agenttrace/agenttrace"
)

// DefaultMaxSpans is the number of spans kept per running instance before
// further ones are only counted (WithMaxSpans).
const DefaultMaxSpans = 10000

// maxEndedInstances bounds the finished instances remembered so that a span
// ending after its instance can still be labelled.
const maxEndedInstances = 1024

// ErrShutdown is returned by Export after Shutdown.
var ErrShutdown = errors.New("stdout: exporter is shut down")

// Exporter writes records to a writer, as trees or as JSON lines. Create it
// with New. It is safe for concurrent use; writes are serialized.
type Exporter struct {
	mu        sync.Mutex
	w         io.Writer
	jsonLines bool
	showIDs   bool
	payloads  bool
	color     bool
	maxSpans  int

	instances map[agenttrace.ID]*instance
	order     []agenttrace.ID // running instances, in start order
	ended     map[agenttrace.ID]string
	endedFIFO []agenttrace.ID
	closed    bool
	buf       bytes.Buffer
}

// instance is what the exporter keeps of a running instance.
type instance struct {
	data    agenttrace.InstanceData
	known   bool // its InstanceStarted record was seen
	spans   map[agenttrace.ID]*node
	order   []*node // arrival order
	omitted int
}

// node is a span as the tree needs it: its snapshot without the payload
// bytes (the memory a buffered instance holds stays small) and the few
// fields shown from them.
type node struct {
	d        agenttrace.SpanData
	in       inputKeys
	out      resultKeys
	altered  bool // a payload carries an agenttrace marker or an error
	children []*node
}

// Option configures an Exporter.
type Option func(*Exporter)

// WithWriter sets where output goes (default os.Stdout). Each tree, and
// each batch of JSON lines, is one Write call.
func WithWriter(w io.Writer) Option { return func(e *Exporter) { e.w = w } }

// WithJSONLines writes one JSON object per record, as records arrive,
// instead of trees.
func WithJSONLines() Option { return func(e *Exporter) { e.jsonLines = true } }

// WithoutIDs leaves instance IDs out of tree headers, for output that is
// the same on every run (examples, golden tests). Trees never print span
// IDs.
func WithoutIDs() Option { return func(e *Exporter) { e.showIDs = false } }

// WithoutPayloads leaves span payloads and results out of JSON lines. Trees
// never print payloads, only the key fields listed in the package
// documentation.
func WithoutPayloads() Option { return func(e *Exporter) { e.payloads = false } }

// WithColor turns ANSI colors in trees on or off (default off): statuses in
// green, red, yellow or cyan, errors in red, names in bold, tree lines and
// IDs dimmed.
func WithColor(on bool) Option { return func(e *Exporter) { e.color = on } }

// WithMaxSpans bounds the spans kept per running instance (default
// DefaultMaxSpans, at least 1). Later spans are counted, and the tree says
// how many were left out.
func WithMaxSpans(n int) Option { return func(e *Exporter) { e.maxSpans = n } }

// New returns an exporter that writes trees to os.Stdout unless opts say
// otherwise.
func New(opts ...Option) *Exporter {
	e := &Exporter{
		w: os.Stdout, showIDs: true, payloads: true, maxSpans: DefaultMaxSpans,
		instances: map[agenttrace.ID]*instance{}, ended: map[agenttrace.ID]string{},
	}
	for _, o := range opts {
		if o != nil {
			o(e)
		}
	}
	if e.w == nil {
		e.w = io.Discard
	}
	if e.maxSpans < 1 {
		e.maxSpans = 1
	}
	return e
}

// Name returns "stdout", the exporter's name in agenttrace.Stats.
func (e *Exporter) Name() string { return "stdout" }

// Export writes JSON lines at once or, in tree mode, keeps span records
// until their instance ends and then writes its tree. It returns the first
// write error; the records of the batch are processed regardless.
func (e *Exporter) Export(_ context.Context, records []agenttrace.Record) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return ErrShutdown
	}
	if e.jsonLines {
		return e.exportJSON(records)
	}
	var firstErr error
	keep := func(err error) {
		if err != nil && firstErr == nil {
			firstErr = err
		}
	}
	for i := range records {
		r := &records[i]
		switch r.Kind {
		case agenttrace.InstanceStarted:
			if r.Instance == nil {
				continue
			}
			in := e.instance(r.Instance.ID)
			in.data, in.known = *r.Instance, true
		case agenttrace.InstanceEnded:
			if r.Instance == nil {
				continue
			}
			in := e.instance(r.Instance.ID)
			in.data, in.known = *r.Instance, true
			keep(e.writeTree(in, false))
			e.finished(in)
		case agenttrace.SpanStarted, agenttrace.SpanActivated, agenttrace.SpanEnded:
			if label, ok := e.ended[r.Span.InstanceID]; ok {
				if r.Span.Status.Finished() {
					keep(e.writeLate(label, &r.Span))
				}
				continue
			}
			e.addSpan(e.instance(r.Span.InstanceID), r)
		}
	}
	return firstErr
}

// exportJSON writes one line per record. A record that cannot be encoded
// (a NaN cost, say) is left out alone and reported in an
// *agenttrace.PartialError, so the tracer counts it failed; the rest of
// the batch is written.
func (e *Exporter) exportJSON(records []agenttrace.Record) error {
	e.buf.Reset()
	enc := json.NewEncoder(&e.buf)
	enc.SetEscapeHTML(false)
	var failed []int
	var errs []error
	for i := range records {
		r := records[i]
		if !e.payloads {
			r.Span.Payload, r.Span.Result = nil, nil
		}
		n := e.buf.Len()
		if err := enc.Encode(&r); err != nil {
			e.buf.Truncate(n)
			failed = append(failed, i)
			if len(errs) < 3 {
				errs = append(errs, fmt.Errorf("stdout: encoding a %s record: %w", r.Kind, err))
			}
		}
	}
	if err := e.write(); err != nil {
		return err
	}
	if len(failed) > 0 {
		return &agenttrace.PartialError{Failed: failed, Err: errors.Join(errs...)}
	}
	return nil
}

// maxKeptBuffer is the largest output buffer kept between writes.
const maxKeptBuffer = 1 << 20

// write writes e.buf in one call, then lets a large buffer go.
func (e *Exporter) write() error {
	_, err := e.w.Write(e.buf.Bytes())
	if e.buf.Cap() > maxKeptBuffer {
		e.buf = bytes.Buffer{}
	} else {
		e.buf.Reset()
	}
	return err
}

// instance returns the running instance id, creating a placeholder if its
// start was not seen.
func (e *Exporter) instance(id agenttrace.ID) *instance {
	in, ok := e.instances[id]
	if !ok {
		in = &instance{data: agenttrace.InstanceData{ID: id}, spans: map[agenttrace.ID]*node{}}
		e.instances[id] = in
		e.order = append(e.order, id)
	}
	return in
}

// addSpan merges a span record into its instance: a later record of a span
// replaces the snapshot of the earlier one.
func (e *Exporter) addSpan(in *instance, r *agenttrace.Record) {
	n, ok := in.spans[r.Span.ID]
	if !ok {
		if len(in.order) >= e.maxSpans {
			if r.Kind == agenttrace.SpanStarted {
				in.omitted++
			}
			return
		}
		n = &node{}
		in.spans[r.Span.ID] = n
		in.order = append(in.order, n)
	}
	n.merge(&r.Span)
}

// merge takes a span record's snapshot, keeping only the shown fields of
// its payloads.
func (n *node) merge(src *agenttrace.SpanData) {
	d := *src
	if n.d.ID.IsZero() && len(d.Payload) > 0 { // the payload is set once, at start
		n.in = inputKeys{}
		_ = json.Unmarshal(d.Payload, &n.in)
		n.altered = n.altered || n.in.Marker != nil
	}
	if len(d.Result) > 0 {
		n.out = resultKeys{}
		_ = json.Unmarshal(d.Result, &n.out)
		n.altered = n.altered || n.out.Marker != nil
	}
	if d.PayloadError != "" {
		n.altered = true
	}
	d.Payload, d.Result = nil, nil
	n.d = d
}

// finished forgets a printed instance, remembering its label for spans
// that end after it.
func (e *Exporter) finished(in *instance) {
	id := in.data.ID
	delete(e.instances, id)
	e.order = slices.DeleteFunc(e.order, func(x agenttrace.ID) bool { return x == id })
	if len(e.endedFIFO) >= maxEndedInstances {
		delete(e.ended, e.endedFIFO[0])
		e.endedFIFO = slices.Delete(e.endedFIFO, 0, 1)
	}
	e.ended[id] = e.instanceLabel(&in.data)
	e.endedFIFO = append(e.endedFIFO, id)
}

// Shutdown writes the trees of the instances that never ended, marked
// "(still running)", and returns the first write error. Later calls do
// nothing.
func (e *Exporter) Shutdown(context.Context) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return nil
	}
	e.closed = true
	var firstErr error
	for _, id := range e.order {
		if err := e.writeTree(e.instances[id], true); err != nil && firstErr == nil {
			firstErr = err
		}
	}
	e.instances, e.order, e.ended, e.endedFIFO = nil, nil, nil, nil
	return firstErr
}

// writeTree writes an instance's header and span tree in one Write.
func (e *Exporter) writeTree(in *instance, running bool) error {
	roots := in.tree()
	b := &e.buf
	b.Reset()
	e.header(b, in, running, len(roots) > 0 || in.omitted > 0)
	var walk func(list []*node, prefix string)
	walk = func(list []*node, prefix string) {
		for i, n := range list {
			branch, next := "├─ ", "│  "
			if i == len(list)-1 {
				branch, next = "└─ ", "   "
			}
			b.WriteString(e.dim(prefix + branch))
			e.spanLine(b, n)
			if !n.d.ParentID.IsZero() && in.spans[n.d.ParentID] == nil {
				b.WriteString(e.dim("  (parent not exported)"))
			}
			b.WriteByte('\n')
			walk(n.children, prefix+next)
		}
	}
	walk(roots, "")
	if in.omitted > 0 {
		fmt.Fprintf(b, "%s%d more spans not shown (WithMaxSpans %d)\n", e.dim("   … "), in.omitted, e.maxSpans)
	}
	return e.write()
}

// tree links the instance's spans to their parents and returns the roots,
// every list sorted by start time (then arrival).
func (in *instance) tree() []*node {
	var roots []*node
	for _, n := range in.order {
		n.children = n.children[:0]
	}
	for _, n := range in.order {
		if p := in.spans[n.d.ParentID]; p != nil && !n.d.ParentID.IsZero() {
			p.children = append(p.children, n)
		} else {
			roots = append(roots, n)
		}
	}
	byStart := func(a, b *node) int { return a.d.CreatedAt.Compare(b.d.CreatedAt) }
	slices.SortStableFunc(roots, byStart)
	for _, n := range in.order {
		slices.SortStableFunc(n.children, byStart)
	}
	return roots
}

// writeLate writes a span that finished after its instance was printed.
func (e *Exporter) writeLate(label string, d *agenttrace.SpanData) error {
	n := &node{}
	n.merge(d)
	b := &e.buf
	b.Reset()
	b.WriteString(e.dim("↳ ") + label + e.dim(": "))
	e.spanLine(b, n)
	b.WriteString(e.dim("  (ended after its instance)"))
	b.WriteByte('\n')
	return e.write()
}

// instanceLabel names an instance: agent name and version, and its ID
// unless WithoutIDs.
func (e *Exporter) instanceLabel(d *agenttrace.InstanceData) string {
	name := d.Agent.Name
	if name == "" {
		name = "agent"
	}
	if d.Agent.Version != "" {
		name += " " + d.Agent.Version
	}
	if d.Default {
		name += " (default instance)"
	}
	if e.showIDs {
		name += " instance " + d.ID.String()
	}
	return name
}

func (e *Exporter) header(b *bytes.Buffer, in *instance, running, hasTree bool) {
	sum := in.data.Summary
	if sum == nil || running {
		sum = in.localSummary()
	}
	bar := e.dim("│ ")
	if !hasTree {
		bar = "  "
	}
	e.headerTitle(b, in, running)
	e.headerRollups(b, in, sum, running, bar)
	e.headerParties(b, &in.data, bar)
}

// headerTitle writes the header's first line: who, how it ended, how long,
// which instance.
func (e *Exporter) headerTitle(b *bytes.Buffer, in *instance, running bool) {
	d := &in.data
	name := d.Agent.Name
	if name == "" {
		name = "agent"
	}
	if d.Agent.Version != "" {
		name += " " + d.Agent.Version
	}
	b.WriteString(e.bold("● " + name))
	if d.Default {
		b.WriteString(" (default instance)")
	}
	switch {
	case !in.known:
		b.WriteString("  " + e.status(agenttrace.StatusActive) + " (start not exported)")
	case running:
		b.WriteString("  " + e.status(d.Status) + " (still running)")
	default:
		b.WriteString("  " + e.status(d.Status))
		if !d.EndedAt.IsZero() && !d.StartedAt.IsZero() {
			b.WriteString("  " + fmtDur(d.EndedAt.Sub(d.StartedAt)))
		}
	}
	if e.showIDs {
		b.WriteString(e.dim("  instance " + d.ID.String()))
	}
	b.WriteByte('\n')
}

// headerRollups writes the header's second line: span counts, LLM calls,
// tokens, cost and time to first token.
func (e *Exporter) headerRollups(b *bytes.Buffer, in *instance, sum *agenttrace.Summary, running bool, bar string) {
	c := sum.Spans
	fmt.Fprintf(b, "%sspans %d", bar, c.Total)
	var parts []string
	for _, p := range []struct {
		n    int64
		name string
	}{{c.Complete, "complete"}, {c.Failed, "failed"}, {c.Cancelled, "cancelled"}, {c.Active, "active"}, {c.Pending, "pending"}} {
		if p.n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", p.n, p.name))
		}
	}
	if in.omitted > 0 && running {
		parts = append(parts, fmt.Sprintf("%d not shown", in.omitted))
	}
	if len(parts) > 0 {
		fmt.Fprintf(b, " (%s)", strings.Join(parts, ", "))
	}
	if sum.LLMCalls > 0 {
		fmt.Fprintf(b, "  llm calls %d", sum.LLMCalls)
	}
	if u := sum.Usage; u != nil {
		b.WriteString("  tokens " + fmtUsage(u))
	}
	if cost := sum.Cost; cost != nil {
		b.WriteString("  cost " + fmtCost(cost))
		if sum.CostMixedCurrency {
			b.WriteString(" (other currencies left out)")
		}
	}
	if sum.TimeToFirstToken > 0 {
		b.WriteString("  ttft " + fmtDur(sum.TimeToFirstToken))
	}
	b.WriteByte('\n')
}

// headerParties writes the run's name (quoted), who it was for, and its
// error, on lines of their own when there are any.
func (e *Exporter) headerParties(b *bytes.Buffer, d *agenttrace.InstanceData, bar string) {
	var ids []string
	if d.Name != "" {
		ids = append(ids, "name="+strconv.Quote(d.Name))
	}
	for _, kv := range [][2]string{{"user", d.UserID}, {"group", d.GroupID}, {"channel", d.Channel}, {"session", d.SessionID}} {
		if kv[1] != "" {
			ids = append(ids, kv[0]+"="+kv[1])
		}
	}
	if d.Purpose != "" && d.Purpose != agenttrace.PurposeLive {
		ids = append(ids, "purpose="+string(d.Purpose))
	}
	if len(ids) > 0 {
		b.WriteString(bar + strings.Join(ids, " ") + "\n")
	}
	if d.Error != nil {
		b.WriteString(bar + e.red("error: "+fmtError(d.Error)) + "\n")
	}
}

// localSummary rolls up the buffered spans of an instance that has not
// ended (its Summary only comes with InstanceEnded), the way the tracer
// does: counts by status, and usage, cost and time to first token of
// finished spans.
func (in *instance) localSummary() *agenttrace.Summary {
	s := &agenttrace.Summary{}
	if in.data.Summary != nil {
		s.CostMixedCurrency = in.data.Summary.CostMixedCurrency
	}
	var ttftStart time.Time
	s.Spans.Total = int64(len(in.order) + in.omitted)
	for _, n := range in.order {
		d := &n.d
		switch d.Status {
		case agenttrace.StatusPending:
			s.Spans.Pending++
		case agenttrace.StatusActive:
			s.Spans.Active++
		case agenttrace.StatusComplete:
			s.Spans.Complete++
		case agenttrace.StatusFailed:
			s.Spans.Failed++
		case agenttrace.StatusCancelled:
			s.Spans.Cancelled++
		}
		if t := d.TimeToFirstToken(); t > 0 && (ttftStart.IsZero() || d.StartedAt.Before(ttftStart)) {
			ttftStart, s.TimeToFirstToken = d.StartedAt, t
		}
		if !d.Status.Finished() {
			continue
		}
		if d.Type == agenttrace.TypeLLM || strings.HasSuffix(d.Type, ":llm") {
			s.LLMCalls++
		}
		if u := d.Usage; u != nil {
			if s.Usage == nil {
				s.Usage = &agenttrace.Usage{}
			}
			s.Usage.PromptTokens += u.PromptTokens
			s.Usage.CompletionTokens += u.CompletionTokens
			s.Usage.TotalTokens += u.TotalTokens
		}
		if c := d.Cost; c != nil {
			switch {
			case s.Cost == nil:
				s.Cost = &agenttrace.Cost{Currency: c.Currency}
			case s.Cost.Currency != c.Currency:
				s.CostMixedCurrency = true
				continue
			}
			s.Cost.Total += c.Total
		}
	}
	s.Spans.Finished = s.Spans.Complete + s.Spans.Failed + s.Spans.Cancelled
	return s
}

// inputKeys are the payload fields shown on a span's line.
type inputKeys struct {
	Model     string          `json:"model"`
	Provider  string          `json:"provider"`
	ToolName  string          `json:"tool_name"`
	CallID    string          `json:"call_id"`
	AgentName string          `json:"agent_name"`
	Name      string          `json:"name"`
	Stream    bool            `json:"stream"`
	Marker    json.RawMessage `json:"_agenttrace"`
}

// resultKeys are the result fields shown on a span's line.
type resultKeys struct {
	FinishReason string          `json:"finish_reason"`
	IsError      bool            `json:"is_error"`
	Marker       json.RawMessage `json:"_agenttrace"`
}

// spanLine writes one span: type, label, status, duration, details.
func (e *Exporter) spanLine(b *bytes.Buffer, n *node) {
	d, p := &n.d, &n.in
	b.WriteString(d.Type)
	label := d.Name
	if label == "" {
		label = firstNonEmpty(p.ToolName, p.AgentName, p.Model, p.Name)
	}
	if label != "" {
		b.WriteString(" " + e.bold(label))
	}
	b.WriteString("  " + e.status(d.Status))
	if dur := d.Duration(); dur > 0 || d.Status.Finished() && !d.StartedAt.IsZero() {
		b.WriteString("  " + fmtDur(dur))
	}

	var det []string
	add := func(k, v string) {
		if v != "" && v != label {
			det = append(det, k+"="+v)
		}
	}
	if p.Model != "" && !strings.Contains(label, p.Model) {
		add("model", p.Model)
	}
	add("provider", p.Provider)
	add("tool", p.ToolName)
	add("call", p.CallID)
	add("agent", p.AgentName)
	if p.Stream {
		det = append(det, "streamed")
	}
	if u := d.Usage; u != nil {
		det = append(det, "tokens "+fmtUsage(u))
	}
	if c := d.Cost; c != nil {
		det = append(det, "cost "+fmtCost(c))
	}
	if t := d.TimeToFirstToken(); t > 0 {
		det = append(det, "ttft "+fmtDur(t))
	}
	add("finish", n.out.FinishReason)
	if n.out.IsError {
		det = append(det, "tool returned an error")
	}
	if n.altered {
		det = append(det, "payload altered (truncated or unencodable)")
	}
	if len(det) > 0 {
		b.WriteString("  " + strings.Join(det, "  "))
	}
	if d.Error != nil && d.Status != agenttrace.StatusComplete {
		b.WriteString("  " + e.red("error: "+fmtError(d.Error)))
	}
}

// genericErrorTypes are error types that say nothing beyond the message.
var genericErrorTypes = map[string]bool{
	"": true, "error": true, "cancelled": true, "panic": true, "terminated": true,
	"*errors.errorString": true, "*fmt.wrapError": true, "*fmt.wrapErrors": true, "*errors.joinError": true,
}

// fmtError shows an error's message, then its type when the type says
// more than the message does.
func fmtError(info *agenttrace.ErrorInfo) string {
	switch {
	case genericErrorTypes[info.Type],
		info.Type == "context.DeadlineExceeded" && strings.Contains(info.Message, "deadline exceeded"),
		info.Type == "context.Canceled" && strings.Contains(info.Message, "canceled"):
		return info.Message
	}
	return info.Message + " (" + info.Type + ")"
}

func fmtUsage(u *agenttrace.Usage) string {
	total := u.TotalTokens
	if total == 0 {
		total = u.PromptTokens + u.CompletionTokens
	}
	return fmt.Sprintf("%d (%d in, %d out)", total, u.PromptTokens, u.CompletionTokens)
}

func fmtDur(d time.Duration) string {
	switch {
	case d <= 0:
		return "0s"
	case d < time.Millisecond:
		return d.Round(time.Microsecond).String()
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	case d < time.Minute:
		return d.Round(10 * time.Millisecond).String()
	default:
		return d.Round(time.Second).String()
	}
}

func fmtCost(c *agenttrace.Cost) string {
	prec := 4
	if c.Total != 0 && c.Total < 0.0001 && c.Total > -0.0001 {
		prec = 6
	}
	v := strconv.FormatFloat(c.Total, 'f', prec, 64)
	if c.Currency == "USD" || c.Currency == "" {
		return "$" + v
	}
	return v + " " + c.Currency
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

// ANSI styling, when WithColor is on.

func (e *Exporter) paint(code, s string) string {
	if !e.color || s == "" {
		return s
	}
	return "\x1b[" + code + "m" + s + "\x1b[0m"
}

func (e *Exporter) bold(s string) string { return e.paint("1", s) }
func (e *Exporter) dim(s string) string  { return e.paint("2", s) }
func (e *Exporter) red(s string) string  { return e.paint("31", s) }

func (e *Exporter) status(s agenttrace.Status) string {
	switch s {
	case agenttrace.StatusComplete:
		return e.paint("32", s.String())
	case agenttrace.StatusFailed, agenttrace.StatusTerminated:
		return e.paint("1;31", s.String())
	case agenttrace.StatusCancelled:
		return e.paint("33", s.String())
	default:
		return e.paint("36", s.String())
	}
}

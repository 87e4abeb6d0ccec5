// Package stdout is an agenttrace exporter for people: it prints each
// instance as an indented tree when the instance ends, or, with
// WithJSONLines, one JSON object per record as records arrive.
package stdout

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/agenttrace/agenttrace"
)

// DefaultMaxSpans is the number of spans kept per running instance before
// further ones are only counted.
const DefaultMaxSpans = 10000

// Exporter writes records to a writer. Create it with New.
type Exporter struct {
	mu        sync.Mutex
	w         io.Writer
	jsonLines bool
	showIDs   bool
	maxSpans  int
	instances map[agenttrace.ID]*instance
	order     []agenttrace.ID // instances in start order
	closed    bool
}

type instance struct {
	data    agenttrace.InstanceData
	spans   map[agenttrace.ID]*agenttrace.SpanData
	order   []agenttrace.ID
	omitted int
}

// Option configures an Exporter.
type Option func(*Exporter)

// WithWriter sets where output goes (default os.Stdout).
func WithWriter(w io.Writer) Option { return func(e *Exporter) { e.w = w } }

// WithJSONLines writes one JSON object per record, as records arrive,
// instead of trees.
func WithJSONLines() Option { return func(e *Exporter) { e.jsonLines = true } }

// WithoutIDs leaves instance IDs out of the tree headers (for deterministic
// output in examples and tests).
func WithoutIDs() Option { return func(e *Exporter) { e.showIDs = false } }

// WithMaxSpans bounds the spans kept per running instance (default
// DefaultMaxSpans); the tree says how many more there were.
func WithMaxSpans(n int) Option { return func(e *Exporter) { e.maxSpans = n } }

// New returns an exporter writing trees to os.Stdout unless opts say
// otherwise.
func New(opts ...Option) *Exporter {
	e := &Exporter{w: os.Stdout, showIDs: true, maxSpans: DefaultMaxSpans, instances: map[agenttrace.ID]*instance{}}
	for _, o := range opts {
		o(e)
	}
	if e.maxSpans < 1 {
		e.maxSpans = 1
	}
	return e
}

// Name returns "stdout".
func (e *Exporter) Name() string { return "stdout" }

// Export writes JSON lines at once, or buffers span records until their
// instance ends and then writes its tree. It returns write errors.
func (e *Exporter) Export(_ context.Context, records []agenttrace.Record) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.jsonLines {
		enc := json.NewEncoder(e.w)
		enc.SetEscapeHTML(false)
		for i := range records {
			if err := enc.Encode(&records[i]); err != nil {
				return err
			}
		}
		return nil
	}
	for i := range records {
		r := &records[i]
		switch r.Kind {
		case agenttrace.InstanceStarted:
			if _, ok := e.instances[r.Instance.ID]; !ok {
				e.instances[r.Instance.ID] = &instance{data: *r.Instance, spans: map[agenttrace.ID]*agenttrace.SpanData{}}
				e.order = append(e.order, r.Instance.ID)
			}
		case agenttrace.InstanceEnded:
			in := e.instance(r.Instance.ID)
			in.data = *r.Instance
			err := e.write(in, false)
			e.forget(r.Instance.ID)
			if err != nil {
				return err
			}
		default:
			in := e.instance(r.Span.InstanceID)
			if sd, ok := in.spans[r.Span.ID]; ok {
				*sd = r.Span
			} else if len(in.spans) < e.maxSpans {
				sd := r.Span
				in.spans[sd.ID] = &sd
				in.order = append(in.order, sd.ID)
			} else if r.Kind == agenttrace.SpanStarted {
				in.omitted++
			}
		}
	}
	return nil
}

func (e *Exporter) instance(id agenttrace.ID) *instance {
	in, ok := e.instances[id]
	if !ok {
		in = &instance{data: agenttrace.InstanceData{ID: id}, spans: map[agenttrace.ID]*agenttrace.SpanData{}}
		e.instances[id] = in
		e.order = append(e.order, id)
	}
	return in
}

func (e *Exporter) forget(id agenttrace.ID) {
	delete(e.instances, id)
	e.order = slices.DeleteFunc(e.order, func(x agenttrace.ID) bool { return x == id })
}

// Shutdown writes the trees of instances that never ended.
func (e *Exporter) Shutdown(context.Context) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return nil
	}
	e.closed = true
	var firstErr error
	for _, id := range e.order {
		if err := e.write(e.instances[id], true); err != nil && firstErr == nil {
			firstErr = err
		}
	}
	e.instances, e.order = map[agenttrace.ID]*instance{}, nil
	return firstErr
}

func (e *Exporter) write(in *instance, running bool) error {
	var b strings.Builder
	e.header(&b, in, running)
	children := map[agenttrace.ID][]*agenttrace.SpanData{}
	var roots []*agenttrace.SpanData
	for _, id := range in.order {
		sd := in.spans[id]
		if _, ok := in.spans[sd.ParentID]; sd.ParentID.IsZero() || !ok {
			roots = append(roots, sd)
		} else {
			children[sd.ParentID] = append(children[sd.ParentID], sd)
		}
	}
	byStart := func(a, b *agenttrace.SpanData) int { return a.CreatedAt.Compare(b.CreatedAt) }
	slices.SortStableFunc(roots, byStart)
	for k := range children {
		slices.SortStableFunc(children[k], byStart)
	}
	var walk func(list []*agenttrace.SpanData, prefix string)
	walk = func(list []*agenttrace.SpanData, prefix string) {
		for i, sd := range list {
			last := i == len(list)-1
			branch, next := "├─ ", "│  "
			if last {
				branch, next = "└─ ", "   "
			}
			b.WriteString(prefix + branch + spanLine(sd))
			if !sd.ParentID.IsZero() {
				if _, ok := in.spans[sd.ParentID]; !ok {
					b.WriteString("  (parent not exported)")
				}
			}
			b.WriteByte('\n')
			walk(children[sd.ID], prefix+next)
		}
	}
	walk(roots, "")
	if in.omitted > 0 {
		fmt.Fprintf(&b, "   … %d more spans not shown\n", in.omitted)
	}
	_, err := io.WriteString(e.w, b.String())
	return err
}

func (e *Exporter) header(b *strings.Builder, in *instance, running bool) {
	d := in.data
	name := d.Agent.Name
	if name == "" {
		name = "agent"
	}
	if d.Default {
		name += " (default instance)"
	}
	fmt.Fprintf(b, "● %s", name)
	if d.Agent.Version != "" {
		fmt.Fprintf(b, " %s", d.Agent.Version)
	}
	if e.showIDs {
		fmt.Fprintf(b, " [%s]", d.ID)
	}
	status := d.Status.String()
	if running {
		status = "still running"
	}
	fmt.Fprintf(b, "  %s", status)
	if s := d.Summary; s != nil {
		fmt.Fprintf(b, "  %s", fmtDur(s.Duration(s.EndedAt)))
		c := s.Spans
		fmt.Fprintf(b, "  spans %d", c.Total)
		var parts []string
		for _, p := range []struct {
			n    int64
			name string
		}{{c.Complete, "complete"}, {c.Failed, "failed"}, {c.Cancelled, "cancelled"}, {c.Active, "active"}, {c.Pending, "pending"}} {
			if p.n > 0 {
				parts = append(parts, fmt.Sprintf("%d %s", p.n, p.name))
			}
		}
		if len(parts) > 0 {
			fmt.Fprintf(b, " (%s)", strings.Join(parts, ", "))
		}
		if u := s.Usage; u != nil {
			fmt.Fprintf(b, "  tokens %d (%d in, %d out)", u.TotalTokens, u.PromptTokens, u.CompletionTokens)
		}
		if c := s.Cost; c != nil {
			fmt.Fprintf(b, "  cost %s", fmtCost(*c))
		}
		if s.TimeToFirstToken > 0 {
			fmt.Fprintf(b, "  ttft %s", fmtDur(s.TimeToFirstToken))
		}
	}
	var ids []string
	for _, kv := range [][2]string{{"user", d.UserID}, {"group", d.GroupID}, {"channel", d.Channel}, {"session", d.SessionID}} {
		if kv[1] != "" {
			ids = append(ids, kv[0]+"="+kv[1])
		}
	}
	if d.Purpose != "" && d.Purpose != agenttrace.PurposeLive {
		ids = append(ids, "purpose="+string(d.Purpose))
	}
	if len(ids) > 0 {
		fmt.Fprintf(b, "  %s", strings.Join(ids, " "))
	}
	if d.Error != nil {
		fmt.Fprintf(b, "  error: %s", d.Error.Message)
	}
	b.WriteByte('\n')
}

// keyFields are the payload fields shown on a span's line.
type keyFields struct {
	Model        string          `json:"model"`
	Provider     string          `json:"provider"`
	ToolName     string          `json:"tool_name"`
	CallID       string          `json:"call_id"`
	AgentName    string          `json:"agent_name"`
	Name         string          `json:"name"`
	FinishReason string          `json:"finish_reason"`
	Stream       bool            `json:"stream"`
	Marker       json.RawMessage `json:"_agenttrace"`
}

func spanLine(sd *agenttrace.SpanData) string {
	var p, r keyFields
	_ = json.Unmarshal(sd.Payload, &p)
	_ = json.Unmarshal(sd.Result, &r)
	var b strings.Builder
	b.WriteString(sd.Type)
	label := sd.Name
	if label == "" {
		switch {
		case p.ToolName != "":
			label = p.ToolName
		case p.AgentName != "":
			label = p.AgentName
		case p.Model != "":
			label = p.Model
		case p.Name != "":
			label = p.Name
		}
	}
	if label != "" {
		b.WriteString(" " + label)
	}
	b.WriteString("  " + sd.Status.String())
	if d := sd.Duration(); d > 0 {
		b.WriteString(" " + fmtDur(d))
	}
	if sd.Name != "" && p.Model != "" && !strings.Contains(sd.Name, p.Model) {
		b.WriteString("  model=" + p.Model)
	}
	if p.Provider != "" {
		b.WriteString("  provider=" + p.Provider)
	}
	if p.CallID != "" {
		b.WriteString("  call=" + p.CallID)
	}
	if u := sd.Usage; u != nil {
		fmt.Fprintf(&b, "  tokens %d/%d", u.PromptTokens, u.CompletionTokens)
	}
	if c := sd.Cost; c != nil {
		b.WriteString("  cost " + fmtCost(*c))
	}
	if t := sd.TimeToFirstToken(); t > 0 {
		b.WriteString("  ttft " + fmtDur(t))
	}
	if r.FinishReason != "" {
		b.WriteString("  finish=" + r.FinishReason)
	}
	if sd.Error != nil {
		fmt.Fprintf(&b, "  error: %s: %s", sd.Error.Type, sd.Error.Message)
	}
	if len(p.Marker) > 0 || len(r.Marker) > 0 || sd.PayloadError != "" {
		b.WriteString("  [payload altered: truncated or unencodable]")
	}
	return b.String()
}

func fmtDur(d time.Duration) string {
	switch {
	case d <= 0:
		return "0s"
	case d < time.Millisecond:
		return d.Round(time.Microsecond).String()
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	default:
		return d.Round(10 * time.Millisecond).String()
	}
}

func fmtCost(c agenttrace.Cost) string {
	if c.Currency == "USD" || c.Currency == "" {
		return fmt.Sprintf("$%.4f", c.Total)
	}
	return fmt.Sprintf("%.4f %s", c.Total, c.Currency)
}

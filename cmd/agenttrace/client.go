package main

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/agenttrace/agenttrace"
	"github.com/agenttrace/agenttrace/cmd/agenttrace/internal/server"
	"github.com/agenttrace/agenttrace/exporter/stdout"
	"github.com/agenttrace/agenttrace/internal/prefactorapi"
)

// reader talks to the API: of a running server (--server), or of the
// database in this process (--db), through the same handler.
type reader struct {
	base  string
	token string
	hc    *http.Client
	close func()
}

type readerFlags struct {
	storeFlags
	server string
	token  string
	asJSON bool
}

func (f *readerFlags) register(fl *flag.FlagSet) {
	f.storeFlags.register(fl)
	fl.StringVar(&f.server, "server", "", "read from the server at this URL instead of the database")
	fl.StringVar(&f.token, "token", os.Getenv("AGENTTRACE_TOKEN"), "the server's token (with --server; default $AGENTTRACE_TOKEN, else the one saved beside --db)")
	fl.BoolVar(&f.asJSON, "json", false, "print the API's JSON answer")
}

type handlerTransport struct{ h http.Handler }

func (t handlerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	rec := httptest.NewRecorder()
	if r.Body == nil {
		r.Body = http.NoBody
	}
	t.h.ServeHTTP(rec, r)
	return rec.Result(), nil
}

func (f *readerFlags) open(ctx context.Context) (*reader, error) {
	if f.server != "" {
		tok := f.token
		if tok == "" {
			if b, err := os.ReadFile(tokenPath(f.tokenFile())); err == nil {
				tok = strings.TrimSpace(string(b))
			}
		}
		return &reader{base: strings.TrimRight(f.server, "/"), token: tok, hc: &http.Client{Timeout: 30 * time.Second}, close: func() {}}, nil
	}
	if _, err := os.Stat(f.db); err != nil && !isPostgres(f.db) {
		return nil, fmt.Errorf("no database at %s (start the server with \"agenttrace serve\", or pass --db or --server)", f.db)
	}
	st, err := f.storeFlags.open(ctx)
	if err != nil {
		return nil, err
	}
	var raw [16]byte
	_, _ = rand.Read(raw[:])
	tok := hex.EncodeToString(raw[:])
	srv, err := server.New(server.Config{Store: st, Token: tok})
	if err != nil {
		_ = st.Close()
		return nil, err
	}
	return &reader{base: "http://agenttrace.local", token: tok, hc: &http.Client{Transport: handlerTransport{srv}},
		close: func() { _ = st.Close() }}, nil
}

// get fetches path and decodes the JSON answer into v; an error answer
// becomes an error with its message.
func (r *reader) get(ctx context.Context, path string, v any) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.base+path, nil)
	if err != nil {
		return nil, err
	}
	if r.token != "" {
		req.Header.Set("Authorization", "Bearer "+r.token)
	}
	resp, err := r.hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 256<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Message, Detail string
		}
		_ = json.Unmarshal(body, &e)
		msg := e.Message + e.Detail
		if msg == "" {
			msg = strings.TrimSpace(string(body))
		}
		return nil, fmt.Errorf("%s: %s", resp.Status, msg)
	}
	return body, json.Unmarshal(body, v)
}

func newFlagSet(name, usageLine, about string, stderr io.Writer) *flag.FlagSet {
	fl := flag.NewFlagSet(name, flag.ContinueOnError)
	fl.SetOutput(stderr)
	fl.Usage = func() {
		fmt.Fprintf(fl.Output(), "Usage: %s\n\n%s\n\nFlags:\n", usageLine, about)
		fl.PrintDefaults()
	}
	return fl
}

func list(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fl := newFlagSet("list", "agenttrace list [--agent CODE] [--version V] [--user U] [--group G] [--search S] [--page N] [flags]",
		"Lists runs (the /api/v2/AgentInstance listing), latest first.", stderr)
	var rf readerFlags
	rf.register(fl)
	agent := fl.String("agent", "", "the agent: its ID, external identifier or name (default: the only agent)")
	version := fl.String("version", "", "the agent version: its number (1 for the first) or external identifier")
	user := fl.String("user", "", "only the runs of this user identifier")
	group := fl.String("group", "", "only the runs of this group identifier")
	search := fl.String("search", "", "only the runs whose name contains every word of this")
	page := fl.Int("page", 1, "the page, from 1")
	pageSize := fl.Int("page-size", 20, "runs per page (at most 100)")
	asc := fl.Bool("asc", false, "earliest first")
	if err := fl.Parse(args); err != nil {
		return err
	}
	if fl.NArg() > 0 {
		fl.Usage()
		return errUsage
	}
	r, err := rf.open(ctx)
	if err != nil {
		return err
	}
	defer r.close()
	if *agent == "" {
		id, err := onlyAgent(ctx, r)
		if err != nil {
			return err
		}
		if id == "" {
			fmt.Fprintln(stdout, "no agents yet")
			return nil
		}
		*agent = id
	}
	p := "/api/v2/AgentInstance/" + url.PathEscape(*agent)
	if *version != "" {
		p += "/" + url.PathEscape(*version)
	}
	q := url.Values{"page": {strconv.Itoa(*page)}, "pageSize": {strconv.Itoa(*pageSize)}}
	for k, v := range map[string]string{"userIdentifier": *user, "groupIdentifier": *group, "search": *search} {
		if v != "" {
			q.Set(k, v)
		}
	}
	if *asc {
		q.Set("sort", "asc")
	}
	var out server.RunPage
	raw, err := r.get(ctx, p+"?"+q.Encode(), &out)
	if err != nil {
		return err
	}
	if rf.asJSON {
		_, err := stdout.Write(append(raw, '\n'))
		return err
	}
	return printRuns(stdout, &out)
}

// onlyAgent returns the ID of the server's only agent, "" if it has none,
// and an error naming them if it has several.
func onlyAgent(ctx context.Context, r *reader) (string, error) {
	var agents struct {
		Summaries []prefactorapi.AgentDetails `json:"summaries"`
	}
	if _, err := r.get(ctx, "/api/v1/agent?pagination[page_size]=100", &agents); err != nil {
		return "", err
	}
	switch len(agents.Summaries) {
	case 0:
		return "", nil
	case 1:
		return agents.Summaries[0].ID, nil
	}
	names := make([]string, len(agents.Summaries))
	for i, a := range agents.Summaries {
		names[i] = a.Name
	}
	return "", fmt.Errorf("several agents (%s): pass --agent", strings.Join(names, ", "))
}

// printRuns prints a page of the run listing as a table.
func printRuns(w io.Writer, out *server.RunPage) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tVER\tSTART\tDURATION\tUSER\tGROUP\tCHANNEL\tTOKENS\tCOST\tTTFT")
	for _, it := range out.Items {
		dur := "running"
		if it.EndDate != nil {
			s, _ := time.Parse(time.RFC3339, it.StartDate)
			e, _ := time.Parse(time.RFC3339, *it.EndDate)
			dur = e.Sub(s).Round(time.Millisecond).String()
		}
		cost := "-"
		if it.Costs.Currency != nil {
			cost = strconv.FormatFloat(it.Costs.Total, 'f', -1, 64) + " " + *it.Costs.Currency
		}
		ttft := "-"
		if it.TimeToFirstToken != nil {
			ttft = strconv.FormatInt(*it.TimeToFirstToken, 10) + "ms"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\n", it.ID, dash(it.Name), it.AgentVersion, it.StartDate, dur,
			dash(it.UserIdentifier), dash(it.GroupIdentifier), dash(it.Channel), it.Usage.TotalTokens, cost, ttft)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	pages := max((out.Total+out.PageSize-1)/out.PageSize, 1)
	fmt.Fprintf(w, "page %d of %d, %d runs\n", out.Page, pages, out.Total)
	return nil
}

func dash(s *string) string {
	if s == nil || *s == "" {
		return "-"
	}
	return *s
}

func agents(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fl := newFlagSet("agents", "agenttrace agents [flags]", "Lists the agents with their instance counts.", stderr)
	var rf readerFlags
	rf.register(fl)
	if err := fl.Parse(args); err != nil {
		return err
	}
	if fl.NArg() > 0 {
		fl.Usage()
		return errUsage
	}
	r, err := rf.open(ctx)
	if err != nil {
		return err
	}
	defer r.close()
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tSTATUS\tRUNS\tACTIVE\tFAILED\tCURRENT VERSION")
	for off := 0; ; off += 100 {
		var page struct {
			Summaries  []prefactorapi.AgentDetails `json:"summaries"`
			Pagination prefactorapi.Pagination     `json:"pagination"`
		}
		raw, err := r.get(ctx, fmt.Sprintf("/api/v1/agent?pagination[offset]=%d&pagination[page_size]=100", off), &page)
		if err != nil {
			return err
		}
		if rf.asJSON {
			if _, err := stdout.Write(append(raw, '\n')); err != nil {
				return err
			}
		}
		for _, a := range page.Summaries {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%d\t%s\n", a.ID, a.Name, a.Status, a.InstanceCounts.Total,
				a.InstanceCounts.Active, a.InstanceCounts.Failed, dash(a.CurrentVersionID))
		}
		if page.Pagination.NextPageOffset == nil {
			break
		}
	}
	if rf.asJSON {
		return nil
	}
	return tw.Flush()
}

func show(ctx context.Context, args []string, out, stderr io.Writer) error {
	fl := newFlagSet("show", "agenttrace show [flags] ID", "Shows one run as a tree (the stdout exporter's).", stderr)
	var rf readerFlags
	rf.register(fl)
	if err := fl.Parse(args); err != nil {
		return err
	}
	if fl.NArg() != 1 {
		fl.Usage()
		return errUsage
	}
	id := fl.Arg(0)
	if !prefactorapi.ValidPFID(id) {
		return fmt.Errorf("%q is not a run ID", id)
	}
	r, err := rf.open(ctx)
	if err != nil {
		return err
	}
	defer r.close()
	var inst struct {
		Details prefactorapi.InstanceDetails `json:"details"`
	}
	rawInst, err := r.get(ctx, "/api/v1/agent_instance/"+id, &inst)
	if err != nil {
		return err
	}
	var spans []prefactorapi.SpanDetails
	for off := 0; ; off += 100 {
		var page struct {
			Summaries  []prefactorapi.SpanDetails `json:"summaries"`
			Pagination prefactorapi.Pagination    `json:"pagination"`
		}
		if _, err := r.get(ctx, fmt.Sprintf("/api/v1/agent_spans?agent_instance_id=%s&include_summaries=true&pagination[offset]=%d&pagination[page_size]=100", id, off), &page); err != nil {
			return err
		}
		spans = append(spans, page.Summaries...)
		if page.Pagination.NextPageOffset == nil {
			break
		}
	}
	if rf.asJSON {
		b, err := json.Marshal(map[string]any{"instance": json.RawMessage(rawInst), "spans": spans})
		if err != nil {
			return err
		}
		_, err = out.Write(append(b, '\n'))
		return err
	}
	agentName := inst.Details.AgentID
	var ag struct {
		Details prefactorapi.AgentDetails `json:"details"`
	}
	if _, err := r.get(ctx, "/api/v1/agent/"+inst.Details.AgentID, &ag); err == nil {
		agentName = ag.Details.Name
	}
	fmt.Fprintf(out, "run %s\n", id)
	return renderTree(ctx, out, agentName, &inst.Details, spans)
}

// ulidOf maps a PFID to the agenttrace ID with the same time and
// randomness (a PFID is a ULID with a partition inserted).
func ulidOf(pfid string) agenttrace.ID {
	if len(pfid) != 32 {
		return agenttrace.ID{}
	}
	id, _ := agenttrace.ParseID(strings.ToUpper(pfid[:10] + pfid[16:]))
	return id
}

func parseTS(s *string) time.Time {
	if s == nil {
		return time.Time{}
	}
	t, _ := time.Parse(time.RFC3339Nano, *s)
	return t
}

var statuses = map[string]agenttrace.Status{"pending": agenttrace.StatusPending, "active": agenttrace.StatusActive,
	"complete": agenttrace.StatusComplete, "failed": agenttrace.StatusFailed, "cancelled": agenttrace.StatusCancelled,
	"terminated": agenttrace.StatusTerminated}

// runParties are the run's fields the Prefactor API has no place for,
// which the exporter sends in an "instance" object of a root span's
// payload: the first root span that has each one gives it.
type runParties struct {
	Name      string `json:"name"`
	UserID    string `json:"user_id"`
	GroupID   string `json:"group_id"`
	Channel   string `json:"channel"`
	SessionID string `json:"session_id"`
}

func (p *runParties) from(payload json.RawMessage) {
	var v struct {
		Instance *runParties `json:"instance"`
	}
	if json.Unmarshal(payload, &v) != nil || v.Instance == nil {
		return
	}
	p.Name = cmp.Or(p.Name, v.Instance.Name)
	p.UserID = cmp.Or(p.UserID, v.Instance.UserID)
	p.GroupID = cmp.Or(p.GroupID, v.Instance.GroupID)
	p.Channel = cmp.Or(p.Channel, v.Instance.Channel)
	p.SessionID = cmp.Or(p.SessionID, v.Instance.SessionID)
}

// spanDataOf is a stored span as the stdout exporter takes it: its summary
// as its name, its usage, cost and error from its result.
func spanDataOf(instanceID string, sp *prefactorapi.SpanDetails) agenttrace.SpanData {
	d := agenttrace.SpanData{ID: ulidOf(sp.ID), InstanceID: ulidOf(instanceID), Type: sp.SchemaName, Status: statuses[sp.Status],
		CreatedAt: parseTS(sp.InsertedAt), StartedAt: parseTS(sp.StartedAt), EndedAt: parseTS(sp.FinishedAt),
		Payload: sp.Payload, Result: sp.ResultPayload}
	if sp.ParentSpanID != nil {
		d.ParentID = ulidOf(*sp.ParentSpanID)
	}
	if sp.Summary != nil {
		d.Name = *sp.Summary
	}
	var res struct {
		TokenUsage *agenttrace.Usage `json:"token_usage"`
		Cost       *agenttrace.Cost  `json:"cost"`
		Error      *agenttrace.ErrorInfo
	}
	_ = json.Unmarshal(sp.ResultPayload, &res)
	d.Usage, d.Cost, d.Error = res.TokenUsage, res.Cost, res.Error
	return d
}

// addToSummary rolls d into sum as the tracer does: usage and cost of
// spans other than agent spans (costs in the first currency seen), LLM
// calls finished, spans by status.
func addToSummary(sum *agenttrace.Summary, d *agenttrace.SpanData) {
	if d.Usage != nil && d.Type != "agent" {
		if sum.Usage == nil {
			sum.Usage = &agenttrace.Usage{}
		}
		sum.Usage.PromptTokens += d.Usage.PromptTokens
		sum.Usage.CompletionTokens += d.Usage.CompletionTokens
		sum.Usage.TotalTokens += max(d.Usage.TotalTokens, d.Usage.PromptTokens+d.Usage.CompletionTokens)
	}
	if d.Cost != nil && d.Type != "agent" {
		if sum.Cost == nil {
			sum.Cost = &agenttrace.Cost{Currency: d.Cost.Currency}
		}
		if d.Cost.Currency == sum.Cost.Currency || d.Cost.Currency == "" {
			sum.Cost.Prompt += d.Cost.Prompt
			sum.Cost.Completion += d.Cost.Completion
			sum.Cost.Other += d.Cost.Other
			sum.Cost.Total += d.Cost.Total
		}
	}
	if d.IsLLM() && d.Status.Finished() {
		sum.LLMCalls++
	}
	sum.Spans.Total++
	switch d.Status {
	case agenttrace.StatusPending:
		sum.Spans.Pending++
	case agenttrace.StatusActive:
		sum.Spans.Active++
	case agenttrace.StatusComplete:
		sum.Spans.Complete++
	case agenttrace.StatusFailed:
		sum.Spans.Failed++
	case agenttrace.StatusCancelled:
		sum.Spans.Cancelled++
	}
}

// renderTree prints a stored run with the stdout exporter.
func renderTree(ctx context.Context, w io.Writer, agentName string, in *prefactorapi.InstanceDetails, spans []prefactorapi.SpanDetails) error {
	var buf bytes.Buffer
	exp := stdout.New(stdout.WithWriter(&buf), stdout.WithoutIDs())
	sum := &agenttrace.Summary{InstanceID: ulidOf(in.ID), Agent: agenttrace.Agent{Name: agentName}, Status: statuses[in.Status],
		StartedAt: parseTS(in.StartedAt), EndedAt: parseTS(in.FinishedAt)}
	recs := make([]agenttrace.Record, 0, len(spans)+1)
	var parties runParties
	for i := range spans {
		sp := &spans[i]
		if sp.ParentSpanID == nil {
			parties.from(sp.Payload)
		}
		d := spanDataOf(in.ID, sp)
		addToSummary(sum, &d)
		recs = append(recs, agenttrace.Record{Kind: agenttrace.SpanStarted, Span: d})
	}
	sum.Spans.Finished = sum.Spans.Complete + sum.Spans.Failed + sum.Spans.Cancelled
	idata := &agenttrace.InstanceData{ID: ulidOf(in.ID), Agent: agenttrace.Agent{Name: agentName}, Status: statuses[in.Status],
		StartedAt: sum.StartedAt, EndedAt: sum.EndedAt, Summary: sum, Name: parties.Name, UserID: parties.UserID,
		GroupID: parties.GroupID, Channel: parties.Channel, SessionID: parties.SessionID}
	if in.Status == "pending" || in.Status == "active" {
		recs = append(recs, agenttrace.Record{Kind: agenttrace.InstanceStarted, Instance: idata})
		if err := exp.Export(ctx, recs); err != nil {
			return err
		}
		if err := exp.Shutdown(ctx); err != nil {
			return err
		}
	} else {
		recs = append(recs, agenttrace.Record{Kind: agenttrace.InstanceEnded, Instance: idata})
		if err := exp.Export(ctx, recs); err != nil {
			return err
		}
		_ = exp.Shutdown(ctx)
	}
	_, err := w.Write(buf.Bytes())
	return err
}

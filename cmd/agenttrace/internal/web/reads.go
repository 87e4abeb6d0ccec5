package web

import (
	"context"
	"encoding/json"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/agenttrace/agenttrace/cmd/agenttrace/internal/sqlitestore"
	"github.com/agenttrace/agenttrace/internal/prefactorapi"
)

// The viewer's reads. They are the server's reads (prefactorapi's store
// queries and its instance and span details), shaped for the pages: the
// v1 and 003 listings cannot filter by status or time, nor return a run's
// spans in one answer, nor aggregate an agent's versions.

// RunUsage is a run's token usage (the 003 listing's usage).
type RunUsage struct {
	PromptTokens     int64 `json:"promptTokens"`
	CompletionTokens int64 `json:"completionTokens"`
	TotalTokens      int64 `json:"totalTokens"`
}

// RunCosts is a run's cost (the 003 listing's costs).
type RunCosts struct {
	Prompt     float64 `json:"prompt"`
	Completion float64 `json:"completion"`
	Services   float64 `json:"services"`
	Total      float64 `json:"total"`
	Currency   string  `json:"currency"`
}

// Run is one row of the runs page.
type Run struct {
	ID              string                         `json:"id"`
	Name            string                         `json:"name"`
	AgentID         string                         `json:"agentId"`
	AgentName       string                         `json:"agentName"`
	VersionID       string                         `json:"versionId"`
	AgentVersion    int                            `json:"agentVersion"`
	VersionName     string                         `json:"versionName"`
	Status          string                         `json:"status"`
	UserIdentifier  string                         `json:"userIdentifier"`
	GroupIdentifier string                         `json:"groupIdentifier"`
	Channel         string                         `json:"channel"`
	SessionID       string                         `json:"sessionId"`
	InsertedAt      *string                        `json:"insertedAt"`
	StartDate       *string                        `json:"startDate"`
	EndDate         *string                        `json:"endDate"`
	DurationMillis  *int64                         `json:"durationMs"`
	TTFTMillis      *int64                         `json:"timeToFirstToken"`
	SpanCounts      prefactorapi.SpanCountsDetails `json:"spanCounts"`
	Usage           RunUsage                       `json:"usage"`
	Costs           RunCosts                       `json:"costs"`
}

// RunPage is one page of runs.
type RunPage struct {
	Items    []Run `json:"items"`
	Total    int   `json:"total"`
	Page     int   `json:"page"`
	PageSize int   `json:"pageSize"`
	// Scanned counts the instances read to answer (status and time
	// filters are applied to the store's listing as it is read).
	Scanned int `json:"scanned"`
}

// RunQuery selects runs: the 003 listing's filters plus status and a
// start-time range.
type RunQuery struct {
	prefactorapi.InstanceQuery
	// Statuses keeps instances in one of these statuses (none: all).
	Statuses []string
	// From and To bound the start (else registration) time, inclusive;
	// zero does not bound.
	From, To time.Time
	Page     int
	PageSize int
}

// MaxRunPageSize caps a page of runs.
const MaxRunPageSize = 200

// errBadQuery is a query parameter the viewer reads cannot use.
type errBadQuery struct{ param, msg string }

func (e *errBadQuery) Error() string { return e.param + ": " + e.msg }

// parseRunQuery reads a RunQuery from URL parameters: agent, version,
// user, group, search, status (comma-separated), from, to (RFC 3339),
// sort (asc, desc), page, pageSize.
func parseRunQuery(v map[string][]string) (RunQuery, error) {
	get := func(k string) string {
		if s := v[k]; len(s) > 0 {
			return strings.TrimSpace(s[0])
		}
		return ""
	}
	q := RunQuery{Page: 1, PageSize: 20}
	q.AgentID, q.VersionID = get("agent"), get("version")
	q.UserID, q.GroupID, q.Search = get("user"), get("group"), get("search")
	q.Order = prefactorapi.ByStartDesc
	switch get("sort") {
	case "", "desc":
	case "asc":
		q.Order = prefactorapi.ByStartAsc
	default:
		return q, &errBadQuery{"sort", "asc or desc"}
	}
	if s := get("status"); s != "" {
		for _, st := range strings.Split(s, ",") {
			switch st {
			case "pending", "active", "complete", "failed", "cancelled", "terminated":
				q.Statuses = append(q.Statuses, st)
			default:
				return q, &errBadQuery{"status", "pending, active, complete, failed, cancelled or terminated"}
			}
		}
	}
	for _, b := range []struct {
		k string
		t *time.Time
	}{{"from", &q.From}, {"to", &q.To}} {
		if s := get(b.k); s != "" {
			t, err := time.Parse(time.RFC3339Nano, s)
			if err != nil {
				return q, &errBadQuery{b.k, "an RFC 3339 time"}
			}
			*b.t = t.UTC()
		}
	}
	for _, n := range []struct {
		k   string
		dst *int
		max int
	}{{"page", &q.Page, 1 << 30}, {"pageSize", &q.PageSize, MaxRunPageSize}} {
		if s := get(n.k); s != "" {
			i, err := strconv.Atoi(s)
			if err != nil || i < 1 || i > n.max {
				return q, &errBadQuery{n.k, "an integer from 1 to " + strconv.Itoa(n.max)}
			}
			*n.dst = i
		}
	}
	return q, nil
}

// scanChunk is how many instances a filtered listing reads per store query.
const scanChunk = 1000

// runLister is a store that evaluates the status and time filters in its
// own query (sqlitestore.Store).
type runLister interface {
	ListRuns(ctx context.Context, f sqlitestore.RunFilter) ([]prefactorapi.InstanceRecord, int, error)
}

// listRuns answers a RunQuery. A store with ListRuns answers it in one
// query. For other stores, without status or time filters it is one
// ListInstances query for the page; with them, the store's listing (in
// start order) is read in chunks and filtered, stopping early on the time
// bound the order passes.
func listRuns(ctx context.Context, st prefactorapi.Store, q RunQuery) (RunPage, error) {
	page := RunPage{Page: q.Page, PageSize: q.PageSize, Items: []Run{}}
	offset := (q.Page - 1) * q.PageSize
	if rl, ok := st.(runLister); ok {
		// The store filters and counts (SQLite): one query for the page.
		iq := q.InstanceQuery
		iq.Offset, iq.Limit = offset, q.PageSize
		ins, total, err := rl.ListRuns(ctx, sqlitestore.RunFilter{InstanceQuery: iq, Statuses: q.Statuses, From: q.From, To: q.To})
		if err != nil {
			return page, err
		}
		page.Total, page.Scanned = total, len(ins)
		err = st.View(ctx, func(tx prefactorapi.ReadTx) error {
			names := newRunNamer(tx)
			return names.add(&page, ins)
		})
		return page, err
	}
	err := st.View(ctx, func(tx prefactorapi.ReadTx) error {
		names := newRunNamer(tx)
		if len(q.Statuses) == 0 && q.From.IsZero() && q.To.IsZero() {
			iq := q.InstanceQuery
			iq.Offset, iq.Limit = offset, q.PageSize
			ins, total, err := tx.ListInstances(iq)
			if err != nil {
				return err
			}
			page.Total, page.Scanned = total, len(ins)
			return names.add(&page, ins)
		}
		return scanRuns(ctx, tx, &names, q, offset, &page)
	})
	return page, err
}

// scanRuns fills page with the runs that pass q's status and time
// filters, reading the instances in chunks in q's order: for a store that
// cannot filter them itself.
func scanRuns(ctx context.Context, tx prefactorapi.ReadTx, names *runNamer, q RunQuery, offset int, page *RunPage) error {
	want := map[string]bool{}
	for _, s := range q.Statuses {
		want[s] = true
	}
	iq := q.InstanceQuery
	iq.Limit = scanChunk
	matched := 0
	for iq.Offset = 0; ; iq.Offset += scanChunk {
		if err := ctx.Err(); err != nil {
			return err
		}
		ins, _, err := tx.ListInstances(iq)
		if err != nil {
			return err
		}
		page.Scanned += len(ins)
		done := len(ins) < scanChunk
		for i := range ins {
			in := &ins[i]
			keep, past := q.inWindow(in.StartKey())
			if past {
				done = true
				break
			}
			if !keep || len(want) > 0 && !want[in.Status] {
				continue
			}
			if matched >= offset && matched < offset+q.PageSize {
				r, err := names.run(in)
				if err != nil {
					return err
				}
				page.Items = append(page.Items, r)
			}
			matched++
		}
		if done {
			break
		}
	}
	page.Total = matched
	return nil
}

// inWindow reports whether a run that started at k is within q's From and
// To, and whether, in q's order, every run after it is past the window.
func (q *RunQuery) inWindow(k time.Time) (keep, past bool) {
	if !q.From.IsZero() && k.Before(q.From) {
		return false, q.Order == prefactorapi.ByStartDesc
	}
	if !q.To.IsZero() && k.After(q.To) {
		return false, q.Order == prefactorapi.ByStartAsc
	}
	return true, false
}

// runNamer renders instance records as runs, looking agents and versions
// up once per answer.
type runNamer struct {
	tx       prefactorapi.ReadTx
	agents   map[string]prefactorapi.AgentRecord
	versions map[string]prefactorapi.AgentVersionRecord
}

func newRunNamer(tx prefactorapi.ReadTx) runNamer {
	return runNamer{tx: tx, agents: map[string]prefactorapi.AgentRecord{}, versions: map[string]prefactorapi.AgentVersionRecord{}}
}

// add appends the runs of ins to page.
func (n *runNamer) add(page *RunPage, ins []prefactorapi.InstanceRecord) error {
	for i := range ins {
		r, err := n.run(&ins[i])
		if err != nil {
			return err
		}
		page.Items = append(page.Items, r)
	}
	return nil
}

func (n *runNamer) run(in *prefactorapi.InstanceRecord) (Run, error) {
	a, ok := n.agents[in.AgentID]
	if !ok {
		var err error
		if a, _, err = n.tx.Agent(in.AgentID); err != nil {
			return Run{}, err
		}
		n.agents[in.AgentID] = a
	}
	v, ok := n.versions[in.VersionID]
	if !ok {
		var err error
		if v, _, err = n.tx.AgentVersion(in.VersionID); err != nil {
			return Run{}, err
		}
		n.versions[in.VersionID] = v
	}
	return runOf(in, a, v), nil
}

func runOf(in *prefactorapi.InstanceRecord, a prefactorapi.AgentRecord, v prefactorapi.AgentVersionRecord) Run {
	f := &in.Run
	c := in.SpanCounts
	r := Run{
		ID: in.ID, Name: f.Name, AgentID: in.AgentID, AgentName: a.Name, VersionID: in.VersionID,
		AgentVersion: v.Number, VersionName: versionLabel(v), Status: in.Status,
		UserIdentifier: f.UserID, GroupIdentifier: f.GroupID, Channel: f.Channel, SessionID: f.SessionID,
		InsertedAt: prefactorapi.Timestamp(in.InsertedAt), StartDate: prefactorapi.Timestamp(in.StartedAt),
		EndDate: prefactorapi.Timestamp(in.FinishedAt),
		SpanCounts: prefactorapi.SpanCountsDetails{Total: c.Total(), Pending: c.Pending, Active: c.Active,
			Complete: c.Complete, Failed: c.Failed, Cancelled: c.Cancelled + c.Terminated,
			Finished: c.Complete + c.Failed + c.Cancelled + c.Terminated},
		Usage: RunUsage{PromptTokens: f.PromptTokens, CompletionTokens: f.CompletionTokens, TotalTokens: f.TotalTokens},
		Costs: RunCosts{Prompt: f.CostPrompt, Completion: f.CostCompletion, Services: f.CostServices,
			Total: f.CostTotal, Currency: f.Currency},
	}
	if r.Name == "" {
		r.Name = a.Name
	}
	if !in.StartedAt.IsZero() && !in.FinishedAt.IsZero() {
		d := in.FinishedAt.Sub(in.StartedAt).Milliseconds()
		r.DurationMillis = &d
	}
	if !f.TTFTFrom.IsZero() {
		t := f.TTFTMillis
		r.TTFTMillis = &t
	}
	return r
}

// versionLabel names a version as its agent does: its external
// identifier (the version string the agent registered), else its name.
func versionLabel(v prefactorapi.AgentVersionRecord) string {
	if v.ExternalID != "" {
		return v.ExternalID
	}
	return v.Name
}

// RunSpan is a span as the run page reads it: the protocol's span details
// (prefactorapi.SpanDetails, with the same JSON names) without the fields
// every span of a run shares (account, agent, instance, type), which are
// a third of a big run's answer.
type RunSpan struct {
	ID            string          `json:"id"`
	ParentSpanID  *string         `json:"parent_span_id"`
	SchemaName    string          `json:"schema_name"`
	SchemaTitle   string          `json:"schema_title"`
	Status        string          `json:"status"`
	Payload       json.RawMessage `json:"payload"`
	ResultPayload json.RawMessage `json:"result_payload"`
	Summary       *string         `json:"summary"`
	StartedAt     *string         `json:"started_at"`
	FinishedAt    *string         `json:"finished_at"`
	InsertedAt    *string         `json:"inserted_at"`
}

// RunDetail is a run with all its spans.
type RunDetail struct {
	Run      Run                          `json:"run"`
	Instance prefactorapi.InstanceDetails `json:"instance"`
	Spans    []RunSpan                    `json:"spans"`
}

// getRun reads a run and its spans (prefactorapi's span details, with
// schema titles and summaries). ok is false when there is no such run.
func getRun(ctx context.Context, api *prefactorapi.API, id string) (d RunDetail, ok bool, err error) {
	var spans []prefactorapi.SpanDetails
	d.Instance, spans, ok, err = api.Instance(ctx, id)
	if err != nil || !ok {
		return d, ok, err
	}
	d.Spans = make([]RunSpan, len(spans))
	for i := range spans {
		s := &spans[i]
		d.Spans[i] = RunSpan{ID: s.ID, ParentSpanID: s.ParentSpanID, SchemaName: s.SchemaName, SchemaTitle: s.SchemaTitle,
			Status: s.Status, Payload: s.Payload, ResultPayload: s.ResultPayload, Summary: s.Summary,
			StartedAt: s.StartedAt, FinishedAt: s.FinishedAt, InsertedAt: s.InsertedAt}
	}
	err = api.Store().View(ctx, func(tx prefactorapi.ReadTx) error {
		in, found, err := tx.Instance(id)
		if err != nil || !found {
			ok = found
			return err
		}
		n := newRunNamer(tx)
		d.Run, err = n.run(&in)
		return err
	})
	return d, ok, err
}

// DayStats are a version's runs started on one UTC day.
type DayStats struct {
	Day    string  `json:"day"` // YYYY-MM-DD
	Runs   int     `json:"runs"`
	Tokens int64   `json:"tokens"`
	Cost   float64 `json:"cost"`
}

// VersionStats describe an agent version's runs.
type VersionStats struct {
	ID        string                             `json:"id"`
	Number    int                                `json:"number"`
	Name      string                             `json:"name"`
	Current   bool                               `json:"current"`
	CreatedAt *string                            `json:"createdAt"`
	Counts    prefactorapi.InstanceCountsDetails `json:"counts"`
	Usage     RunUsage                           `json:"usage"`
	Costs     RunCosts                           `json:"costs"`
	Days      []DayStats                         `json:"days"`
}

// AgentStats describe an agent and its versions.
type AgentStats struct {
	ID         string                             `json:"id"`
	Name       string                             `json:"name"`
	ExternalID string                             `json:"externalId"`
	Status     string                             `json:"status"`
	Counts     prefactorapi.InstanceCountsDetails `json:"counts"`
	Versions   []VersionStats                     `json:"versions"`
}

func countsOf(c prefactorapi.StatusCounts) prefactorapi.InstanceCountsDetails {
	return prefactorapi.InstanceCountsDetails{Total: c.Total(), Pending: c.Pending, Active: c.Active,
		Complete: c.Complete, Failed: c.Failed, Cancelled: c.Cancelled, Terminated: c.Terminated,
		Finished: c.Complete + c.Failed + c.Cancelled + c.Terminated}
}

// listAgents reads every agent with its versions and, with stats, their
// counts, usage and cost by day of start (which reads every run of the
// agent; the runs page's agent and version menus go without).
func listAgents(ctx context.Context, st prefactorapi.Store, stats bool) ([]AgentStats, error) {
	out := []AgentStats{}
	err := st.View(ctx, func(tx prefactorapi.ReadTx) error {
		agents, err := tx.ListAgents()
		if err != nil {
			return err
		}
		for _, a := range agents {
			c, err := tx.InstanceCounts(a.ID)
			if err != nil {
				return err
			}
			as := AgentStats{ID: a.ID, Name: a.Name, ExternalID: a.ExternalID, Status: a.Status, Counts: countsOf(c)}
			nv, err := tx.CountAgentVersions(a.ID)
			if err != nil {
				return err
			}
			for n := 1; n <= nv; n++ {
				v, ok, err := tx.AgentVersionByNumber(a.ID, n)
				if err != nil {
					return err
				}
				if !ok {
					continue
				}
				as.Versions = append(as.Versions, VersionStats{ID: v.ID, Number: v.Number, Name: versionLabel(v),
					Current: v.ID == a.CurrentVersionID, CreatedAt: prefactorapi.Timestamp(v.InsertedAt), Days: []DayStats{}})
			}
			if _, grouper := st.(runGrouper); stats && !grouper {
				groups, err := groupRuns(tx, a.ID)
				if err != nil {
					return err
				}
				addGroups(&as, groups)
			}
			out = append(out, as)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	// A grouping store is asked after the transaction, which holds one of
	// its read connections.
	if gs, ok := st.(runGrouper); stats && ok {
		for i := range out {
			groups, err := gs.RunGroups(ctx, out[i].ID)
			if err != nil {
				return nil, err
			}
			addGroups(&out[i], groups)
		}
	}
	return out, nil
}

// runGrouper is a store that sums an agent's runs itself
// (sqlitestore.Store).
type runGrouper interface {
	RunGroups(ctx context.Context, agentID string) ([]sqlitestore.RunGroup, error)
}

const microsPerDay = 86400 * 1000 * 1000

// groupRuns sums an agent's runs as RunGroups does, reading every run.
func groupRuns(tx prefactorapi.ReadTx, agentID string) ([]sqlitestore.RunGroup, error) {
	ins, _, err := tx.ListInstances(prefactorapi.InstanceQuery{AgentID: agentID})
	if err != nil {
		return nil, err
	}
	type key struct {
		v, s, c string
		d       int64
	}
	idx := map[key]int{}
	var out []sqlitestore.RunGroup
	for i := range ins {
		in, f := &ins[i], &ins[i].Run
		sk := in.StartKey()
		k := key{in.VersionID, in.Status, f.Currency, sk.UnixMicro() / microsPerDay}
		j, ok := idx[k]
		if !ok {
			j = len(out)
			idx[k] = j
			out = append(out, sqlitestore.RunGroup{VersionID: k.v, Status: k.s, Currency: k.c, Day: k.d, FirstStart: sk})
		}
		g := &out[j]
		g.Runs++
		if sk.Before(g.FirstStart) {
			g.FirstStart = sk
		}
		g.PromptTokens += f.PromptTokens
		g.CompletionTokens += f.CompletionTokens
		g.TotalTokens += f.TotalTokens
		g.CostPrompt += f.CostPrompt
		g.CostCompletion += f.CostCompletion
		g.CostServices += f.CostServices
		g.CostTotal += f.CostTotal
	}
	return out, nil
}

// addGroups fills an agent's version statistics from its run groups: runs
// by status, all tokens, and costs in the currency of the version's
// earliest run that has one (as the run listing keeps one currency).
func addGroups(as *AgentStats, groups []sqlitestore.RunGroup) {
	byID := map[string]*VersionStats{}
	for i := range as.Versions {
		byID[as.Versions[i].ID] = &as.Versions[i]
	}
	currency := map[string]string{}
	first := map[string]time.Time{}
	for _, g := range groups {
		if g.Currency == "" {
			continue
		}
		if t, ok := first[g.VersionID]; !ok || g.FirstStart.Before(t) {
			first[g.VersionID], currency[g.VersionID] = g.FirstStart, g.Currency
		}
	}
	counts := map[string]*prefactorapi.StatusCounts{}
	days := map[string]map[int64]*DayStats{}
	for _, g := range groups {
		v := byID[g.VersionID]
		if v == nil {
			continue
		}
		if counts[g.VersionID] == nil {
			counts[g.VersionID], days[g.VersionID] = &prefactorapi.StatusCounts{}, map[int64]*DayStats{}
		}
		counts[g.VersionID].Add(g.Status, g.Runs)
		v.Usage.PromptTokens += g.PromptTokens
		v.Usage.CompletionTokens += g.CompletionTokens
		v.Usage.TotalTokens += g.TotalTokens
		ds := days[g.VersionID][g.Day]
		if ds == nil {
			ds = &DayStats{Day: time.UnixMicro(g.Day * microsPerDay).UTC().Format(time.DateOnly)}
			days[g.VersionID][g.Day] = ds
		}
		ds.Runs += int(g.Runs)
		ds.Tokens += g.TotalTokens
		if cur := currency[g.VersionID]; cur != "" && g.Currency == cur {
			v.Costs.Currency = cur
			v.Costs.Prompt += g.CostPrompt
			v.Costs.Completion += g.CostCompletion
			v.Costs.Services += g.CostServices
			v.Costs.Total += g.CostTotal
			ds.Cost += g.CostTotal
		}
	}
	for i := range as.Versions {
		v := &as.Versions[i]
		if c := counts[v.ID]; c != nil {
			v.Counts = countsOf(*c)
		}
		for _, ds := range days[v.ID] {
			v.Days = append(v.Days, *ds)
		}
		sort.Slice(v.Days, func(i, j int) bool { return v.Days[i].Day < v.Days[j].Day })
	}
}

// writeJSON writes v as a JSON answer.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"status":"error","code":"unexpected","message":"encoding failed"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// writeError writes an error answer in the API's shape.
func writeError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, map[string]string{"status": "error", "code": code, "message": msg})
}

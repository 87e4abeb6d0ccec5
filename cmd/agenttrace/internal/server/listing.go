package server

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/agenttrace/agenttrace/internal/prefactorapi"
)

// The run listing of seed document 003:
//
//	GET /api/v2/AgentInstance/{agentCode}
//	GET /api/v2/AgentInstance/{agentCode}/{agentVersion}
//
// agentCode is an agent's ID, external identifier or name (tried in that
// order); agentVersion is a version number (1 for the agent's first
// version, in registration order) or a version's external identifier.
// Query: userIdentifier, groupIdentifier, search (alias term: every word
// must occur in the run's name), sort (alias sortDirection: asc or desc by
// start date, default desc), page (from 1, default 1), pageSize (1 to
// MaxListPageSize, default 20; larger values are capped), culture (en,
// default, or es: the language of messages). Credentials: Authorization:
// Bearer or X-API-KEY, with the server's full token (an ingest token is
// 403). Unknown agent or version: 404. Errors have the body
// {"status":<code>,"title":...,"detail":...}.

// MaxListPageSize caps pageSize.
const MaxListPageSize = 100

// Link is a HATEOAS link.
type Link struct {
	Method string `json:"method"`
	URL    string `json:"url"`
	Rel    string `json:"rel"`
}

// RunUsage is an item's usage.
type RunUsage struct {
	PromptTokens     int64 `json:"promptTokens"`
	CompletionTokens int64 `json:"completionTokens"`
	TotalTokens      int64 `json:"totalTokens"`
}

// RunCosts is an item's costs.
type RunCosts struct {
	Prompt     float64 `json:"prompt"`
	Completion float64 `json:"completion"`
	Services   float64 `json:"services"`
	Total      float64 `json:"total"`
	Currency   *string `json:"currency"`
}

// RunItem is one run of the listing, with exactly the document's fields.
type RunItem struct {
	Links            []Link   `json:"links"`
	ID               string   `json:"id"`
	Name             *string  `json:"name"`
	AgentVersion     int      `json:"agentVersion"`
	StartDate        string   `json:"startDate"`
	EndDate          *string  `json:"endDate"`
	TimeToFirstToken *int64   `json:"timeToFirstToken"`
	Channel          *string  `json:"channel"`
	UserIdentifier   *string  `json:"userIdentifier"`
	GroupIdentifier  *string  `json:"groupIdentifier"`
	IPAddress        *string  `json:"ipAddress"`
	UserAgent        *string  `json:"userAgent"`
	Usage            RunUsage `json:"usage"`
	Costs            RunCosts `json:"costs"`
}

// RunPage is the listing's answer.
type RunPage struct {
	Items    []RunItem `json:"items"`
	Total    int       `json:"total"`
	PageSize int       `json:"pageSize"`
	Page     int       `json:"page"`
	Links    []Link    `json:"links"`
}

// listTimeLayout is the listing's date-time layout (milliseconds, UTC).
const listTimeLayout = "2006-01-02T15:04:05.000Z"

var messages = map[string]map[string]string{
	"en": {
		"401": "Unauthorized", "403": "Forbidden", "404": "Not Found", "400": "Bad Request", "500": "Internal Server Error",
		"noauth": "The user is unauthorized or the session expired.", "forbidden": "The user does not have permission.",
		"agent": "No agent with code %q.", "version": "Agent %q has no version %q.", "page": "page must be an integer from 1 to %d.",
		"pageSize": "pageSize must be a positive integer.", "sort": "sort must be asc or desc.",
		"culture": "culture must be en or es.", "store": "There was an unexpected error.",
	},
	"es": {
		"401": "No autorizado", "403": "Prohibido", "404": "No encontrado", "400": "Solicitud incorrecta", "500": "Error interno del servidor",
		"noauth": "El usuario no está autorizado o la sesión expiró.", "forbidden": "El usuario no tiene permiso.",
		"agent": "No hay ningún agente con el código %q.", "version": "El agente %q no tiene la versión %q.",
		"page": "page debe ser un entero entre 1 y %d.", "pageSize": "pageSize debe ser un entero positivo.",
		"sort": "sort debe ser asc o desc.", "culture": "culture debe ser en o es.", "store": "Hubo un error inesperado.",
	},
}

func listError(w http.ResponseWriter, culture string, status int, key string, args ...any) {
	m := messages[culture]
	detail := m[key]
	if len(args) > 0 {
		detail = fmt.Sprintf(detail, args...)
	}
	b, _ := json.Marshal(map[string]any{"status": status, "title": m[strconv.Itoa(status)], "detail": detail})
	w.Header().Set("Content-Language", culture)
	writeJSON(w, status, b)
}

func firstQ(q url.Values, names ...string) string {
	for _, n := range names {
		if v := q.Get(n); v != "" {
			return v
		}
	}
	return ""
}

const maxPage = math.MaxInt32

func (s *Server) serveListing(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	culture := strings.ToLower(q.Get("culture"))
	if culture == "" {
		culture = "en"
	}
	if _, ok := messages[culture]; !ok {
		listError(w, "en", http.StatusBadRequest, "culture")
		return
	}
	if r.Method != http.MethodGet {
		listError(w, culture, http.StatusNotFound, "agent", "")
		return
	}
	sc, _ := s.auth(r)
	switch sc {
	case scopeNone:
		listError(w, culture, http.StatusUnauthorized, "noauth")
		return
	case scopeIngest:
		listError(w, culture, http.StatusForbidden, "forbidden")
		return
	}
	lr, f := parseListing(r.URL)
	if f == nil {
		var out RunPage
		out, f = s.readListing(r, &lr)
		if f == nil {
			b, _ := json.Marshal(out)
			w.Header().Set("Content-Language", culture)
			writeJSON(w, http.StatusOK, b)
			return
		}
	}
	listError(w, culture, f.status, f.key, f.args...)
}

// listingRequest is a checked listing request.
type listingRequest struct {
	code, version string // the path's agentCode and agentVersion
	page, size    int
	query         prefactorapi.InstanceQuery // without the agent and version
}

// listFault is a listing error: its status and the message key and
// arguments listError writes.
type listFault struct {
	status int
	key    string
	args   []any
}

// parseListing checks the path and the query: page from 1 to maxPage,
// pageSize from 1 (capped at MaxListPageSize), sort asc or desc.
func parseListing(u *url.URL) (listingRequest, *listFault) {
	q := u.Query()
	rest := strings.Trim(strings.TrimPrefix(u.Path, "/api/v2/AgentInstance"), "/")
	parts := strings.Split(rest, "/")
	if rest == "" || len(parts) > 2 {
		return listingRequest{}, &listFault{http.StatusNotFound, "agent", []any{rest}}
	}
	lr := listingRequest{code: parts[0], page: 1, size: 20}
	if len(parts) == 2 {
		lr.version = parts[1]
	}
	if v := q.Get("page"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxPage {
			return lr, &listFault{http.StatusBadRequest, "page", []any{maxPage}}
		}
		lr.page = n
	}
	if v := q.Get("pageSize"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return lr, &listFault{http.StatusBadRequest, "pageSize", nil}
		}
		lr.size = min(n, MaxListPageSize)
	}
	lr.query = prefactorapi.InstanceQuery{UserID: q.Get("userIdentifier"), GroupID: q.Get("groupIdentifier"),
		Search: firstQ(q, "search", "term"), Order: prefactorapi.ByStartDesc, Limit: lr.size}
	switch strings.ToLower(firstQ(q, "sort", "sortDirection")) {
	case "", "desc":
	case "asc":
		lr.query.Order = prefactorapi.ByStartAsc
	default:
		return lr, &listFault{http.StatusBadRequest, "sort", nil}
	}
	offset := (int64(lr.page) - 1) * int64(lr.size)
	lr.query.Offset = int(min(offset, math.MaxInt64/2))
	return lr, nil
}

// readListing reads the page of runs lr asks for.
func (s *Server) readListing(r *http.Request, lr *listingRequest) (RunPage, *listFault) {
	var out RunPage
	var f *listFault
	err := s.cfg.Store.View(r.Context(), func(tx prefactorapi.ReadTx) error {
		ag, ok, err := findAgent(tx, lr.code)
		if err != nil || !ok {
			f = &listFault{http.StatusNotFound, "agent", []any{lr.code}}
			return err
		}
		iq := lr.query
		iq.AgentID = ag.ID
		if lr.version != "" {
			v, ok, err := findVersion(tx, ag.ID, lr.version)
			if err != nil || !ok {
				f = &listFault{http.StatusNotFound, "version", []any{lr.code, lr.version}}
				return err
			}
			iq.VersionID = v.ID
		}
		ins, total, err := tx.ListInstances(iq)
		if err != nil {
			return err
		}
		out = RunPage{Items: make([]RunItem, len(ins)), Total: total, PageSize: lr.size, Page: lr.page}
		for i := range ins {
			out.Items[i] = runItem(&ins[i])
		}
		out.Links = pageLinks(r.URL, lr.page, lr.size, total)
		return nil
	})
	if err != nil {
		s.log.Error("agenttrace server: listing failed", "err", err)
		return out, &listFault{http.StatusInternalServerError, "store", nil}
	}
	return out, f
}

// findVersion finds an agent's version by number (from 1) or external
// identifier.
func findVersion(tx prefactorapi.ReadTx, agentID, version string) (prefactorapi.AgentVersionRecord, bool, error) {
	if n, err := strconv.Atoi(version); err == nil && n >= 1 {
		return tx.AgentVersionByNumber(agentID, n)
	}
	return tx.AgentVersionByExternalID(agentID, version)
}

// findAgent finds an agent by ID, external identifier or name.
func findAgent(tx prefactorapi.ReadTx, code string) (prefactorapi.AgentRecord, bool, error) {
	if prefactorapi.ValidPFID(code) {
		if ag, ok, err := tx.Agent(code); err != nil || ok {
			return ag, ok, err
		}
	}
	if ag, ok, err := tx.AgentByExternalID(code); err != nil || ok {
		return ag, ok, err
	}
	all, err := tx.ListAgents()
	if err != nil {
		return prefactorapi.AgentRecord{}, false, err
	}
	for _, ag := range all {
		if ag.Name == code {
			return ag, true, nil
		}
	}
	return prefactorapi.AgentRecord{}, false, nil
}

func optStr(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func listTime(t time.Time) string { return t.UTC().Format(listTimeLayout) }

func runItem(in *prefactorapi.InstanceRecord) RunItem {
	r := &in.Run
	it := RunItem{
		Links: []Link{
			{Method: http.MethodGet, URL: "/api/v1/agent_instance/" + in.ID, Rel: "self"},
			{Method: http.MethodGet, URL: "/api/v1/agent_spans?agent_instance_id=" + in.ID, Rel: "spans"},
		},
		ID: in.ID, Name: optStr(r.Name), AgentVersion: r.VersionNumber, StartDate: listTime(in.StartKey()),
		Channel: optStr(r.Channel), UserIdentifier: optStr(r.UserID), GroupIdentifier: optStr(r.GroupID),
		IPAddress: optStr(r.IPAddress), UserAgent: optStr(r.UserAgent),
		Usage: RunUsage{PromptTokens: r.PromptTokens, CompletionTokens: r.CompletionTokens, TotalTokens: r.TotalTokens},
		Costs: RunCosts{Prompt: r.CostPrompt, Completion: r.CostCompletion, Services: r.CostServices, Total: r.CostTotal,
			Currency: optStr(r.Currency)},
	}
	if !in.FinishedAt.IsZero() {
		e := listTime(in.FinishedAt)
		it.EndDate = &e
	}
	if !r.TTFTFrom.IsZero() {
		v := r.TTFTMillis
		it.TimeToFirstToken = &v
	}
	return it
}

// pageLinks are the page's links: self, first, last, and prev and next
// where those pages exist.
func pageLinks(u *url.URL, page, size, total int) []Link {
	last := max((total+size-1)/size, 1)
	link := func(rel string, p int) Link {
		q := u.Query()
		q.Set("page", strconv.Itoa(p))
		q.Set("pageSize", strconv.Itoa(size))
		return Link{Method: http.MethodGet, URL: u.Path + "?" + q.Encode(), Rel: rel}
	}
	links := []Link{link("self", page), link("first", 1)}
	if page > 1 {
		links = append(links, link("prev", min(page-1, last)))
	}
	if page < last {
		links = append(links, link("next", page+1))
	}
	return append(links, link("last", last))
}

package prefactorapi

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
)

// getInstance answers GET /api/v1/agent_instance/{id}.
func (a *API) getInstance(ctx context.Context, id string) Answer {
	if !ValidPFID(id) {
		return errAnswer(invalid("agent_instance_id", "must be a PFID"))
	}
	var ans Answer
	err := a.store.View(ctx, func(tx ReadTx) error {
		in, ok, err := tx.Instance(id)
		if err != nil {
			return err
		}
		if !ok {
			ans = errAnswer(notFound("agent instance"))
			return nil
		}
		ans = okAnswer(successBody(a.instanceDetails(&in), nil))
		return nil
	})
	if err != nil {
		return storeFailure(err)
	}
	return ans
}

// Pagination is the pagination of a list answer (reference 1.4).
type Pagination struct {
	ItemCount          int  `json:"item_count"`
	ItemStart          int  `json:"item_start"`
	ItemEnd            int  `json:"item_end"`
	NextPageOffset     *int `json:"next_page_offset"`
	PageCount          int  `json:"page_count"`
	PageIndex          int  `json:"page_index"`
	PageOffset         int  `json:"page_offset"`
	PageSize           int  `json:"page_size"`
	PreviousPageOffset *int `json:"previous_page_offset"`
}

// MaxPageSize caps pagination[page_size] on v1 lists.
const MaxPageSize = 100

func pagination(offset, size, total, n int) Pagination {
	p := Pagination{ItemCount: total, PageOffset: offset, PageSize: size, PageIndex: offset/size + 1,
		PageCount: (total + size - 1) / size}
	if n > 0 {
		p.ItemStart, p.ItemEnd = offset+1, offset+n
	}
	if offset+n < total {
		next := offset + size
		p.NextPageOffset = &next
	}
	if offset > 0 {
		prev := max(offset-size, 0)
		p.PreviousPageOffset = &prev
	}
	return p
}

func listBody(items any, p Pagination, field, dir string) []byte {
	b, _ := json.Marshal(struct {
		Status     string            `json:"status"`
		Summaries  any               `json:"summaries"`
		Pagination Pagination        `json:"pagination"`
		Sorting    map[string]string `json:"sorting"`
	}{"success", items, p, map[string]string{"field": field, "direction": dir}})
	return b
}

// pageParams reads pagination[offset] and pagination[page_size].
func pageParams(q map[string][]string) (offset, size int, e *Error) {
	get := func(k string) string {
		if v := q[k]; len(v) > 0 {
			return v[0]
		}
		return ""
	}
	offset, size = 0, 20
	var c checker
	if v := get("pagination[offset]"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > 1<<40 {
			c.bad("pagination[offset]", "must be a non-negative integer")
		}
		offset = n
	}
	if v := get("pagination[page_size]"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > MaxPageSize {
			c.bad("pagination[page_size]", "must be an integer from 1 to "+strconv.Itoa(MaxPageSize))
		}
		size = n
	}
	return offset, size, c.failed()
}

// listInstances answers GET /api/v1/agent_instance?agent_id=&agent_version_id=
// &sorting=[-]started_at&pagination[offset]=&pagination[page_size]=.
func (a *API) listInstances(ctx context.Context, q map[string][]string) Answer {
	offset, size, e := pageParams(q)
	if e != nil {
		return errAnswer(e)
	}
	get := func(k string) string {
		if v := q[k]; len(v) > 0 {
			return v[0]
		}
		return ""
	}
	iq := InstanceQuery{AgentID: get("agent_id"), VersionID: get("agent_version_id"), Offset: offset, Limit: size, Order: ByStartDesc}
	dir := "desc"
	switch get("sorting") {
	case "", "-started_at", "-created_at", "-inserted_at":
	case "started_at", "created_at", "inserted_at":
		iq.Order, dir = ByStartAsc, "asc"
	default:
		return errAnswer(invalid("sorting", "one of started_at, -started_at"))
	}
	var ans Answer
	err := a.store.View(ctx, func(tx ReadTx) error {
		ins, total, err := tx.ListInstances(iq)
		if err != nil {
			return err
		}
		out := make([]InstanceDetails, len(ins))
		for i := range ins {
			out[i] = a.instanceDetails(&ins[i])
		}
		ans = okAnswer(listBody(out, pagination(offset, size, total, len(out)), "started_at", dir))
		return nil
	})
	if err != nil {
		return storeFailure(err)
	}
	return ans
}

// listSpans answers GET /api/v1/agent_spans?agent_instance_id=
// [&include_summaries=true]: an instance's spans in creation order.
func (a *API) listSpans(ctx context.Context, q map[string][]string) Answer {
	offset, size, e := pageParams(q)
	if e != nil {
		return errAnswer(e)
	}
	id := ""
	if v := q["agent_instance_id"]; len(v) > 0 {
		id = v[0]
	}
	if !ValidPFID(id) {
		return errAnswer(invalid("agent_instance_id", "required: a PFID"))
	}
	withSummaries := len(q["include_summaries"]) > 0 && q["include_summaries"][0] == "true"
	var ans Answer
	err := a.store.View(ctx, func(tx ReadTx) error {
		in, ok, err := tx.Instance(id)
		if err != nil {
			return err
		}
		if !ok {
			ans = errAnswer(notFound("agent instance"))
			return nil
		}
		spans, err := tx.ListSpans(id)
		if err != nil {
			return err
		}
		types, err := spanTypes(tx, &in)
		if err != nil {
			return err
		}
		total := len(spans)
		page := spans[min(offset, total):min(offset+size, total)]
		out := make([]SpanDetails, len(page))
		for i := range page {
			out[i] = a.spanDetails(&page[i], types)
			if !withSummaries {
				out[i].Summary = nil
			}
		}
		ans = okAnswer(listBody(out, pagination(offset, size, total, len(out)), "inserted_at", "asc"))
		return nil
	})
	if err != nil {
		return storeFailure(err)
	}
	return ans
}

// Instance returns an instance's details and its spans' (with summaries),
// for viewers.
func (a *API) Instance(ctx context.Context, id string) (InstanceDetails, []SpanDetails, bool, error) {
	var d InstanceDetails
	var spans []SpanDetails
	found := false
	err := a.store.View(ctx, func(tx ReadTx) error {
		in, ok, err := tx.Instance(id)
		if err != nil || !ok {
			return err
		}
		found = true
		d = a.instanceDetails(&in)
		recs, err := tx.ListSpans(id)
		if err != nil {
			return err
		}
		types, err := spanTypes(tx, &in)
		if err != nil {
			return err
		}
		spans = make([]SpanDetails, len(recs))
		for i := range recs {
			spans[i] = a.spanDetails(&recs[i], types)
		}
		return nil
	})
	return d, spans, found, err
}

var _ = http.StatusOK

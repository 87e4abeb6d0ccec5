package prefactorapi

import (
	"context"
	"encoding/json"
	"net/http"
	"sort"
	"strings"
	"time"
)

// Agent versions and schema versions (reference 4.14):
// GET /api/v1/agent_version?agent_id=, GET /api/v1/agent_version/{id},
// POST /api/v1/agent_version {"details":{agent_id, external_identifier,
// name?, description?, id?}}, and the same for /api/v1/agent_schema_version
// with {"details":{agent_id, external_identifier, span_type_schemas? |
// span_schemas?, span_result_schemas?, quality_schemas?, id?}}, checked as
// register checks its agent_schema_version. Lists take agent_id (required,
// a PFID: else 422; an unknown agent is 404 not_found) and
// pagination[offset] / pagination[page_size] as the other lists; agent
// versions are listed by number, schema versions in creation order. A
// create of an external identifier the agent already has is 422
// validation_errors (versions are immutable: register finds them, a create
// makes a new one); the create does not change the agent's current
// version (PUT /api/v1/agent/{id} current_version_id does). An optional
// top-level idempotency_key works as for the agent actions.

// Version endpoints.
const (
	EndpointListAgentVersions   Endpoint = "list_agent_versions"
	EndpointGetAgentVersion     Endpoint = "get_agent_version"
	EndpointCreateAgentVersion  Endpoint = "create_agent_version"
	EndpointListSchemaVersions  Endpoint = "list_schema_versions"
	EndpointGetSchemaVersion    Endpoint = "get_schema_version"
	EndpointCreateSchemaVersion Endpoint = "create_schema_version"
)

// routeVersions names the version endpoint of a request and the ID in its
// path (EndpointOther if it is none).
func routeVersions(method, path string) (Endpoint, string) {
	p, ok := strings.CutPrefix(path, "/api/v1/")
	if !ok {
		return EndpointOther, ""
	}
	parts := strings.Split(strings.Trim(p, "/"), "/")
	var list, get, create Endpoint
	switch parts[0] {
	case "agent_version":
		list, get, create = EndpointListAgentVersions, EndpointGetAgentVersion, EndpointCreateAgentVersion
	case "agent_schema_version":
		list, get, create = EndpointListSchemaVersions, EndpointGetSchemaVersion, EndpointCreateSchemaVersion
	default:
		return EndpointOther, ""
	}
	switch {
	case len(parts) == 1 && method == http.MethodGet:
		return list, ""
	case len(parts) == 1 && method == http.MethodPost:
		return create, ""
	case len(parts) == 2 && method == http.MethodGet:
		return get, parts[1]
	}
	return EndpointOther, ""
}

// CreateAgentVersionRequest is the body of POST /api/v1/agent_version.
type CreateAgentVersionRequest struct {
	Details        *AgentVersionCreateInput `json:"details"`
	IdempotencyKey *string                  `json:"idempotency_key,omitempty"`
}

// AgentVersionCreateInput are a created agent version's fields.
type AgentVersionCreateInput struct {
	ID                 *string `json:"id,omitempty"`
	AgentID            *string `json:"agent_id"`
	ExternalIdentifier *string `json:"external_identifier"`
	Name               *string `json:"name,omitempty"`
	Description        *string `json:"description,omitempty"`
	// AgentSchemaVersionID, when given, must be a schema version of the
	// agent.
	AgentSchemaVersionID *string `json:"agent_schema_version_id,omitempty"`
}

// CreateSchemaVersionRequest is the body of POST /api/v1/agent_schema_version.
type CreateSchemaVersionRequest struct {
	Details        *SchemaVersionCreateInput `json:"details"`
	IdempotencyKey *string                   `json:"idempotency_key,omitempty"`
}

// SchemaVersionCreateInput are a created schema version's fields: the
// agent, and a schema version as register takes it.
type SchemaVersionCreateInput struct {
	ID      *string `json:"id,omitempty"`
	AgentID *string `json:"agent_id"`
	SchemaVersionInput
}

// AgentVersionDetails is an AgentVersion.
type AgentVersionDetails struct {
	Type               string  `json:"type"`
	ID                 string  `json:"id"`
	AccountID          string  `json:"account_id"`
	AgentID            string  `json:"agent_id"`
	ExternalIdentifier string  `json:"external_identifier"`
	Name               *string `json:"name"`
	Description        *string `json:"description"`
	// Number counts the agent's versions, 1 for its first.
	Number               int     `json:"number"`
	AgentSchemaVersionID *string `json:"agent_schema_version_id"`
	CurrentVersion       bool    `json:"current_version"`
	InsertedAt           *string `json:"inserted_at"`
	UpdatedAt            *string `json:"updated_at"`
}

// SchemaVersionDetails is an AgentSchemaVersion: span_type_schemas is keyed
// by span type name.
type SchemaVersionDetails struct {
	Type                 string                  `json:"type"`
	ID                   string                  `json:"id"`
	AccountID            string                  `json:"account_id"`
	AgentID              string                  `json:"agent_id"`
	ExternalIdentifier   string                  `json:"external_identifier"`
	CurrentSchemaVersion bool                    `json:"current_schema_version"`
	SpanTypeSchemas      map[string]SpanTypeView `json:"span_type_schemas"`
	SpanSchemasCount     int                     `json:"span_schemas_count"`
	InsertedAt           *string                 `json:"inserted_at"`
	UpdatedAt            *string                 `json:"updated_at"`
}

// SpanTypeView is a span type of a schema version.
type SpanTypeView struct {
	Name     string  `json:"name"`
	Title    string  `json:"title"`
	Template *string `json:"template"`
}

func (a *API) versionDetails(v *AgentVersionRecord, ag *AgentRecord) AgentVersionDetails {
	return AgentVersionDetails{Type: "agent_version", ID: v.ID, AccountID: a.cfg.AccountID, AgentID: v.AgentID,
		ExternalIdentifier: v.ExternalID, Name: strPtr(v.Name), Description: strPtr(v.Description), Number: v.Number,
		AgentSchemaVersionID: strPtr(v.SchemaVersionID), CurrentVersion: ag.CurrentVersionID == v.ID, InsertedAt: Timestamp(v.InsertedAt), UpdatedAt: Timestamp(v.InsertedAt)}
}

func (a *API) schemaVersionDetails(sv *SchemaVersionRecord, ag *AgentRecord) SchemaVersionDetails {
	d := SchemaVersionDetails{Type: "agent_schema_version", ID: sv.ID, AccountID: a.cfg.AccountID, AgentID: sv.AgentID,
		ExternalIdentifier: sv.ExternalID, CurrentSchemaVersion: ag.CurrentSchemaVersion == sv.ID,
		SpanTypeSchemas: make(map[string]SpanTypeView, len(sv.SpanTypes)), SpanSchemasCount: len(sv.SpanTypes),
		InsertedAt: Timestamp(sv.InsertedAt), UpdatedAt: Timestamp(sv.InsertedAt)}
	for name, t := range sv.SpanTypes {
		d.SpanTypeSchemas[name] = SpanTypeView{Name: name, Title: t.Title, Template: strPtr(t.Template)}
	}
	return d
}

// doVersions answers a request to the versions API.
func (a *API) doVersions(ctx context.Context, ep Endpoint, id string, body []byte, q map[string][]string) Answer {
	switch ep {
	case EndpointListAgentVersions, EndpointListSchemaVersions:
		return a.listVersions(ctx, ep, q)
	case EndpointGetAgentVersion, EndpointGetSchemaVersion:
		return a.getVersion(ctx, ep, id)
	}
	o := &operation{ep: ep}
	var err error
	switch ep {
	case EndpointCreateAgentVersion:
		r := &CreateAgentVersionRequest{}
		err = decodeStrict(body, r)
		o.key, r.IdempotencyKey, o.req = r.IdempotencyKey, nil, r
	case EndpointCreateSchemaVersion:
		r := &CreateSchemaVersionRequest{}
		err = decodeStrict(body, r)
		o.key, r.IdempotencyKey, o.req = r.IdempotencyKey, nil, r
	default:
		return errAnswer(notFound("endpoint"))
	}
	if err != nil {
		return errAnswer(decodeError(err, ""))
	}
	if o.key != nil {
		if e := checkKey(o.key, 1); e != nil {
			return errAnswer(e)
		}
	}
	var ans Answer
	err = a.update(ctx, func(tx Tx) error {
		var err error
		if o.key != nil {
			ans, err = a.idempotent(tx, o)
		} else {
			ans, err = a.apply(tx, o)
		}
		return err
	})
	if err != nil {
		return storeFailure(err)
	}
	return ans
}

func (a *API) getVersion(ctx context.Context, ep Endpoint, id string) Answer {
	var ans Answer
	err := a.store.View(ctx, func(tx ReadTx) error {
		ans = errAnswer(notFound(strings.TrimPrefix(string(ep), "get_")))
		if !ValidPFID(id) {
			return nil
		}
		var d any
		if ep == EndpointGetAgentVersion {
			v, ok, err := tx.AgentVersion(id)
			if err != nil || !ok {
				return err
			}
			ag, _, err := tx.Agent(v.AgentID)
			if err != nil {
				return err
			}
			d = a.versionDetails(&v, &ag)
		} else {
			sv, ok, err := tx.SchemaVersion(id)
			if err != nil || !ok {
				return err
			}
			ag, _, err := tx.Agent(sv.AgentID)
			if err != nil {
				return err
			}
			d = a.schemaVersionDetails(&sv, &ag)
		}
		ans = okAnswer(successBody(d, nil))
		return nil
	})
	if err != nil {
		return storeFailure(err)
	}
	return ans
}

func (a *API) listVersions(ctx context.Context, ep Endpoint, q map[string][]string) Answer {
	offset, size, e := pageParams(q)
	if e != nil {
		return errAnswer(e)
	}
	agentID := ""
	if v := q["agent_id"]; len(v) > 0 {
		agentID = v[0]
	}
	if !ValidPFID(agentID) {
		return errAnswer(invalid("agent_id", "required: a PFID"))
	}
	var ans Answer
	err := a.store.View(ctx, func(tx ReadTx) error {
		ag, ok, err := tx.Agent(agentID)
		if err != nil {
			return err
		}
		if !ok {
			ans = errAnswer(notFound("agent"))
			return nil
		}
		var out any
		total, n := 0, 0
		field := "number"
		if ep == EndpointListAgentVersions {
			vs, err := tx.ListAgentVersions(agentID)
			if err != nil {
				return err
			}
			total = len(vs)
			page := vs[min(offset, total):min(offset+size, total)]
			ds := make([]AgentVersionDetails, len(page))
			for i := range page {
				ds[i] = a.versionDetails(&page[i], &ag)
			}
			out, n = ds, len(ds)
		} else {
			svs, err := tx.ListSchemaVersions(agentID)
			if err != nil {
				return err
			}
			total = len(svs)
			page := svs[min(offset, total):min(offset+size, total)]
			ds := make([]SchemaVersionDetails, len(page))
			for i := range page {
				ds[i] = a.schemaVersionDetails(&page[i], &ag)
			}
			out, n, field = ds, len(ds), "inserted_at"
		}
		ans = okAnswer(listBody(out, pagination(offset, size, total, n), field, "asc"))
		return nil
	})
	if err != nil {
		return storeFailure(err)
	}
	return ans
}

// applyVersion creates an agent version or a schema version.
func (a *API) applyVersion(tx Tx, o *operation) (Answer, error) {
	var c checker
	var idp, agentp, extp *string
	var svIn *SchemaVersionInput
	var types map[string]SpanTypeInfo
	var av *AgentVersionCreateInput
	switch r := o.req.(type) {
	case *CreateAgentVersionRequest:
		if r.Details == nil {
			c.bad("details", "required")
			return errAnswer(c.failed()), nil
		}
		av = r.Details
		idp, agentp, extp = av.ID, av.AgentID, av.ExternalIdentifier
		c.str("details.external_identifier", extp, true)
		c.pfid("details.agent_schema_version_id", av.AgentSchemaVersionID, false)
	case *CreateSchemaVersionRequest:
		if r.Details == nil {
			c.bad("details", "required")
			return errAnswer(c.failed()), nil
		}
		idp, agentp, svIn = r.Details.ID, r.Details.AgentID, &r.Details.SchemaVersionInput
		extp = svIn.ExternalIdentifier
		types = checkSchemaVersion(&c, svIn, "details.")
	}
	newID := c.pfid("details.id", idp, false)
	if newID != "" && ValidPFID(newID) && !a.inPartition(newID) {
		c.bad("details.id", "must carry the account partition "+a.partition)
	}
	agentID := c.pfid("details.agent_id", agentp, true)
	if e := c.failed(); e != nil {
		return errAnswer(e), nil
	}
	ext := *extp
	ag, ok, err := tx.Agent(agentID)
	if err != nil {
		return Answer{}, err
	}
	if !ok {
		return errAnswer(notFound("agent")), nil
	}
	if newID == "" {
		newID = a.NewID()
	}
	now := a.now()
	if av != nil {
		return a.putAgentVersion(tx, &ag, av, newID, ext, now)
	}
	return a.putSchemaVersion(tx, &ag, svIn, types, newID, ext, now)
}

// putAgentVersion stores a new version of ag, numbered after its others:
// its external identifier and ID are new, its schema version (if named)
// is one of the agent's.
func (a *API) putAgentVersion(tx Tx, ag *AgentRecord, av *AgentVersionCreateInput, id, ext string, now time.Time) (Answer, error) {
	if _, dup, err := tx.AgentVersionByExternalID(ag.ID, ext); err != nil {
		return Answer{}, err
	} else if dup {
		return errAnswer(invalid("details.external_identifier", "the agent already has a version "+jsonQuote(ext))), nil
	}
	if _, dup, err := tx.AgentVersion(id); err != nil {
		return Answer{}, err
	} else if dup {
		return errAnswer(invalidAction("agent version " + id + " exists")), nil
	}
	svID := deref(av.AgentSchemaVersionID)
	if svID != "" {
		sv, ok, err := tx.SchemaVersion(svID)
		if err != nil {
			return Answer{}, err
		}
		if !ok || sv.AgentID != ag.ID {
			return errAnswer(invalid("details.agent_schema_version_id", "not a schema version of this agent")), nil
		}
	}
	n, err := tx.CountAgentVersions(ag.ID)
	if err != nil {
		return Answer{}, err
	}
	v := AgentVersionRecord{ID: id, AgentID: ag.ID, ExternalID: ext, Name: deref(av.Name),
		Description: deref(av.Description), Number: n + 1, SchemaVersionID: svID, InsertedAt: now}
	if err := tx.PutAgentVersion(v); err != nil {
		return Answer{}, err
	}
	return okAnswer(successBody(a.versionDetails(&v, ag), nil)), nil
}

// putSchemaVersion stores a new schema version of ag, checked by the
// caller: its external identifier and ID are new.
func (a *API) putSchemaVersion(tx Tx, ag *AgentRecord, in *SchemaVersionInput, types map[string]SpanTypeInfo, id, ext string, now time.Time) (Answer, error) {
	if _, dup, err := tx.SchemaVersionByExternalID(ag.ID, ext); err != nil {
		return Answer{}, err
	} else if dup {
		return errAnswer(invalid("details.external_identifier", "the agent already has a schema version "+jsonQuote(ext))), nil
	}
	if _, dup, err := tx.SchemaVersion(id); err != nil {
		return Answer{}, err
	} else if dup {
		return errAnswer(invalidAction("agent schema version " + id + " exists")), nil
	}
	body, _ := json.Marshal(in)
	sv := SchemaVersionRecord{ID: id, AgentID: ag.ID, ExternalID: ext, SpanTypes: types, Body: body, InsertedAt: now}
	if err := tx.PutSchemaVersion(sv); err != nil {
		return Answer{}, err
	}
	return okAnswer(successBody(a.schemaVersionDetails(&sv, ag), nil)), nil
}

func jsonQuote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// sortVersions orders agent versions by number and schema versions by
// creation (then ID), as the lists answer them.
func sortVersions(vs []AgentVersionRecord) {
	sort.Slice(vs, func(i, j int) bool { return vs[i].Number < vs[j].Number })
}

func sortSchemaVersions(vs []SchemaVersionRecord) {
	sort.Slice(vs, func(i, j int) bool {
		if c := vs[i].InsertedAt.Compare(vs[j].InsertedAt); c != 0 {
			return c < 0
		}
		return vs[i].ID < vs[j].ID
	})
}

package prefactorapi

import (
	"context"
	"net/http"
	"strings"
	"time"
)

// The agents API (excerpt 001): POST /api/v1/agent, GET /api/v1/agent,
// GET|PUT|DELETE /api/v1/agent/{id}, POST /api/v1/agent/{id}/retire and
// /reinstate. An agent is pending until its first instance registers,
// then active; retired refuses new instances (409 invalid_action) until
// reinstated. available_actions: update and retire unless retired,
// reinstate when retired, delete while it has no instances (a delete
// otherwise is 409 invalid_action). Versions and schema versions are
// created by register (found or created by external identifier; the
// agent's current_version_id follows update_current_version, default
// true, and current_schema_version_id the latest registered).

// Agent endpoints.
const (
	EndpointCreateAgent    Endpoint = "create_agent"
	EndpointListAgents     Endpoint = "list_agents"
	EndpointGetAgent       Endpoint = "get_agent"
	EndpointUpdateAgent    Endpoint = "update_agent"
	EndpointDeleteAgent    Endpoint = "delete_agent"
	EndpointRetireAgent    Endpoint = "retire_agent"
	EndpointReinstateAgent Endpoint = "reinstate_agent"
)

// RouteAgents names the agents endpoint of a request and the ID in its
// path (EndpointOther if it is none); the agent version and schema version
// endpoints are part of the agents API.
func RouteAgents(method, path string) (Endpoint, string) {
	if ep, id := routeVersions(method, path); ep != EndpointOther {
		return ep, id
	}
	p, ok := strings.CutPrefix(path, "/api/v1/agent")
	if !ok || (p != "" && p[0] != '/') {
		return EndpointOther, ""
	}
	p = strings.Trim(p, "/")
	parts := strings.Split(p, "/")
	switch {
	case p == "" && method == http.MethodPost:
		return EndpointCreateAgent, ""
	case p == "" && method == http.MethodGet:
		return EndpointListAgents, ""
	case len(parts) == 1 && method == http.MethodGet:
		return EndpointGetAgent, parts[0]
	case len(parts) == 1 && method == http.MethodPut:
		return EndpointUpdateAgent, parts[0]
	case len(parts) == 1 && method == http.MethodDelete:
		return EndpointDeleteAgent, parts[0]
	case len(parts) == 2 && method == http.MethodPost && parts[1] == "retire":
		return EndpointRetireAgent, parts[0]
	case len(parts) == 2 && method == http.MethodPost && parts[1] == "reinstate":
		return EndpointReinstateAgent, parts[0]
	}
	return EndpointOther, ""
}

// CreateAgentRequest is the body of POST /api/v1/agent.
type CreateAgentRequest struct {
	Details        *AgentInput `json:"details"`
	IdempotencyKey *string     `json:"idempotency_key,omitempty"`
}

// AgentInput are an agent's fields at create or update.
type AgentInput struct {
	ID                 *string `json:"id,omitempty"`
	Name               *string `json:"name,omitempty"`
	Description        *string `json:"description,omitempty"`
	ExternalIdentifier *string `json:"external_identifier,omitempty"`
	CurrentVersionID   *string `json:"current_version_id,omitempty"`
}

// UpdateAgentRequest is the body of PUT /api/v1/agent/{id}.
type UpdateAgentRequest struct {
	Details        *AgentInput `json:"details"`
	IdempotencyKey *string     `json:"idempotency_key,omitempty"`
}

// AgentActionRequest is the (optional) body of retire, reinstate and
// delete.
type AgentActionRequest struct {
	IdempotencyKey *string `json:"idempotency_key,omitempty"`
}

// DoAgents answers a request to the agents API.
func (a *API) DoAgents(ctx context.Context, ep Endpoint, id string, body []byte, query map[string][]string) Answer {
	switch ep {
	case EndpointListAgents:
		return a.listAgents(ctx, query)
	case EndpointGetAgent:
		var ans Answer
		err := a.store.View(ctx, func(tx ReadTx) error {
			ag, ok, err := tx.Agent(id)
			if err != nil || !ok {
				ans = errAnswer(notFound("agent"))
				return err
			}
			d, err := a.agentDetails(tx, &ag)
			ans = okAnswer(successBody(d, nil))
			return err
		})
		if err != nil {
			return storeFailure(err)
		}
		return ans
	case EndpointCreateAgent, EndpointUpdateAgent, EndpointDeleteAgent, EndpointRetireAgent, EndpointReinstateAgent:
	case EndpointListAgentVersions, EndpointGetAgentVersion, EndpointCreateAgentVersion,
		EndpointListSchemaVersions, EndpointGetSchemaVersion, EndpointCreateSchemaVersion:
		return a.doVersions(ctx, ep, id, body, query)
	default:
		return errAnswer(notFound("endpoint"))
	}
	if len(strings.TrimSpace(string(body))) == 0 {
		body = []byte("{}")
	}
	o := &operation{ep: ep, id: id}
	var err error
	switch ep {
	case EndpointCreateAgent:
		r := &CreateAgentRequest{}
		err = decodeStrict(body, r)
		o.key, r.IdempotencyKey, o.req = r.IdempotencyKey, nil, r
	case EndpointUpdateAgent:
		r := &UpdateAgentRequest{}
		err = decodeStrict(body, r)
		o.key, r.IdempotencyKey, o.req = r.IdempotencyKey, nil, r
	default:
		r := &AgentActionRequest{}
		err = decodeStrict(body, r)
		o.key, r.IdempotencyKey, o.req = r.IdempotencyKey, nil, r
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

func (a *API) agentDetails(tx ReadTx, ag *AgentRecord) (AgentDetails, error) {
	c, err := tx.InstanceCounts(ag.ID)
	d := AgentDetails{Type: "agent", ID: ag.ID, Name: ag.Name, Description: strPtr(ag.Description),
		ExternalIdentifier: strPtr(ag.ExternalID), Status: ag.Status, EnvironmentID: strPtr(ag.EnvironmentID),
		CurrentVersionID: strPtr(ag.CurrentVersionID), CurrentSchemaVersionID: strPtr(ag.CurrentSchemaVersion),
		InstanceCounts: InstanceCountsDetails{Total: c.Total(), Pending: c.Pending, Active: c.Active, Complete: c.Complete,
			Failed: c.Failed, Cancelled: c.Cancelled, Terminated: c.Terminated,
			Finished: c.Complete + c.Failed + c.Cancelled + c.Terminated},
		InsertedAt: Timestamp(ag.InsertedAt), UpdatedAt: Timestamp(ag.UpdatedAt)}
	retired := ag.Status == "retired"
	d.AvailableActions = AvailableActions{Update: !retired, Retire: !retired, Reinstate: retired, Delete: c.Total() == 0}
	return d, err
}

func (a *API) listAgents(ctx context.Context, q map[string][]string) Answer {
	offset, size, e := pageParams(q)
	if e != nil {
		return errAnswer(e)
	}
	var ans Answer
	err := a.store.View(ctx, func(tx ReadTx) error {
		all, err := tx.ListAgents()
		if err != nil {
			return err
		}
		page := all[min(offset, len(all)):min(offset+size, len(all))]
		out := make([]AgentDetails, len(page))
		for i := range page {
			if out[i], err = a.agentDetails(tx, &page[i]); err != nil {
				return err
			}
		}
		ans = okAnswer(listBody(out, pagination(offset, size, len(all), len(out)), "inserted_at", "asc"))
		return nil
	})
	if err != nil {
		return storeFailure(err)
	}
	return ans
}

// applyAgent runs an agent operation: a create, or an update, retire,
// reinstate or delete of an agent that exists.
func (a *API) applyAgent(tx Tx, o *operation) (Answer, error) {
	now := a.now()
	if r, ok := o.req.(*CreateAgentRequest); ok {
		return a.createAgent(tx, r, now)
	}
	ag, ok, err := tx.Agent(o.id)
	if err != nil {
		return Answer{}, err
	}
	if !ok {
		return errAnswer(notFound("agent")), nil
	}
	counts, err := tx.InstanceCounts(ag.ID)
	if err != nil {
		return Answer{}, err
	}
	var e *Error
	switch r := o.req.(type) {
	case *UpdateAgentRequest:
		e, err = updateAgent(tx, &ag, r)
	case *AgentActionRequest:
		if o.ep == EndpointDeleteAgent {
			return a.deleteAgent(tx, &ag, counts)
		}
		e = agentAction(o.ep, &ag, counts)
	}
	if err != nil {
		return Answer{}, err
	}
	if e != nil {
		return errAnswer(e), nil
	}
	ag.UpdatedAt = now
	if err := tx.PutAgent(ag); err != nil {
		return Answer{}, err
	}
	d, err := a.agentDetails(tx, &ag)
	return okAnswer(successBody(d, nil)), err
}

// createAgent checks and stores a new agent: its ID (client-chosen in the
// account partition, or made) and its external identifier are unique.
func (a *API) createAgent(tx Tx, r *CreateAgentRequest, now time.Time) (Answer, error) {
	var c checker
	if r.Details == nil {
		c.bad("details", "required")
		return errAnswer(c.failed()), nil
	}
	d := r.Details
	ag := AgentRecord{Status: "pending", EnvironmentID: a.cfg.EnvironmentID, InsertedAt: now, UpdatedAt: now}
	ag.ID = c.pfid("id", d.ID, false)
	if ag.ID != "" && ValidPFID(ag.ID) && !a.inPartition(ag.ID) {
		c.bad("id", "must carry the account partition "+a.partition)
	}
	ag.Name = c.str("name", d.Name, true)
	ag.Description = c.str("description", d.Description, false)
	ag.ExternalID = c.str("external_identifier", d.ExternalIdentifier, false)
	if d.CurrentVersionID != nil {
		c.bad("current_version_id", "not valid at create")
	}
	if e := c.failed(); e != nil {
		return errAnswer(e), nil
	}
	if ag.ID == "" {
		ag.ID = a.NewID()
	} else if _, dup, err := tx.Agent(ag.ID); err != nil || dup {
		if err != nil {
			return Answer{}, err
		}
		return errAnswer(invalidAction("agent " + ag.ID + " exists")), nil
	}
	if ag.ExternalID != "" {
		if _, dup, err := tx.AgentByExternalID(ag.ExternalID); err != nil || dup {
			if err != nil {
				return Answer{}, err
			}
			return errAnswer(invalid("external_identifier", "already used by another agent")), nil
		}
	}
	if err := tx.PutAgent(ag); err != nil {
		return Answer{}, err
	}
	details, err := a.agentDetails(tx, &ag)
	return okAnswer(successBody(details, nil)), err
}

// updateAgent applies an update to ag: name, description and the current
// version (one of the agent's own); the external identifier is fixed at
// creation and a retired agent refuses updates.
func updateAgent(tx Tx, ag *AgentRecord, r *UpdateAgentRequest) (*Error, error) {
	var c checker
	if r.Details == nil {
		c.bad("details", "required")
		return c.failed(), nil
	}
	d := r.Details
	if d.ID != nil || d.ExternalIdentifier != nil {
		c.bad("external_identifier", "can only be set at creation")
	}
	if d.Name != nil && *d.Name == "" {
		c.bad("name", "must not be empty")
	}
	vid := c.pfid("current_version_id", d.CurrentVersionID, false)
	if e := c.failed(); e != nil {
		return e, nil
	}
	if ag.Status == "retired" {
		return invalidAction("agent is retired; reinstate it first"), nil
	}
	if vid != "" {
		v, ok, err := tx.AgentVersion(vid)
		if err != nil {
			return nil, err
		}
		if !ok || v.AgentID != ag.ID {
			return invalid("current_version_id", "not a version of this agent"), nil
		}
		ag.CurrentVersionID = vid
	}
	if d.Name != nil {
		ag.Name = *d.Name
	}
	if d.Description != nil {
		ag.Description = *d.Description
	}
	return nil, nil
}

// agentAction retires or reinstates ag (a reinstated agent is active if it
// has instances, else pending).
func agentAction(ep Endpoint, ag *AgentRecord, counts StatusCounts) *Error {
	switch ep {
	case EndpointRetireAgent:
		if ag.Status == "retired" {
			return invalidAction("agent is already retired")
		}
		ag.Status = "retired"
	case EndpointReinstateAgent:
		if ag.Status != "retired" {
			return invalidAction("agent is " + ag.Status + "; only a retired agent can be reinstated")
		}
		ag.Status = "pending"
		if counts.Total() > 0 {
			ag.Status = "active"
		}
	}
	return nil
}

// deleteAgent deletes an agent that has no instances and answers with
// what it was.
func (a *API) deleteAgent(tx Tx, ag *AgentRecord, counts StatusCounts) (Answer, error) {
	if counts.Total() > 0 {
		return errAnswer(invalidAction("agent has instances; retire it instead")), nil
	}
	d, err := a.agentDetails(tx, ag)
	if err != nil {
		return Answer{}, err
	}
	if err := tx.DeleteAgent(ag.ID); err != nil {
		return Answer{}, err
	}
	return okAnswer(successBody(d, nil)), nil
}

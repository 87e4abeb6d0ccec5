package prefactorapi

import (
	"context"
	"encoding/json"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// register registers an instance: its agent, agent version, schema
// version and deployment are found or created, in that order.
func (a *API) register(tx Tx, o *operation, r *RegisterRequest) (Answer, error) {
	reg, e := a.checkRegister(r)
	if e != nil {
		return errAnswer(e), nil
	}
	in := &reg.in
	now := a.now()
	if in.ID == "" {
		in.ID = a.NewID()
	}
	if _, dup, err := tx.Instance(in.ID); err != nil || dup {
		if err != nil {
			return Answer{}, err
		}
		return errAnswer(invalidAction("agent instance " + in.ID + " exists")), nil
	}
	agent, e, err := a.registerAgent(tx, in, &reg.av, now)
	if err != nil {
		return Answer{}, err
	}
	if e != nil {
		return errAnswer(e), nil
	}
	ver, newVersion, err := a.registerVersion(tx, &agent, &reg.av, now)
	if err != nil {
		return Answer{}, err
	}
	in.VersionID, in.Run.VersionNumber = ver.ID, ver.Number
	if r.UpdateCurrentVersion == nil || *r.UpdateCurrentVersion || agent.CurrentVersionID == "" {
		agent.CurrentVersionID = ver.ID
	}
	if reg.types != nil {
		if in.SchemaVersionID, err = a.registerSchemaVersion(tx, agent.ID, reg, now); err != nil {
			return Answer{}, err
		}
		agent.CurrentSchemaVersion = in.SchemaVersionID
	}
	if newVersion { // with the schema version it was first registered with
		ver.SchemaVersionID = in.SchemaVersionID
		if err := tx.PutAgentVersion(ver); err != nil {
			return Answer{}, err
		}
	}
	if err := tx.PutAgent(agent); err != nil {
		return Answer{}, err
	}
	if in.DeploymentID, err = a.registerDeployment(tx, agent.ID, in.EnvironmentID); err != nil {
		return Answer{}, err
	}
	if o.raw != nil {
		in.Register = clone(o.raw)
	} else {
		in.Register, _ = json.Marshal(r)
	}
	in.Status, in.InsertedAt, in.UpdatedAt = "pending", now, now
	if err := tx.PutInstance(*in); err != nil {
		return Answer{}, err
	}
	return okAnswer(successBody(a.instanceDetails(in), nil)), nil
}

// registration is a checked register request: the instance as far as the
// request and the token say, and its version and schema version inputs.
type registration struct {
	in    InstanceRecord
	av    AgentVersionInput
	sv    SchemaVersionInput
	svRaw json.RawMessage
	types map[string]SpanTypeInfo // nil without a schema version
}

// checkRegister validates a register request: the IDs (PFIDs, the
// instance's in the account partition), the purpose, the version and
// schema version objects; a deployment-scoped token fixes the agent and
// environment.
func (a *API) checkRegister(r *RegisterRequest) (*registration, *Error) {
	var c checker
	reg := &registration{}
	in := &reg.in
	in.ID = c.pfid("id", r.ID, false)
	if in.ID != "" && ValidPFID(in.ID) && !a.inPartition(in.ID) {
		c.bad("id", "must carry the account partition "+a.partition)
	}
	required := a.cfg.RequireIDs && !a.cfg.Deployment
	in.AgentID = c.pfid("agent_id", r.AgentID, required)
	in.EnvironmentID = c.pfid("environment_id", r.EnvironmentID, required)
	in.Purpose = c.enum("purpose", r.Purpose, purposes, false, "live")
	avRaw := c.object("agent_version", r.AgentVersion, false)
	reg.svRaw = c.object("agent_schema_version", r.AgentSchemaVersion, false)
	if e := c.failed(); e != nil {
		return nil, e
	}
	if avRaw != nil {
		if err := decodeStrict(avRaw, &reg.av); err != nil {
			return nil, decodeError(err, "agent_version.")
		}
	}
	if reg.svRaw != nil {
		if err := decodeStrict(reg.svRaw, &reg.sv); err != nil {
			return nil, decodeError(err, "agent_schema_version.")
		}
		reg.types = checkSchemaVersion(&c, &reg.sv, "agent_schema_version.")
	}
	if e := c.failed(); e != nil {
		return nil, e
	}
	if a.cfg.Deployment {
		if (in.AgentID != "" && in.AgentID != a.cfg.AgentID) || (in.EnvironmentID != "" && in.EnvironmentID != a.cfg.EnvironmentID) {
			return nil, &Error{Status: http.StatusForbidden, Code: CodeNotPermitted, Message: "the token is scoped to another agent deployment"}
		}
		in.AgentID, in.EnvironmentID = a.cfg.AgentID, a.cfg.EnvironmentID
	}
	if in.EnvironmentID == "" {
		in.EnvironmentID = a.cfg.EnvironmentID
	}
	return reg, nil
}

// registerAgent finds the instance's agent, by ID or else (no agent_id) by
// the version's name, or makes a new one; a retired agent refuses the
// register. It sets in.AgentID; the agent is stored by the caller.
func (a *API) registerAgent(tx Tx, in *InstanceRecord, av *AgentVersionInput, now time.Time) (AgentRecord, *Error, error) {
	name := "agent"
	if av.Name != nil && *av.Name != "" {
		name = *av.Name
	}
	var agent AgentRecord
	var found bool
	var err error
	if in.AgentID != "" {
		agent, found, err = tx.Agent(in.AgentID)
	} else {
		agent, found, err = tx.AgentByExternalID(name)
	}
	if err != nil {
		return AgentRecord{}, nil, err
	}
	if found && agent.Status == "retired" {
		return AgentRecord{}, invalidAction("agent " + agent.ID + " is retired"), nil
	}
	if !found {
		agent = AgentRecord{ID: in.AgentID, Name: name, EnvironmentID: in.EnvironmentID, InsertedAt: now}
		if agent.ID == "" {
			agent.ID, agent.ExternalID = a.NewID(), name
		}
		if av.Description != nil {
			agent.Description = *av.Description
		}
	}
	in.AgentID = agent.ID
	agent.Status, agent.UpdatedAt = "active", now
	return agent, nil, nil
}

// registerVersion finds the agent's version by its external identifier or
// makes a new one, numbered after the agent's others; isNew says so (the
// caller stores it once its schema version is known: versions are
// immutable).
func (a *API) registerVersion(tx Tx, agent *AgentRecord, av *AgentVersionInput, now time.Time) (ver AgentVersionRecord, isNew bool, err error) {
	ext := ""
	if av.ExternalIdentifier != nil {
		ext = *av.ExternalIdentifier
	}
	ver, found, err := tx.AgentVersionByExternalID(agent.ID, ext)
	if err != nil || found {
		return ver, false, err
	}
	n, err := tx.CountAgentVersions(agent.ID)
	if err != nil {
		return ver, false, err
	}
	ver = AgentVersionRecord{ID: a.NewID(), AgentID: agent.ID, ExternalID: ext, Number: n + 1, InsertedAt: now}
	if av.Name != nil {
		ver.Name = *av.Name
	}
	if av.Description != nil {
		ver.Description = *av.Description
	}
	return ver, true, nil
}

// registerSchemaVersion finds the agent's schema version by its external
// identifier or stores a new one, and returns its ID.
func (a *API) registerSchemaVersion(tx Tx, agentID string, reg *registration, now time.Time) (string, error) {
	ext := *reg.sv.ExternalIdentifier
	schema, found, err := tx.SchemaVersionByExternalID(agentID, ext)
	if err != nil || found {
		return schema.ID, err
	}
	schema = SchemaVersionRecord{ID: a.NewID(), AgentID: agentID, ExternalID: ext, SpanTypes: reg.types,
		Body: clone(reg.svRaw), InsertedAt: now}
	return schema.ID, tx.PutSchemaVersion(schema)
}

// registerDeployment finds the agent's deployment in the environment or
// stores a new one, and returns its ID.
func (a *API) registerDeployment(tx Tx, agentID, envID string) (string, error) {
	dep, found, err := tx.Deployment(agentID, envID)
	if err != nil || found {
		return dep.ID, err
	}
	dep = DeploymentRecord{ID: a.NewID(), AgentID: agentID, EnvironmentID: envID}
	return dep.ID, tx.PutDeployment(dep)
}

// checkSchemaVersion validates a schema version and returns its span types.
// With span_type_schemas the legacy maps are ignored; an empty result
// accepts any span type name.
func checkSchemaVersion(c *checker, sv *SchemaVersionInput, p string) map[string]SpanTypeInfo {
	if sv.ExternalIdentifier == nil || *sv.ExternalIdentifier == "" {
		c.bad(p+"external_identifier", "required")
	}
	types := map[string]SpanTypeInfo{}
	for i, st := range sv.SpanTypeSchemas {
		q := p + "span_type_schemas[" + strconv.Itoa(i) + "]."
		name := c.str(q+"name", st.Name, true)
		if _, dup := types[name]; dup && name != "" {
			c.bad(q+"name", "duplicate span type "+strconv.Quote(name))
		}
		c.object(q+"params_schema", st.ParamsSchema, true)
		c.object(q+"result_schema", st.ResultSchema, false)
		if raw := c.object(q+"data_risk", st.DataRisk, false); raw != nil {
			checkDataRisk(c, q+"data_risk.", raw)
		}
		info := SpanTypeInfo{Title: name}
		if st.Title != nil && *st.Title != "" {
			info.Title = *st.Title
		}
		if st.Template != nil {
			info.Template = *st.Template
		}
		if name != "" {
			types[name] = info
		}
	}
	for name, raw := range sv.SpanSchemas {
		c.object(p+"span_schemas."+name, raw, true)
		if sv.SpanTypeSchemas == nil {
			types[name] = SpanTypeInfo{Title: name}
		}
	}
	for name, raw := range sv.SpanResultSchemas {
		c.object(p+"span_result_schemas."+name, raw, true)
		if sv.SpanSchemas == nil {
			c.bad(p+"span_result_schemas", "only valid with span_schemas")
		}
	}
	checkQualitySchemas(c, p, sv.QualitySchemas)
	return types
}

// checkDataRisk validates a data_risk object: all three parts, every field
// with a valid value.
func checkDataRisk(c *checker, p string, raw json.RawMessage) {
	var dr DataRiskInput
	if err := decodeStrict(raw, &dr); err != nil {
		c.bad(strings.TrimSuffix(p, "."), "malformed: "+err.Error())
		return
	}
	part := func(name string, m map[string]*string, fields []string, set map[string]bool, extra string) {
		if m == nil {
			c.bad(p+name, "required")
			return
		}
		known := map[string]bool{extra: extra != ""}
		for _, f := range fields {
			known[f] = true
			if v := m[f]; v == nil || !set[*v] {
				c.bad(p+name+"."+f, "required: one of "+strings.Join(slices.Sorted(maps.Keys(set)), ", "))
			}
		}
		for f := range m {
			if !known[f] {
				c.bad(p+name+"."+f, "unknown field")
			}
		}
	}
	part("action_profile", dr.ActionProfile, actionFields, risks, "")
	for _, cat := range []struct {
		name string
		m    map[string]*string
	}{{"params_data_categories", dr.ParamsDataCategories}, {"result_data_categories", dr.ResultDataCategories}} {
		part(cat.name, cat.m, categoryFields, inclusions, "classification")
		if cat.m != nil {
			if v := cat.m["classification"]; v == nil || !classes[*v] {
				c.bad(p+cat.name+".classification", "required: one of "+strings.Join(slices.Sorted(maps.Keys(classes)), ", "))
			}
		}
	}
}

// loadInstance checks the path's ID and loads the instance.
func loadInstance(tx Tx, id string) (InstanceRecord, *Error, error) {
	var c checker
	c.pfid("agent_instance_id", &id, true)
	if e := c.failed(); e != nil {
		return InstanceRecord{}, e, nil
	}
	in, ok, err := tx.Instance(id)
	if err != nil {
		return in, nil, err
	}
	if !ok {
		return in, notFound("agent instance"), nil
	}
	return in, nil, nil
}

// startInstance: pending -> active.
func (a *API) startInstance(tx Tx, id string, r *StartRequest) (Answer, error) {
	var c checker
	c.pfid("agent_instance_id", &id, true)
	ts, tsOK := c.time("timestamp", r.Timestamp)
	if e := c.failed(); e != nil {
		return errAnswer(e), nil
	}
	in, e, err := loadInstance(tx, id)
	if err != nil || e != nil {
		return maybeErr(e), err
	}
	if in.Status != "pending" {
		return errAnswer(invalidAction("agent instance is " + in.Status + "; only a pending instance can be started")), nil
	}
	now := a.now()
	in.Status, in.StartedAt, in.UpdatedAt = "active", orNow(ts, tsOK, now), now
	if err := tx.PutInstance(in); err != nil {
		return Answer{}, err
	}
	return okAnswer(successBody(a.instanceDetails(&in), nil)), nil
}

func maybeErr(e *Error) Answer {
	if e == nil {
		return Answer{}
	}
	return errAnswer(e)
}

// finishInstance: active -> complete | failed; pending -> cancelled.
func (a *API) finishInstance(tx Tx, id string, r *FinishInstanceRequest) (Answer, error) {
	var c checker
	c.pfid("agent_instance_id", &id, true)
	ts, tsOK := c.time("timestamp", r.Timestamp)
	status := c.enum("status", r.Status, finishStatuses, false, "complete")
	if e := c.failed(); e != nil {
		return errAnswer(e), nil
	}
	in, e, err := loadInstance(tx, id)
	if err != nil || e != nil {
		return maybeErr(e), err
	}
	switch {
	case Terminal(in.Status):
		return errAnswer(invalidAction("agent instance is already " + in.Status)), nil
	case status == "cancelled" && in.Status != "pending":
		return errAnswer(invalidAction("agent instance is " + in.Status + "; only a pending instance can be cancelled")), nil
	case status != "cancelled" && in.Status != "active":
		return errAnswer(invalidAction("agent instance is " + in.Status + "; only an active instance can be " + status)), nil
	}
	now := a.now()
	in.Status, in.FinishedAt, in.UpdatedAt = status, orNow(ts, tsOK, now), now
	if status == "cancelled" {
		in.StartedAt = in.FinishedAt
	}
	if err := tx.PutInstance(in); err != nil {
		return Answer{}, err
	}
	return okAnswer(successBody(a.instanceDetails(&in), nil)), nil
}

// terminate: pending | active -> terminated, as an operator would.
func (a *API) terminate(tx Tx, id string, r *TerminateRequest) (Answer, error) {
	in, e, err := loadInstance(tx, id)
	if err != nil || e != nil {
		return maybeErr(e), err
	}
	if Terminal(in.Status) {
		return errAnswer(invalidAction("instance " + strconv.Quote(id) + " is " + in.Status)), nil
	}
	now := a.now()
	in.Status, in.FinishedAt, in.UpdatedAt = "terminated", now, now
	if r.Reason != nil {
		in.TerminationReason = *r.Reason
	}
	if err := tx.PutInstance(in); err != nil {
		return Answer{}, err
	}
	return okAnswer(successBody(a.instanceDetails(&in), nil)), nil
}

// Terminate terminates an instance outside any request. It returns a
// not_found or invalid_action *Error, or a store error.
func (a *API) Terminate(ctx context.Context, id, reason string) error {
	if !ValidPFID(id) {
		return notFound("agent instance")
	}
	var ans Answer
	err := a.update(ctx, func(tx Tx) error {
		var err error
		ans, err = a.terminate(tx, id, &TerminateRequest{Reason: &reason})
		return err
	})
	if err != nil {
		return err
	}
	if ans.Status != http.StatusOK {
		var e struct{ Code, Message string }
		_ = json.Unmarshal(ans.Body, &e)
		return &Error{Status: ans.Status, Code: e.Code, Message: e.Message}
	}
	return nil
}

// spanTypes returns the span types of an instance's schema version (nil:
// any name).
func spanTypes(tx ReadTx, in *InstanceRecord) (map[string]SpanTypeInfo, error) {
	if in.SchemaVersionID == "" {
		return nil, nil
	}
	sv, ok, err := tx.SchemaVersion(in.SchemaVersionID)
	if err != nil || !ok {
		return nil, err
	}
	return sv.SpanTypes, nil
}

// createSpan creates a span in any state but cancelled.
func (a *API) createSpan(tx Tx, r *CreateSpanRequest) (Answer, error) {
	var ns newSpan
	if e := a.checkCreateSpan(r, &ns); e != nil {
		return errAnswer(e), nil
	}
	sp := &ns.sp
	in, types, e, err := a.placeSpan(tx, sp)
	if err != nil {
		return Answer{}, err
	}
	if e != nil {
		return errAnswer(e), nil
	}
	now := a.now()
	if sp.Status != "pending" {
		sp.StartedAt = orNow(ns.started, ns.startedOK, now)
	}
	if Terminal(sp.Status) {
		sp.FinishedAt = orNow(ns.fin, ns.finOK, now)
	}
	sp.AgentID, sp.InsertedAt, sp.UpdatedAt = in.AgentID, now, now
	sp.Payload, sp.ResultPayload = clone(sp.Payload), clone(sp.ResultPayload)
	in.SpanCounts.Add(sp.Status, 1)
	in.UpdatedAt = now
	a.cfg.Codec.deriveOnCreate(&in.Run, sp)
	if Terminal(sp.Status) {
		a.cfg.Codec.deriveOnFinish(&in.Run, sp)
	}
	if err := tx.PutSpan(*sp); err != nil {
		return Answer{}, err
	}
	if err := tx.PutInstance(in); err != nil {
		return Answer{}, err
	}
	return okAnswer(a.cfg.Codec.successBody(a.spanDetails(sp, types), control(&in))), nil
}

// newSpan is a checked create request: the span and the times it gave.
type newSpan struct {
	sp               SpanRecord
	started, fin     time.Time
	startedOK, finOK bool
}

// checkCreateSpan validates a create request into ns: the fields, and
// the states they allow (no cancelled create, no start time while pending,
// a result and an end time only when terminal).
func (a *API) checkCreateSpan(r *CreateSpanRequest, ns *newSpan) *Error {
	var c checker
	d := r.Details
	if d == nil {
		c.bad("details", "required")
		return c.failed()
	}
	sp := &ns.sp
	sp.Creates = 1
	sp.InstanceID = c.pfid("agent_instance_id", d.AgentInstanceID, true)
	sp.SchemaName = c.str("schema_name", d.SchemaName, true)
	sp.Status = c.enum("status", d.Status, spanStatuses, true, "")
	sp.Payload = c.object("payload", d.Payload, true)
	sp.ResultPayload = c.object("result_payload", d.ResultPayload, false)
	sp.ID = c.pfid("id", d.ID, false)
	if sp.ID != "" && ValidPFID(sp.ID) && !a.inPartition(sp.ID) {
		c.bad("id", "must carry the account partition "+a.partition)
	}
	sp.ParentID = c.pfid("parent_span_id", d.ParentSpanID, false)
	ns.started, ns.startedOK = c.time("started_at", d.StartedAt)
	ns.fin, ns.finOK = c.time("finished_at", d.FinishedAt)
	sp.SensitiveEncoding = d.SensitiveEncoding
	switch {
	case sp.Status == "cancelled":
		c.bad("status", "a span is cancelled by finishing it while pending")
	case sp.Status == "pending" && ns.startedOK:
		c.bad("started_at", "not valid for a pending span")
	}
	if sp.ResultPayload != nil && !Terminal(sp.Status) {
		c.bad("result_payload", "only valid when status is complete, failed or cancelled")
	}
	if ns.finOK && !Terminal(sp.Status) {
		c.bad("finished_at", "only valid when status is complete, failed or cancelled")
	}
	return c.failed()
}

// placeSpan checks where a new span goes: an instance that takes spans
// (not finished, though a terminated one still does), a span type of its
// schema version, a parent in the same instance, and an ID of its own
// (made when the request has none). It returns the instance and its span
// types.
func (a *API) placeSpan(tx Tx, sp *SpanRecord) (InstanceRecord, map[string]SpanTypeInfo, *Error, error) {
	in, ok, err := tx.Instance(sp.InstanceID)
	if err != nil {
		return in, nil, nil, err
	}
	if !ok {
		return in, nil, notFound("agent instance"), nil
	}
	if Terminal(in.Status) && in.Status != "terminated" {
		return in, nil, invalidAction("agent instance is " + in.Status), nil
	}
	types, err := spanTypes(tx, &in)
	if err != nil {
		return in, nil, nil, err
	}
	if len(types) > 0 {
		if _, ok := types[sp.SchemaName]; !ok {
			return in, nil, invalid("schema_name", "not a span type of the instance's schema version: "+strconv.Quote(sp.SchemaName)), nil
		}
	}
	if sp.ParentID != "" {
		p, ok, err := tx.Span(sp.ParentID)
		if err != nil {
			return in, nil, nil, err
		}
		if !ok || p.InstanceID != sp.InstanceID {
			return in, nil, invalid("parent_span_id", "no such span in agent instance "+sp.InstanceID), nil
		}
	}
	if sp.ID == "" {
		sp.ID = a.NewID()
	} else if _, dup, err := tx.Span(sp.ID); err != nil {
		return in, nil, nil, err
	} else if dup {
		return in, nil, invalidAction("agent span " + sp.ID + " exists"), nil
	}
	return in, types, nil, nil
}

// finishSpan: active -> complete | failed; pending -> cancelled.
func (a *API) finishSpan(tx Tx, id string, r *FinishSpanRequest) (Answer, error) {
	var c checker
	c.pfid("agent_span_id", &id, true)
	ts, tsOK := c.time("timestamp", r.Timestamp)
	status := c.enum("status", r.Status, finishStatuses, false, "complete")
	result := c.object("result_payload", r.ResultPayload, false)
	if e := c.failed(); e != nil {
		return errAnswer(e), nil
	}
	sp, ok, err := tx.Span(id)
	if err != nil {
		return Answer{}, err
	}
	if !ok {
		return errAnswer(notFound("agent span")), nil
	}
	switch {
	case Terminal(sp.Status):
		return errAnswer(invalidAction("agent span is already " + sp.Status)), nil
	case status == "cancelled" && sp.Status != "pending":
		return errAnswer(invalidAction("agent span is " + sp.Status + "; only a pending span can be cancelled")), nil
	case status != "cancelled" && sp.Status != "active":
		return errAnswer(invalidAction("agent span is " + sp.Status + "; only an active span can be " + status)), nil
	}
	in, ok, err := tx.Instance(sp.InstanceID)
	if err != nil {
		return Answer{}, err
	}
	if !ok {
		return errAnswer(notFound("agent instance")), nil
	}
	now := a.now()
	in.SpanCounts.Add(sp.Status, -1)
	sp.Status, sp.FinishedAt = status, orNow(ts, tsOK, now)
	if status == "cancelled" {
		sp.StartedAt = sp.FinishedAt
	}
	if result != nil {
		sp.ResultPayload = clone(result)
	}
	if r.SensitiveEncoding != nil {
		sp.SensitiveEncoding = r.SensitiveEncoding
	}
	sp.Finishes++
	sp.UpdatedAt, in.UpdatedAt = now, now
	in.SpanCounts.Add(status, 1)
	a.cfg.Codec.deriveOnFinish(&in.Run, &sp)
	types, err := spanTypes(tx, &in)
	if err != nil {
		return Answer{}, err
	}
	if err := tx.PutSpan(sp); err != nil {
		return Answer{}, err
	}
	if err := tx.PutInstance(in); err != nil {
		return Answer{}, err
	}
	return okAnswer(a.cfg.Codec.successBody(a.spanDetails(&sp, types), control(&in))), nil
}

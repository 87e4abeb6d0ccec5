package prefactortest

import (
	"encoding/json"
	"errors"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Span statuses, indexes of instance.counts.
const (
	stPending = iota
	stActive
	stComplete
	stFailed
	stCancelled
	numSpanStatuses
)

var spanStatusIndex = map[string]int{"pending": stPending, "active": stActive, "complete": stComplete,
	"failed": stFailed, "cancelled": stCancelled}

var (
	finishStatuses = enumSet("complete", "failed", "cancelled")
	purposes       = enumSet("live", "smoke_test", "eval")
	risks          = map[string]bool{"unknown": true, "allowed": true, "disallowed": true}
	inclusions     = map[string]bool{"unknown": true, "included": true, "excluded": true}
	classes        = map[string]bool{"unknown": true, "public": true, "internal": true, "confidential": true,
		"restricted": true, "secret": true}
	actionFields   = []string{"create_data", "read_data", "update_data", "destroy_data", "financial_transactions", "external_communication"}
	categoryFields = []string{"personal_identifiers", "contact_information", "financial_information", "health_and_medical",
		"criminal_justice", "authentication_and_secrets", "organisational_confidential", "minors_data",
		"location_and_tracking", "behavioural_and_inferred", "gdpr_racial_or_ethnic_origin", "gdpr_political_opinions",
		"gdpr_religious_or_philosophical_beliefs", "gdpr_trade_union_membership", "gdpr_genetic_data",
		"gdpr_biometric_for_identification", "gdpr_sex_life_or_sexual_orientation"}
)

// terminal reports a status that ends an instance or a span.
func terminal(status string) bool {
	return status == "complete" || status == "failed" || status == "cancelled" || status == "terminated"
}

// checker validates fields, collecting errors by field.
type checker struct {
	errs    map[string][]string
	unknown []string
}

func (c *checker) bad(k, msg string) {
	if c.errs == nil {
		c.errs = map[string][]string{}
	}
	c.errs[k] = append(c.errs[k], msg)
}

func (c *checker) str(k string, v *string, required bool) string {
	if v == nil || *v == "" {
		if required {
			c.bad(k, "required")
		}
		return ""
	}
	return *v
}

func (c *checker) pfid(k string, v *string, required bool) string {
	s := c.str(k, v, required)
	if s != "" && !validPFID(s) {
		c.bad(k, "must be a PFID")
	}
	return s
}

// enum returns the set's own copy of the value (which does not point into
// the request body), or def when the value is absent.
func (c *checker) enum(k string, v *string, set map[string]string, required bool, def string) string {
	s := c.str(k, v, required)
	if s == "" {
		return def
	}
	canon, ok := set[s]
	if !ok {
		c.bad(k, "invalid value "+strconv.Quote(s))
		return keep(s)
	}
	return canon
}

// enumSet is the set of an enum's values, each mapped to itself.
func enumSet(values ...string) map[string]string {
	m := make(map[string]string, len(values))
	for _, v := range values {
		m[v] = v
	}
	return m
}

// keep copies a string read from a request body before the server stores
// it: the decoded strings are substrings of the body, and a stored one
// would keep the whole body alive.
func keep(s string) string { return strings.Clone(s) }

func (c *checker) time(k string, v *string) (time.Time, bool) {
	if v == nil {
		return time.Time{}, false
	}
	t, err := time.Parse(time.RFC3339Nano, *v)
	if err != nil {
		c.bad(k, "must be an RFC 3339 timestamp")
		return time.Time{}, false
	}
	return t.UTC(), true
}

// object returns an object value (nil when absent or null). The bytes come
// from a document already checked valid: the first byte tells an object.
func (c *checker) object(k string, raw json.RawMessage, required bool) json.RawMessage {
	if len(raw) == 0 || string(raw) == "null" {
		if required {
			c.bad(k, "required")
		}
		return nil
	}
	if !isObject(raw) {
		c.bad(k, "must be an object")
		return nil
	}
	return raw
}

// only flags the fields of u that allowed (space-separated names) does not
// list; idempotency_key is always allowed.
func (c *checker) only(u *union, allowed string) {
	check := func(name string, present bool) {
		if present && !hasWord(allowed, name) {
			c.unknown = append(c.unknown, name)
		}
	}
	check("_type", u.Type != nil)
	check("id", u.ID != nil)
	check("agent_id", u.AgentID != nil)
	check("environment_id", u.EnvironmentID != nil)
	check("purpose", u.Purpose != nil)
	check("agent_version", u.AgentVersion != nil)
	check("agent_schema_version", u.AgentSchemaVersion != nil)
	check("update_current_version", u.UpdateCurrentVersion != nil)
	check("agent_instance_id", u.AgentInstanceID != nil)
	check("agent_span_id", u.AgentSpanID != nil)
	check("timestamp", u.Timestamp != nil)
	check("status", u.Status != nil)
	check("result_payload", u.ResultPayload != nil)
	check("sensitive_encoding", u.SensitiveEncoding != nil)
	check("reason", u.Reason != nil)
	check("details", u.Details != nil)
	check("schema_name", u.SchemaName != nil)
	check("payload", u.Payload != nil)
	check("parent_span_id", u.ParentSpanID != nil)
	check("started_at", u.StartedAt != nil)
	check("finished_at", u.FinishedAt != nil)
}

func hasWord(list, w string) bool {
	for list != "" {
		var f string
		f, list, _ = strings.Cut(list, " ")
		if f == w {
			return true
		}
	}
	return false
}

// failed returns the answer for the errors found: 400 bad_request for
// unknown fields, else 422 validation_errors.
func (c *checker) failed() (answer, bool) {
	if len(c.unknown) > 0 {
		m := make(map[string][]string, len(c.unknown))
		for _, f := range c.unknown {
			m[f] = []string{"unknown field"}
		}
		return errorAnswer(http.StatusBadRequest, "bad_request", "unknown field "+c.unknown[0], m), true
	}
	if len(c.errs) == 0 {
		return answer{}, false
	}
	keys := make([]string, 0, len(c.errs))
	for k := range c.errs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return errorAnswer(http.StatusUnprocessableEntity, "validation_errors", keys[0]+": "+c.errs[keys[0]][0], c.errs), true
}

// inPartition reports whether a PFID carries the account partition.
func (s *Server) inPartition(id string) bool { return id[10:16] == s.partition }

// clone copies a raw value (nil stays nil).
func clone(b json.RawMessage) json.RawMessage {
	if b == nil {
		return nil
	}
	return append(json.RawMessage(nil), b...)
}

func orNow(t time.Time, ok bool) time.Time {
	if ok {
		return t
	}
	return time.Now().UTC()
}

// run applies one mutating operation; s.mu is held.
func (s *Server) run(ep Endpoint, id string, u *union, bulk bool) answer {
	switch ep {
	case EndpointRegister:
		return s.register(u, bulk)
	case EndpointStart, EndpointFinishInstance:
		return s.instanceAction(ep, id, u)
	case EndpointTerminate:
		return s.terminateRequest(id, u)
	case EndpointCreateSpan:
		return s.createSpan(u)
	case EndpointFinishSpan:
		return s.finishSpan(id, u)
	}
	return notFound("endpoint")
}

type agentVersionReq struct {
	ExternalIdentifier *string `json:"external_identifier"`
	Name               *string `json:"name"`
	Description        *string `json:"description"`
}

type schemaVersionReq struct {
	ExternalIdentifier *string                    `json:"external_identifier"`
	SpanTypeSchemas    []spanTypeSchemaReq        `json:"span_type_schemas"`
	SpanSchemas        map[string]json.RawMessage `json:"span_schemas"`
	SpanResultSchemas  map[string]json.RawMessage `json:"span_result_schemas"`
	QualitySchemas     []json.RawMessage          `json:"quality_schemas"`
}

type spanTypeSchemaReq struct {
	Name           *string         `json:"name"`
	ParamsSchema   json.RawMessage `json:"params_schema"`
	ResultSchema   json.RawMessage `json:"result_schema"`
	Title          *string         `json:"title"`
	Description    *string         `json:"description"`
	Template       *string         `json:"template"`
	ResultTemplate *string         `json:"result_template"`
	DataRisk       json.RawMessage `json:"data_risk"`
}

type dataRiskReq struct {
	ActionProfile        map[string]*string `json:"action_profile"`
	ParamsDataCategories map[string]*string `json:"params_data_categories"`
	ResultDataCategories map[string]*string `json:"result_data_categories"`
}

// register registers an instance; s.mu is held.
func (s *Server) register(u *union, bulk bool) answer {
	var c checker
	c.only(u, "id agent_id environment_id agent_version agent_schema_version purpose update_current_version")
	in := &instance{}
	in.ID = keep(c.pfid("id", u.ID, false))
	if in.ID != "" && validPFID(in.ID) && !s.inPartition(in.ID) {
		c.bad("id", "must carry the account partition "+s.partition)
	}
	in.AgentID = keep(c.pfid("agent_id", u.AgentID, !s.cfg.deployment))
	in.EnvironmentID = keep(c.pfid("environment_id", u.EnvironmentID, !s.cfg.deployment))
	in.Purpose = c.enum("purpose", u.Purpose, purposes, false, "live")
	in.AgentVersion = clone(c.object("agent_version", u.AgentVersion, false))
	in.SchemaVersion = clone(c.object("agent_schema_version", u.AgentSchemaVersion, false))
	if ans, bad := c.failed(); bad {
		return ans
	}
	var av agentVersionReq
	if in.AgentVersion != nil {
		if err := decodeStrict(in.AgentVersion, &av); err != nil {
			return decodeError(err, "agent_version.")
		}
	}
	var names map[string]string
	if in.SchemaVersion != nil {
		var sv schemaVersionReq
		if err := decodeStrict(in.SchemaVersion, &sv); err != nil {
			return decodeError(err, "agent_schema_version.")
		}
		names = checkSchemaVersion(&c, &sv)
	}
	if ans, bad := c.failed(); bad {
		return ans
	}
	if s.cfg.deployment {
		if (in.AgentID != "" && in.AgentID != s.agentID) || (in.EnvironmentID != "" && in.EnvironmentID != s.envID) {
			return errorAnswer(http.StatusForbidden, "not_permitted", "the token is scoped to another agent deployment", nil)
		}
		in.AgentID, in.EnvironmentID = s.agentID, s.envID
	}
	if in.ID == "" {
		in.ID = s.newPFID()
	}
	if _, dup := s.instances[in.ID]; dup {
		return invalidAction("agent instance " + in.ID + " exists")
	}
	agent := in.AgentID + "\x00"
	vkey := agent
	if av.ExternalIdentifier != nil {
		vkey += *av.ExternalIdentifier
	}
	if in.versionID = s.versions[vkey]; in.versionID == "" {
		in.versionID = s.newPFID()
		s.versions[vkey] = in.versionID
	}
	if names != nil {
		var sv struct {
			ExternalIdentifier string `json:"external_identifier"`
		}
		_ = json.Unmarshal(in.SchemaVersion, &sv)
		skey := agent + sv.ExternalIdentifier
		if in.schema = s.schemas[skey]; in.schema == nil { // immutable once stored
			in.schema = &schemaVersion{id: s.newPFID(), titles: names}
			s.schemas[skey] = in.schema
		}
	}
	dkey := agent + in.EnvironmentID
	if in.deploymentID = s.deployments[dkey]; in.deploymentID == "" {
		in.deploymentID = s.newPFID()
		s.deployments[dkey] = in.deploymentID
	}
	if bulk || u.raw == nil {
		in.Register, _ = json.Marshal(u)
	} else {
		in.Register = append(json.RawMessage(nil), u.raw...)
	}
	now := time.Now().UTC()
	in.Status, in.inserted, in.updated = "pending", now, now
	s.instances[in.ID] = in
	s.instOrder = append(s.instOrder, in.ID)
	return success(s.instanceJSON(in), nil)
}

// checkSchemaVersion validates a schema version and returns its span type
// names with their titles.
func checkSchemaVersion(c *checker, sv *schemaVersionReq) map[string]string {
	const p = "agent_schema_version."
	if sv.ExternalIdentifier == nil || *sv.ExternalIdentifier == "" {
		c.bad(p+"external_identifier", "required")
	}
	names := map[string]string{}
	for i, st := range sv.SpanTypeSchemas {
		q := p + "span_type_schemas[" + strconv.Itoa(i) + "]."
		name := c.str(q+"name", st.Name, true)
		if _, dup := names[name]; dup && name != "" {
			c.bad(q+"name", "duplicate span type "+strconv.Quote(name))
		}
		c.object(q+"params_schema", st.ParamsSchema, true)
		c.object(q+"result_schema", st.ResultSchema, false)
		if raw := c.object(q+"data_risk", st.DataRisk, false); raw != nil {
			checkDataRisk(c, q+"data_risk.", raw)
		}
		title := name
		if st.Title != nil && *st.Title != "" {
			title = *st.Title
		}
		if name != "" {
			names[name] = title
		}
	}
	for name, raw := range sv.SpanSchemas {
		c.object(p+"span_schemas."+name, raw, true)
		if sv.SpanTypeSchemas == nil {
			names[name] = name
		}
	}
	for name, raw := range sv.SpanResultSchemas {
		c.object(p+"span_result_schemas."+name, raw, true)
		if sv.SpanSchemas == nil {
			c.bad(p+"span_result_schemas", "only valid with span_schemas")
		}
	}
	for i, raw := range sv.QualitySchemas {
		c.object(p+"quality_schemas["+strconv.Itoa(i)+"]", raw, true)
	}
	return names
}

// checkDataRisk validates a data_risk object: all three parts, every field
// with a valid value.
func checkDataRisk(c *checker, p string, raw json.RawMessage) {
	var dr dataRiskReq
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
				c.bad(p+name+"."+f, "required: one of "+strings.Join(sortedKeys(set), ", "))
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
				c.bad(p+cat.name+".classification", "required: one of "+strings.Join(sortedKeys(classes), ", "))
			}
		}
	}
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// instanceAction starts or finishes an instance; s.mu is held.
func (s *Server) instanceAction(ep Endpoint, id string, u *union) answer {
	var c checker
	if ep == EndpointStart {
		c.only(u, "timestamp")
	} else {
		c.only(u, "timestamp status")
	}
	c.pfid("agent_instance_id", &id, true)
	ts, tsOK := c.time("timestamp", u.Timestamp)
	status := ""
	if ep == EndpointFinishInstance {
		status = c.enum("status", u.Status, finishStatuses, false, "complete")
	}
	if ans, bad := c.failed(); bad {
		return ans
	}
	in, ok := s.instances[id]
	if !ok {
		return notFound("agent instance")
	}
	if ep == EndpointStart {
		if in.Status != "pending" {
			return invalidAction("agent instance is " + in.Status + "; only a pending instance can be started")
		}
		in.Status, in.StartedAt, in.updated = "active", orNow(ts, tsOK), time.Now().UTC()
		return success(s.instanceJSON(in), nil)
	}
	switch {
	case terminal(in.Status):
		return invalidAction("agent instance is already " + in.Status)
	case status == "cancelled" && in.Status != "pending":
		return invalidAction("agent instance is " + in.Status + "; only a pending instance can be cancelled")
	case status != "cancelled" && in.Status != "active":
		return invalidAction("agent instance is " + in.Status + "; only an active instance can be " + status)
	}
	in.Status, in.FinishedAt, in.updated = status, orNow(ts, tsOK), time.Now().UTC()
	if status == "cancelled" {
		in.StartedAt = in.FinishedAt
	}
	return success(s.instanceJSON(in), nil)
}

// terminateRequest terminates an instance; s.mu is held.
func (s *Server) terminateRequest(id string, u *union) answer {
	var c checker
	c.only(u, "reason")
	c.pfid("agent_instance_id", &id, true)
	if ans, bad := c.failed(); bad {
		return ans
	}
	reason := ""
	if u.Reason != nil {
		reason = *u.Reason
	}
	if err := s.terminate(id, reason); err != nil {
		if errors.Is(err, ErrNotFound) {
			return notFound("agent instance")
		}
		return invalidAction(strings.TrimPrefix(err.Error(), ErrInvalidAction.Error()+": "))
	}
	return success(s.instanceJSON(s.instances[id]), nil)
}

// createSpan creates a span; s.mu is held.
func (s *Server) createSpan(u *union) answer {
	var c checker
	c.only(u, "details")
	d := u.Details
	if d == nil {
		c.bad("details", "required")
		ans, _ := c.failed()
		return ans
	}
	sp := &span{Span: Span{Creates: 1}}
	sp.InstanceID = c.pfid("agent_instance_id", d.AgentInstanceID, true)
	sp.SchemaName = c.str("schema_name", d.SchemaName, true)
	sp.Status = c.enum("status", d.Status, spanStatuses, true, "")
	sp.Payload = c.object("payload", d.Payload, true)
	sp.ResultPayload = c.object("result_payload", d.ResultPayload, false)
	sp.ID = c.pfid("id", d.ID, false)
	if sp.ID != "" && validPFID(sp.ID) && !s.inPartition(sp.ID) {
		c.bad("id", "must carry the account partition "+s.partition)
	}
	sp.ParentID = c.pfid("parent_span_id", d.ParentSpanID, false)
	started, startedOK := c.time("started_at", d.StartedAt)
	fin, finOK := c.time("finished_at", d.FinishedAt)
	sp.SensitiveEncoding = d.SensitiveEncoding
	switch {
	case sp.Status == "cancelled":
		c.bad("status", "a span is cancelled by finishing it while pending")
	case sp.Status == "pending" && startedOK:
		c.bad("started_at", "not valid for a pending span")
	}
	if sp.ResultPayload != nil && !terminal(sp.Status) {
		c.bad("result_payload", "only valid when status is complete, failed or cancelled")
	}
	if finOK && !terminal(sp.Status) {
		c.bad("finished_at", "only valid when status is complete, failed or cancelled")
	}
	if ans, bad := c.failed(); bad {
		return ans
	}
	in, ok := s.instances[sp.InstanceID]
	if !ok {
		return notFound("agent instance")
	}
	if terminal(in.Status) && in.Status != "terminated" {
		return invalidAction("agent instance is " + in.Status)
	}
	sp.InstanceID = in.ID
	sp.SchemaName = s.intern(sp.SchemaName)
	sp.title = sp.SchemaName
	if in.schema != nil && len(in.schema.titles) > 0 {
		title, ok := in.schema.titles[sp.SchemaName]
		if !ok {
			return invalid("schema_name", "not a span type of the instance's schema version: "+strconv.Quote(sp.SchemaName))
		}
		sp.title = title
	}
	if sp.ParentID != "" {
		p, ok := s.spans[sp.ParentID]
		if !ok || p.InstanceID != sp.InstanceID {
			return invalid("parent_span_id", "no such span in agent instance "+sp.InstanceID)
		}
		sp.ParentID = p.ID
	}
	if sp.ID == "" {
		sp.ID = s.newPFID()
	} else if _, dup := s.spans[sp.ID]; dup {
		return invalidAction("agent span " + sp.ID + " exists")
	} else {
		sp.ID = keep(sp.ID)
	}
	if sp.Status != "pending" {
		sp.StartedAt = orNow(started, startedOK)
	}
	if terminal(sp.Status) {
		sp.FinishedAt = orNow(fin, finOK)
	}
	now := time.Now().UTC()
	sp.agentID, sp.inserted, sp.updated = in.AgentID, now, now
	// The values may point into the request body: copies are stored.
	sp.Payload, sp.ResultPayload = clone(sp.Payload), clone(sp.ResultPayload)
	s.spans[sp.ID] = sp
	s.spanOrder = append(s.spanOrder, sp.ID)
	in.spans = append(in.spans, sp.ID)
	in.counts[spanStatusIndex[sp.Status]]++
	in.updated = now
	return s.spanAnswer(sp, in)
}

var spanStatuses = enumSet("pending", "active", "complete", "failed", "cancelled")

// finishSpan finishes a span; s.mu is held.
func (s *Server) finishSpan(id string, u *union) answer {
	var c checker
	c.only(u, "timestamp status result_payload sensitive_encoding")
	c.pfid("agent_span_id", &id, true)
	ts, tsOK := c.time("timestamp", u.Timestamp)
	status := c.enum("status", u.Status, finishStatuses, false, "complete")
	result := c.object("result_payload", u.ResultPayload, false)
	if ans, bad := c.failed(); bad {
		return ans
	}
	sp, ok := s.spans[id]
	if !ok {
		return notFound("agent span")
	}
	in := s.instances[sp.InstanceID]
	switch {
	case terminal(sp.Status):
		return invalidAction("agent span is already " + sp.Status)
	case status == "cancelled" && sp.Status != "pending":
		return invalidAction("agent span is " + sp.Status + "; only a pending span can be cancelled")
	case status != "cancelled" && sp.Status != "active":
		return invalidAction("agent span is " + sp.Status + "; only an active span can be " + status)
	}
	in.counts[spanStatusIndex[sp.Status]]--
	sp.Status, sp.FinishedAt = status, orNow(ts, tsOK)
	if status == "cancelled" {
		sp.StartedAt = sp.FinishedAt
	}
	if result != nil {
		sp.ResultPayload = clone(result)
	}
	if u.SensitiveEncoding != nil {
		sp.SensitiveEncoding = u.SensitiveEncoding
	}
	sp.Finishes++
	now := time.Now().UTC()
	sp.updated, in.updated = now, now
	in.counts[spanStatusIndex[status]]++
	return s.spanAnswer(sp, in)
}

// control is the termination signal of a terminated instance, else nil.
func (s *Server) control(in *instance) []byte {
	if in.Status != "terminated" {
		return nil
	}
	b := append(make([]byte, 0, 48+len(in.TerminationReason)), `{"terminate":true,"reason":`...)
	if in.TerminationReason == "" {
		b = append(b, "null"...)
	} else {
		r, _ := json.Marshal(in.TerminationReason)
		b = append(b, r...)
	}
	return append(b, '}')
}

// appendJSONString appends s as a JSON string.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' || c >= 0x80 {
			enc, _ := json.Marshal(s)
			return append(b, enc...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

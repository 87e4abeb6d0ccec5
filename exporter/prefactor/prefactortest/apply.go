package prefactortest

import (
	"bytes"
	"encoding/json"
	"net/http"
	"sort"
	"time"
)

var (
	instanceStatuses = map[string]bool{"complete": true, "failed": true, "cancelled": true}
	spanStatuses     = map[string]bool{"pending": true, "active": true, "complete": true, "failed": true, "cancelled": true}
	purposes         = map[string]bool{"live": true, "smoke_test": true, "eval": true}
)

// fields decodes a request object strictly: only the allowed keys, each
// of its type; required keys present and not null.
type fields struct {
	obj  map[string]json.RawMessage
	errs map[string][]string
}

func newFields(obj map[string]json.RawMessage, allowed ...string) *fields {
	f := &fields{obj: obj, errs: map[string][]string{}}
	ok := map[string]bool{"idempotency_key": true, "_type": true}
	for _, a := range allowed {
		ok[a] = true
	}
	for k := range obj {
		if !ok[k] {
			f.errs[k] = append(f.errs[k], "unknown field")
		}
	}
	return f
}

func (f *fields) bad(k, msg string) { f.errs[k] = append(f.errs[k], msg) }

func isNull(raw json.RawMessage) bool { return len(raw) == 0 || string(raw) == "null" }

// str returns a string field; "" when absent or null.
func (f *fields) str(k string, required bool) string {
	raw, ok := f.obj[k]
	if !ok || isNull(raw) {
		if required {
			f.bad(k, "required")
		}
		return ""
	}
	var v string
	if json.Unmarshal(raw, &v) != nil {
		f.bad(k, "must be a string")
	}
	return v
}

func (f *fields) pfid(k string, required bool) string {
	v := f.str(k, required)
	if v != "" && !validPFID(v) {
		f.bad(k, "must be a PFID")
	}
	return v
}

func (f *fields) enum(k string, set map[string]bool, required bool, def string) string {
	v := f.str(k, required)
	if v == "" {
		return def
	}
	if !set[v] {
		f.bad(k, "invalid value "+v)
	}
	return v
}

func (f *fields) time(k string) (time.Time, bool) {
	v := f.str(k, false)
	if v == "" {
		return time.Time{}, false
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		f.bad(k, "must be an RFC 3339 timestamp")
		return time.Time{}, false
	}
	return t.UTC(), true
}

// object returns an object field (raw), nil when absent or null.
func (f *fields) object(k string, required bool) json.RawMessage {
	raw, ok := f.obj[k]
	if !ok || isNull(raw) {
		if required {
			f.bad(k, "required")
		}
		return nil
	}
	// raw comes from a document already checked valid: the first byte
	// tells an object.
	if t := bytes.TrimSpace(raw); len(t) == 0 || t[0] != '{' {
		f.bad(k, "must be an object")
		return nil
	}
	return raw
}

func (f *fields) boolean(k string) *bool {
	raw, ok := f.obj[k]
	if !ok || isNull(raw) {
		return nil
	}
	var v bool
	if json.Unmarshal(raw, &v) != nil {
		f.bad(k, "must be a boolean")
		return nil
	}
	return &v
}

func (f *fields) failed() (answer, bool) {
	if len(f.errs) == 0 {
		return answer{}, false
	}
	keys := make([]string, 0, len(f.errs))
	for k := range f.errs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return errorAnswer(http.StatusUnprocessableEntity, "validation_errors", keys[0]+": "+f.errs[keys[0]][0], f.errs), true
}

func finished(status string) bool {
	return status == "complete" || status == "failed" || status == "cancelled" || status == "terminated"
}

func orNow(t time.Time, ok bool) time.Time {
	if ok {
		return t
	}
	return time.Now().UTC()
}

// apply runs one mutating operation; s.mu is held.
func (s *Server) apply(ep Endpoint, id string, obj map[string]json.RawMessage) answer {
	switch ep {
	case EndpointRegister:
		return s.register(obj)
	case EndpointStart, EndpointFinishInstance:
		return s.instanceAction(ep, id, obj)
	}
	return errorAnswer(404, "not_found", "no such endpoint", nil)
}

func (s *Server) register(obj map[string]json.RawMessage) answer {
	f := newFields(obj, "id", "agent_id", "environment_id", "agent_version", "agent_schema_version",
		"purpose", "update_current_version")
	in := &instance{counts: map[string]int{}, inserted: time.Now().UTC()}
	in.ID = f.pfid("id", false)
	in.AgentID = f.pfid("agent_id", !s.cfg.deployment)
	in.EnvironmentID = f.pfid("environment_id", !s.cfg.deployment)
	in.Purpose = f.enum("purpose", purposes, false, "live")
	in.AgentVersion = f.object("agent_version", false)
	in.SchemaVersion = f.object("agent_schema_version", false)
	f.boolean("update_current_version")
	if in.AgentVersion != nil {
		var av map[string]json.RawMessage
		_ = json.Unmarshal(in.AgentVersion, &av)
		sub := newFields(av, "external_identifier", "name", "description")
		sub.str("external_identifier", false)
		sub.str("name", false)
		sub.str("description", false)
		for k, v := range sub.errs {
			f.errs["agent_version."+k] = v
		}
	}
	if in.SchemaVersion != nil {
		var sv struct {
			ExternalIdentifier string `json:"external_identifier"`
			SpanTypeSchemas    []struct {
				Name         string          `json:"name"`
				ParamsSchema json.RawMessage `json:"params_schema"`
			} `json:"span_type_schemas"`
			SpanSchemas map[string]json.RawMessage `json:"span_schemas"`
		}
		if json.Unmarshal(in.SchemaVersion, &sv) != nil {
			f.bad("agent_schema_version", "malformed")
		}
		if sv.ExternalIdentifier == "" {
			f.bad("agent_schema_version.external_identifier", "required")
		}
		in.schemaNames = map[string]bool{}
		for _, st := range sv.SpanTypeSchemas {
			if st.Name == "" {
				f.bad("agent_schema_version.span_type_schemas.name", "required")
			}
			if isNull(st.ParamsSchema) {
				f.bad("agent_schema_version.span_type_schemas.params_schema", "required")
			}
			in.schemaNames[st.Name] = true
		}
		for name := range sv.SpanSchemas {
			in.schemaNames[name] = true
		}
	}
	if ans, bad := f.failed(); bad {
		return ans
	}
	if in.ID == "" {
		in.ID = s.newPFID()
	}
	if s.cfg.deployment {
		in.AgentID, in.EnvironmentID = s.agentID, s.envID
	}
	if _, dup := s.instances[in.ID]; dup {
		return errorAnswer(409, "invalid_action", "agent instance "+in.ID+" exists", nil)
	}
	in.Status = "pending"
	in.Register, _ = json.Marshal(obj)
	s.instances[in.ID] = in
	s.instOrder = append(s.instOrder, in.ID)
	return success(s.instanceJSON(in), nil)
}

func (s *Server) instanceAction(ep Endpoint, id string, obj map[string]json.RawMessage) answer {
	f := newFields(obj, "timestamp", "status", "agent_instance_id")
	if ep == EndpointStart {
		delete(f.errs, "status")
		if _, ok := obj["status"]; ok {
			f.bad("status", "unknown field")
		}
	}
	if !validPFID(id) {
		f.bad("agent_instance_id", "must be a PFID")
	}
	ts, tsOK := f.time("timestamp")
	status := ""
	if ep == EndpointFinishInstance {
		status = f.enum("status", instanceStatuses, false, "complete")
	}
	if ans, bad := f.failed(); bad {
		return ans
	}
	in, ok := s.instances[id]
	if !ok {
		return errorAnswer(404, "not_found", "agent instance not found", nil)
	}
	if ep == EndpointStart {
		if in.Status != "pending" {
			return errorAnswer(409, "invalid_action", "agent instance is "+in.Status, nil)
		}
		in.Status, in.StartedAt = "active", orNow(ts, tsOK)
		return success(s.instanceJSON(in), nil)
	}
	switch {
	case finished(in.Status):
		return errorAnswer(409, "invalid_action", "agent instance is "+in.Status, nil)
	case status == "cancelled" && in.Status != "pending":
		return errorAnswer(409, "invalid_action", "only a pending instance can be cancelled", nil)
	case status != "cancelled" && in.Status != "active":
		return errorAnswer(409, "invalid_action", "only an active instance can be "+status, nil)
	}
	in.Status, in.FinishedAt = status, orNow(ts, tsOK)
	if status == "cancelled" {
		in.StartedAt = in.FinishedAt
	}
	return success(s.instanceJSON(in), nil)
}

// control is the termination signal of a terminated instance, else nil.
func (s *Server) control(in *instance) []byte {
	if in == nil || in.Status != "terminated" {
		return nil
	}
	b, _ := json.Marshal(map[string]any{"terminate": true, "reason": in.TerminationReason})
	return b
}

func tsJSON(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UTC().Format("2006-01-02T15:04:05.000000Z")
}

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// instanceJSON renders an AgentInstance; s.mu is held.
func (s *Server) instanceJSON(in *instance) []byte {
	counts := map[string]int{"total": 0, "finished": 0}
	for _, st := range []string{"pending", "active", "complete", "failed", "cancelled"} {
		counts[st] = in.counts[st]
		counts["total"] += in.counts[st]
		if finished(st) {
			counts["finished"] += in.counts[st]
		}
	}
	b, _ := json.Marshal(map[string]any{
		"type": "agent_instance", "id": in.ID, "account_id": s.agentID, "agent_id": in.AgentID,
		"agent_version_id": s.agentID, "environment_id": in.EnvironmentID, "agent_deployment_id": s.envID,
		"status": in.Status, "purpose": in.Purpose, "termination_reason": nullable(in.TerminationReason),
		"inserted_at": tsJSON(in.inserted), "updated_at": tsJSON(time.Now()),
		"started_at": tsJSON(in.StartedAt), "finished_at": tsJSON(in.FinishedAt), "span_counts": counts,
	})
	return b
}

// spanJSON renders an AgentSpan.
func spanJSON(sp *Span) []byte {
	b := make([]byte, 0, 320+len(sp.Payload)+len(sp.ResultPayload))
	b = append(b, `{"type":"agent_span","id":"`...)
	b = append(b, sp.ID...) // PFIDs: no escaping needed
	b = append(b, `","agent_instance_id":"`...)
	b = append(b, sp.InstanceID...)
	b = append(b, `","parent_span_id":`...)
	if sp.ParentID == "" {
		b = append(b, "null"...)
	} else {
		b = append(b, '"')
		b = append(b, sp.ParentID...)
		b = append(b, '"')
	}
	name, _ := json.Marshal(sp.SchemaName)
	b = append(b, `,"schema_name":`...)
	b = append(b, name...)
	b = append(b, `,"schema_title":`...)
	b = append(b, name...)
	b = append(b, `,"status":"`...)
	b = append(b, sp.Status...)
	b = append(b, `","started_at":`...)
	b = appendTS(b, sp.StartedAt)
	b = append(b, `,"finished_at":`...)
	b = appendTS(b, sp.FinishedAt)
	b = append(b, `,"payload":`...)
	b = append(b, sp.Payload...)
	b = append(b, `,"result_payload":`...)
	if sp.ResultPayload != nil {
		b = append(b, sp.ResultPayload...)
	} else {
		b = append(b, "null"...)
	}
	return append(b, `,"summary":null}`...)
}

func appendTS(b []byte, t time.Time) []byte {
	if t.IsZero() {
		return append(b, "null"...)
	}
	b = append(b, '"')
	b = t.UTC().AppendFormat(b, "2006-01-02T15:04:05.000000Z")
	return append(b, '"')
}

package prefactortest

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"hash"
	"net/http"
	"strings"
	"time"
)

// union is a request or bulk item, decoded in one pass into the fields
// any operation may carry; which of them an operation allows is checked
// after. Span create and finish, the frequent operations, are validated
// from it directly; the others go through their field maps.
type union struct {
	Type                 *string         `json:"_type,omitempty"`
	Key                  *string         `json:"idempotency_key,omitempty"`
	ID                   *string         `json:"id,omitempty"`
	AgentID              *string         `json:"agent_id,omitempty"`
	EnvironmentID        *string         `json:"environment_id,omitempty"`
	Purpose              *string         `json:"purpose,omitempty"`
	AgentVersion         json.RawMessage `json:"agent_version,omitempty"`
	AgentSchemaVersion   json.RawMessage `json:"agent_schema_version,omitempty"`
	UpdateCurrentVersion *bool           `json:"update_current_version,omitempty"`
	AgentInstanceID      *string         `json:"agent_instance_id,omitempty"`
	AgentSpanID          *string         `json:"agent_span_id,omitempty"`
	Timestamp            *string         `json:"timestamp,omitempty"`
	Status               *string         `json:"status,omitempty"`
	ResultPayload        json.RawMessage `json:"result_payload,omitempty"`
	SensitiveEncoding    *bool           `json:"sensitive_encoding,omitempty"`
	Details              *spanDetails    `json:"details,omitempty"`
}

type spanDetails struct {
	AgentInstanceID   *string         `json:"agent_instance_id,omitempty"`
	SchemaName        *string         `json:"schema_name,omitempty"`
	Status            *string         `json:"status,omitempty"`
	Payload           json.RawMessage `json:"payload,omitempty"`
	ResultPayload     json.RawMessage `json:"result_payload,omitempty"`
	ID                *string         `json:"id,omitempty"`
	ParentSpanID      *string         `json:"parent_span_id,omitempty"`
	StartedAt         *string         `json:"started_at,omitempty"`
	FinishedAt        *string         `json:"finished_at,omitempty"`
	SensitiveEncoding *bool           `json:"sensitive_encoding,omitempty"`
	IdempotencyKey    *string         `json:"idempotency_key,omitempty"`
}

// decodeStrict decodes b into v, refusing unknown fields.
func decodeStrict(b []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		return err
	}
	if d.More() {
		return errTrailing
	}
	return nil
}

type errString string

func (e errString) Error() string { return string(e) }

const errTrailing = errString("trailing data after the JSON object")

// decodeError turns a decoding error into a 422 (unknown field, wrong
// type) or a 400 (not JSON).
func decodeError(err error) answer {
	msg := err.Error()
	if f, ok := strings.CutPrefix(msg, "json: unknown field "); ok {
		return invalid(strings.Trim(f, `"`), "unknown field")
	}
	var te *json.UnmarshalTypeError
	if ok := asTypeError(err, &te); ok {
		return invalid(te.Field, "wrong type: "+te.Value)
	}
	return errorAnswer(http.StatusBadRequest, "bad_request", "the body must be a JSON object: "+msg, nil)
}

func asTypeError(err error, te **json.UnmarshalTypeError) bool {
	t, ok := err.(*json.UnmarshalTypeError)
	if ok {
		*te = t
	}
	return ok
}

// hash identifies the operation for idempotency.
func (u *union) hash(ep Endpoint) [32]byte {
	h := sha256.New()
	h.Write([]byte(ep))
	ps := func(s *string) {
		h.Write([]byte{0})
		if s != nil {
			h.Write([]byte{1})
			h.Write([]byte(*s))
		}
	}
	pr := func(r json.RawMessage) {
		h.Write([]byte{0})
		h.Write(r)
	}
	pb := func(b *bool) {
		switch {
		case b == nil:
			h.Write([]byte{0})
		case *b:
			h.Write([]byte{1})
		default:
			h.Write([]byte{2})
		}
	}
	for _, s := range []*string{u.Type, u.ID, u.AgentID, u.EnvironmentID, u.Purpose, u.AgentInstanceID, u.AgentSpanID, u.Timestamp, u.Status} {
		ps(s)
	}
	pr(u.AgentVersion)
	pr(u.AgentSchemaVersion)
	pr(u.ResultPayload)
	pb(u.UpdateCurrentVersion)
	pb(u.SensitiveEncoding)
	if d := u.Details; d != nil {
		hashDetails(h, d, ps, pr, pb)
	}
	var out [32]byte
	h.Sum(out[:0])
	return out
}

func hashDetails(_ hash.Hash, d *spanDetails, ps func(*string), pr func(json.RawMessage), pb func(*bool)) {
	for _, s := range []*string{d.AgentInstanceID, d.SchemaName, d.Status, d.ID, d.ParentSpanID, d.StartedAt, d.FinishedAt, d.IdempotencyKey} {
		ps(s)
	}
	pr(d.Payload)
	pr(d.ResultPayload)
	pb(d.SensitiveEncoding)
}

// asMap re-encodes the union as a field map, for the rare operations.
func (u *union) asMap() map[string]json.RawMessage {
	b, _ := json.Marshal(u)
	var m map[string]json.RawMessage
	_ = json.Unmarshal(b, &m)
	return m
}

// checker validates typed fields, collecting errors by field.
type checker struct{ errs map[string][]string }

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

func (c *checker) enum(k string, v *string, set map[string]bool, required bool, def string) string {
	s := c.str(k, v, required)
	if s == "" {
		return def
	}
	if !set[s] {
		c.bad(k, "invalid value "+s)
	}
	return s
}

func (c *checker) time(k string, v *string) (time.Time, bool) {
	if v == nil || *v == "" {
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
	if isNull(raw) {
		if required {
			c.bad(k, "required")
		}
		return nil
	}
	if t := bytes.TrimSpace(raw); len(t) == 0 || t[0] != '{' {
		c.bad(k, "must be an object")
		return nil
	}
	return raw
}

// only refuses the fields of u that allowed (space-separated names) does
// not list.
func (c *checker) only(u *union, allowed string) {
	check := func(name string, present bool) {
		if present && !hasWord(allowed, name) {
			c.bad(name, "unknown field")
		}
	}
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
	check("details", u.Details != nil)
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

func (c *checker) failed() (answer, bool) {
	if len(c.errs) == 0 {
		return answer{}, false
	}
	f := &fields{errs: c.errs}
	return f.failed()
}

// createSpanTyped creates a span; s.mu is held.
func (s *Server) createSpanTyped(u *union) answer {
	var c checker
	c.only(u, "details")
	d := u.Details
	if d == nil {
		c.bad("details", "required object")
		ans, _ := c.failed()
		return ans
	}
	sp := &Span{Creates: 1}
	sp.InstanceID = c.pfid("agent_instance_id", d.AgentInstanceID, true)
	sp.SchemaName = c.str("schema_name", d.SchemaName, true)
	sp.Status = c.enum("status", d.Status, spanStatuses, true, "")
	sp.Payload = c.object("payload", d.Payload, true)
	sp.ResultPayload = c.object("result_payload", d.ResultPayload, false)
	sp.ID = c.pfid("id", d.ID, false)
	sp.ParentID = c.pfid("parent_span_id", d.ParentSpanID, false)
	started, startedOK := c.time("started_at", d.StartedAt)
	fin, finOK := c.time("finished_at", d.FinishedAt)
	sp.SensitiveEncoding = d.SensitiveEncoding
	if sp.Status == "cancelled" {
		c.bad("status", "a span is cancelled by finishing it while pending")
	}
	if sp.ResultPayload != nil && !finished(sp.Status) {
		c.bad("result_payload", "only valid when status is complete, failed or cancelled")
	}
	if finOK && !finished(sp.Status) {
		c.bad("finished_at", "only valid for a finished span")
	}
	if ans, bad := c.failed(); bad {
		return ans
	}
	return s.storeSpan(sp, started, startedOK, fin, finOK)
}

// storeSpan checks a new span against the stored state and keeps it;
// s.mu is held.
func (s *Server) storeSpan(sp *Span, started time.Time, startedOK bool, fin time.Time, finOK bool) answer {
	in, ok := s.instances[sp.InstanceID]
	if !ok {
		return errorAnswer(404, "not_found", "agent instance not found", nil)
	}
	if finished(in.Status) && in.Status != "terminated" {
		return errorAnswer(409, "invalid_action", "agent instance is "+in.Status, nil)
	}
	if len(in.schemaNames) > 0 && !in.schemaNames[sp.SchemaName] {
		return invalid("schema_name", "not a span type of the instance's schema version: "+sp.SchemaName)
	}
	if sp.ParentID != "" {
		p, ok := s.spans[sp.ParentID]
		if !ok || p.InstanceID != sp.InstanceID {
			return invalid("parent_span_id", "no such span in this instance")
		}
	}
	if sp.ID == "" {
		sp.ID = s.newPFID()
	}
	if _, dup := s.spans[sp.ID]; dup {
		return errorAnswer(409, "invalid_action", "agent span "+sp.ID+" exists", nil)
	}
	if sp.Status != "pending" {
		sp.StartedAt = orNow(started, startedOK)
	}
	if finished(sp.Status) {
		sp.FinishedAt = orNow(fin, finOK)
	}
	s.spans[sp.ID] = sp
	s.spanOrder = append(s.spanOrder, sp.ID)
	s.byInst[sp.InstanceID] = append(s.byInst[sp.InstanceID], sp.ID)
	in.counts[sp.Status]++
	return success(spanJSON(sp), s.control(in))
}

// finishSpanTyped finishes a span; s.mu is held.
func (s *Server) finishSpanTyped(id string, u *union, bulk bool) answer {
	var c checker
	allowed := "timestamp status result_payload sensitive_encoding"
	if bulk {
		allowed += " agent_span_id"
	}
	c.only(u, allowed)
	if !validPFID(id) {
		c.bad("agent_span_id", "must be a PFID")
	}
	ts, tsOK := c.time("timestamp", u.Timestamp)
	status := c.enum("status", u.Status, instanceStatuses, false, "complete")
	result := c.object("result_payload", u.ResultPayload, false)
	if ans, bad := c.failed(); bad {
		return ans
	}
	sp, ok := s.spans[id]
	if !ok {
		return errorAnswer(404, "not_found", "agent span not found", nil)
	}
	in := s.instances[sp.InstanceID]
	switch {
	case finished(sp.Status):
		return errorAnswer(409, "invalid_action", "agent span is already "+sp.Status, nil)
	case status == "cancelled" && sp.Status != "pending":
		return errorAnswer(409, "invalid_action", "only a pending span can be cancelled", nil)
	case status != "cancelled" && sp.Status != "active":
		return errorAnswer(409, "invalid_action", "only an active span can be "+status, nil)
	}
	in.counts[sp.Status]--
	sp.Status, sp.FinishedAt = status, orNow(ts, tsOK)
	if status == "cancelled" {
		sp.StartedAt = sp.FinishedAt
	}
	if result != nil {
		sp.ResultPayload = result
	}
	if u.SensitiveEncoding != nil {
		sp.SensitiveEncoding = u.SensitiveEncoding
	}
	sp.Finishes++
	in.counts[status]++
	return success(spanJSON(sp), s.control(in))
}

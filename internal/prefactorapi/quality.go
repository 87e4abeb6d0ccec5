package prefactorapi

import (
	"bytes"
	"context"
	"encoding/json"
	"maps"
	"strconv"
)

// Quality payloads (reference 4.8): POST /api/v1/agent_instance/{id}/record_quality
// with {"name":..., "payload":{...}|null, "idempotency_key"?}. A payload is
// stored under its name on the instance (InstanceRecord.Quality, in the
// instance's own row, so that it commits with the answer and goes with the
// instance at retention); null removes that name's payload; other names
// are left as they are. When the instance's schema version declares
// quality_schemas, the name must be one of them (else 422
// validation_errors), and a declared template renders the name's summary
// (quality_summaries) as span templates render theirs. The payload is not
// checked against the declared JSON Schema: schemas are for governance,
// as for spans. Quality may be recorded in any state of the instance, also
// after it finished (the Python SDK queues it after the finish).
//
// The debugging export (reference 4.7): GET /api/v1/agent_instance/{id}/agent_context
// answers {"status":"success","agent_context":{"body":{...}}}, the body
// being the instance's details, its agent version and schema version, and
// its spans in creation order with their summaries (see AgentContextBody).

// Instance endpoints of this file.
const (
	EndpointRecordQuality Endpoint = "record_quality"
	EndpointAgentContext  Endpoint = "agent_context"
)

// RecordQualityRequest is the body of POST /api/v1/agent_instance/{id}/record_quality.
// Payload must be present: an object, or null to remove the name's payload.
type RecordQualityRequest struct {
	Name           *string         `json:"name"`
	Payload        json.RawMessage `json:"payload"`
	IdempotencyKey *string         `json:"idempotency_key"`
}

// QualityRecord is one named quality payload of an instance.
type QualityRecord struct {
	// Payload is the payload, compact JSON.
	Payload json.RawMessage `json:"payload"`
	// Summary is the rendered template of the name's quality schema; nil
	// when it has none (or it renders nothing).
	Summary *string `json:"summary,omitempty"`
}

// QualitySchemaInput is one entry of a schema version's quality_schemas.
type QualitySchemaInput struct {
	Name        *string         `json:"name"`
	Schema      json.RawMessage `json:"schema"`
	Title       *string         `json:"title"`
	Description *string         `json:"description"`
	Template    *string         `json:"template"`
	DataRisk    json.RawMessage `json:"data_risk"`
}

// checkQualitySchemas validates quality_schemas entries (p is the prefix of
// the field names) and returns the templates by name ("" for none).
func checkQualitySchemas(c *checker, p string, raws []json.RawMessage) map[string]string {
	out := make(map[string]string, len(raws))
	for i, raw := range raws {
		q := p + "quality_schemas[" + strconv.Itoa(i) + "]"
		if c.object(q, raw, true) == nil {
			continue
		}
		var qs QualitySchemaInput
		if err := decodeStrict(raw, &qs); err != nil {
			e := decodeError(err, q+".")
			for k, v := range e.Fields {
				c.errs = appendErrs(c.errs, k, v)
			}
			if len(e.Fields) == 0 {
				c.bad(q, e.Message)
			}
			continue
		}
		name := c.str(q+".name", qs.Name, true)
		if _, dup := out[name]; dup && name != "" {
			c.bad(q+".name", "duplicate quality schema "+strconv.Quote(name))
		}
		c.object(q+".schema", qs.Schema, true)
		if dr := c.object(q+".data_risk", qs.DataRisk, false); dr != nil {
			checkDataRisk(c, q+".data_risk.", dr)
		}
		if name != "" {
			out[name] = deref(qs.Template)
		}
	}
	return out
}

func appendErrs(m map[string][]string, k string, v []string) map[string][]string {
	if m == nil {
		m = map[string][]string{}
	}
	m[k] = append(m[k], v...)
	return m
}

// qualitySchemas returns the quality templates the instance's schema
// version declares, by name; nil when it declares none (any name is
// accepted then).
func qualitySchemas(tx ReadTx, in *InstanceRecord) (map[string]string, error) {
	if in.SchemaVersionID == "" {
		return nil, nil
	}
	sv, ok, err := tx.SchemaVersion(in.SchemaVersionID)
	if err != nil || !ok || len(sv.Body) == 0 {
		return nil, err
	}
	var body struct {
		QualitySchemas []json.RawMessage `json:"quality_schemas"`
	}
	if json.Unmarshal(sv.Body, &body) != nil || len(body.QualitySchemas) == 0 {
		return nil, nil
	}
	var c checker // checked when registered
	return checkQualitySchemas(&c, "", body.QualitySchemas), nil
}

// recordQuality stores, replaces or removes one named quality payload.
func (a *API) recordQuality(tx Tx, id string, r *RecordQualityRequest) (Answer, error) {
	var c checker
	c.pfid("agent_instance_id", &id, true)
	name := c.str("name", r.Name, true)
	var payload json.RawMessage
	switch {
	case r.Payload == nil:
		c.bad("payload", "required: an object, or null to remove the payload")
	case string(r.Payload) != "null":
		payload = c.object("payload", r.Payload, false)
	}
	if e := c.failed(); e != nil {
		return errAnswer(e), nil
	}
	in, e, err := loadInstance(tx, id)
	if err != nil || e != nil {
		return maybeErr(e), err
	}
	schemas, err := qualitySchemas(tx, &in)
	if err != nil {
		return Answer{}, err
	}
	tmpl, declared := schemas[name]
	if schemas != nil && !declared {
		return errAnswer(invalid("name", "not a quality schema of the instance's schema version: "+strconv.Quote(name))), nil
	}
	// Copied: a store may hand out the record it holds.
	q := maps.Clone(in.Quality)
	if payload == nil {
		delete(q, name)
	} else {
		var buf bytes.Buffer
		if err := json.Compact(&buf, payload); err != nil {
			return errAnswer(invalid("payload", "malformed JSON")), nil
		}
		rec := QualityRecord{Payload: buf.Bytes()}
		if tmpl != "" {
			if s, ok := RenderSummary(tmpl, rec.Payload, nil); ok {
				rec.Summary = &s
			}
		}
		if q == nil {
			q = map[string]QualityRecord{}
		}
		q[name] = rec
	}
	if len(q) == 0 {
		q = nil
	}
	in.Quality, in.UpdatedAt = q, a.now()
	if err := tx.PutInstance(in); err != nil {
		return Answer{}, err
	}
	return okAnswer(successBody(a.instanceDetails(&in), nil)), nil
}

// AgentContextBody is the body of the debugging export of an instance.
type AgentContextBody struct {
	AgentInstance      InstanceDetails       `json:"agent_instance"`
	AgentVersion       *AgentVersionDetails  `json:"agent_version"`
	AgentSchemaVersion *SchemaVersionDetails `json:"agent_schema_version"`
	Spans              []SpanDetails         `json:"spans"`
}

// agentContext answers GET /api/v1/agent_instance/{id}/agent_context.
func (a *API) agentContext(ctx context.Context, id string) Answer {
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
		body := AgentContextBody{AgentInstance: a.instanceDetails(&in), Spans: []SpanDetails{}}
		if v, ok, err := tx.AgentVersion(in.VersionID); err != nil {
			return err
		} else if ok {
			ag, _, err := tx.Agent(v.AgentID)
			if err != nil {
				return err
			}
			d := a.versionDetails(&v, &ag)
			body.AgentVersion = &d
		}
		if in.SchemaVersionID != "" {
			sv, ok, err := tx.SchemaVersion(in.SchemaVersionID)
			if err != nil {
				return err
			}
			if ok {
				ag, _, err := tx.Agent(sv.AgentID)
				if err != nil {
					return err
				}
				d := a.schemaVersionDetails(&sv, &ag)
				body.AgentSchemaVersion = &d
			}
		}
		spans, err := tx.ListSpans(id)
		if err != nil {
			return err
		}
		types, err := spanTypes(tx, &in)
		if err != nil {
			return err
		}
		for i := range spans {
			body.Spans = append(body.Spans, a.spanDetails(&spans[i], types))
		}
		b, err := json.Marshal(struct {
			Status       string `json:"status"`
			AgentContext struct {
				Body AgentContextBody `json:"body"`
			} `json:"agent_context"`
		}{Status: "success", AgentContext: struct {
			Body AgentContextBody `json:"body"`
		}{body}})
		ans = okAnswer(b)
		return err
	})
	if err != nil {
		return storeFailure(err)
	}
	return ans
}

package prefactortest

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/agenttrace/agenttrace/exporter/prefactor/internal/wiretime"
)

// tsLayout is the layout of the API's timestamps.
var tsLayout = wiretime.Layouts[6]

type spanCounts struct {
	Total     int `json:"total"`
	Pending   int `json:"pending"`
	Active    int `json:"active"`
	Complete  int `json:"complete"`
	Failed    int `json:"failed"`
	Cancelled int `json:"cancelled"`
	Finished  int `json:"finished"`
}

type instanceDetails struct {
	Type              string     `json:"type"`
	ID                string     `json:"id"`
	AccountID         string     `json:"account_id"`
	AgentID           string     `json:"agent_id"`
	AgentVersionID    string     `json:"agent_version_id"`
	AgentSchemaVerID  *string    `json:"agent_schema_version_id"`
	EnvironmentID     string     `json:"environment_id"`
	AgentDeploymentID string     `json:"agent_deployment_id"`
	Status            string     `json:"status"`
	Purpose           string     `json:"purpose"`
	TerminationReason *string    `json:"termination_reason"`
	InsertedAt        *string    `json:"inserted_at"`
	UpdatedAt         *string    `json:"updated_at"`
	StartedAt         *string    `json:"started_at"`
	FinishedAt        *string    `json:"finished_at"`
	SpanCounts        spanCounts `json:"span_counts"`
}

func tsPtr(t time.Time) *string {
	if t.IsZero() {
		return nil
	}
	s := t.UTC().Format(tsLayout)
	return &s
}

// instanceJSON renders an AgentInstance; s.mu is held.
func (s *Server) instanceJSON(in *instance) []byte {
	c := in.counts
	d := instanceDetails{
		Type: "agent_instance", ID: in.ID, AccountID: s.accountID, AgentID: in.AgentID, AgentVersionID: in.versionID,
		EnvironmentID: in.EnvironmentID, AgentDeploymentID: in.deploymentID, Status: in.Status, Purpose: in.Purpose,
		InsertedAt: tsPtr(in.inserted), UpdatedAt: tsPtr(in.updated), StartedAt: tsPtr(in.StartedAt), FinishedAt: tsPtr(in.FinishedAt),
		SpanCounts: spanCounts{Pending: c[stPending], Active: c[stActive], Complete: c[stComplete], Failed: c[stFailed],
			Cancelled: c[stCancelled], Finished: c[stComplete] + c[stFailed] + c[stCancelled]},
	}
	d.SpanCounts.Total = d.SpanCounts.Finished + c[stPending] + c[stActive]
	if in.schema != nil {
		d.AgentSchemaVerID = &in.schema.id
	}
	if in.Status == "terminated" {
		d.TerminationReason = &in.TerminationReason
	}
	b, _ := json.Marshal(d)
	return b
}

// spanAnswer renders the success answer of a span operation: the
// AgentSpan, and control when the instance was terminated.
func (s *Server) spanAnswer(sp *span, in *instance) answer {
	control := s.control(in)
	b := make([]byte, 0, 560+len(sp.Payload)+len(sp.ResultPayload)+len(control))
	b = append(b, `{"status":"success","details":`...)
	b = s.appendSpan(b, sp)
	if control != nil {
		b = append(b, `,"control":`...)
		b = append(b, control...)
	}
	return answer{status: http.StatusOK, body: append(b, '}')}
}

// appendSpan renders an AgentSpan.
func (s *Server) appendSpan(b []byte, sp *span) []byte {
	b = append(b, `{"type":"agent_span","id":"`...)
	b = append(b, sp.ID...) // PFIDs: no escaping needed
	b = append(b, `","account_id":"`...)
	b = append(b, s.accountID...)
	b = append(b, `","agent_id":"`...)
	b = append(b, sp.agentID...)
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
	b = append(b, `,"schema_name":`...)
	b = appendJSONString(b, sp.SchemaName)
	b = append(b, `,"schema_title":`...)
	b = appendJSONString(b, sp.title)
	b = append(b, `,"status":"`...)
	b = append(b, sp.Status...)
	b = append(b, `","payload":`...)
	b = append(b, sp.Payload...)
	b = append(b, `,"result_payload":`...)
	if sp.ResultPayload != nil {
		b = append(b, sp.ResultPayload...)
	} else {
		b = append(b, "null"...)
	}
	b = append(b, `,"summary":null,"started_at":`...)
	b = appendTS(b, sp.StartedAt)
	b = append(b, `,"finished_at":`...)
	b = appendTS(b, sp.FinishedAt)
	b = append(b, `,"inserted_at":`...)
	b = appendTS(b, sp.inserted)
	b = append(b, `,"updated_at":`...)
	b = appendTS(b, sp.updated)
	return append(b, '}')
}

// appendTS appends a time as a JSON string in the layout tsLayout, or
// null for the zero time.
func appendTS(b []byte, t time.Time) []byte { return wiretime.AppendJSON(b, t, 6) }

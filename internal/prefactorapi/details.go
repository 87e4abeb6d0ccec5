package prefactorapi

import (
	"encoding/json"
	"time"
)

// TimeLayout is the layout of the API's timestamps in answers: UTC with
// microseconds.
const TimeLayout = "2006-01-02T15:04:05.000000Z"

// Timestamp renders t in TimeLayout; nil for the zero time.
func Timestamp(t time.Time) *string {
	if t.IsZero() {
		return nil
	}
	s := t.UTC().Format(TimeLayout)
	return &s
}

// SpanCountsDetails are an instance's span_counts (excerpt 000).
type SpanCountsDetails struct {
	Total     int64 `json:"total"`
	Pending   int64 `json:"pending"`
	Active    int64 `json:"active"`
	Complete  int64 `json:"complete"`
	Failed    int64 `json:"failed"`
	Cancelled int64 `json:"cancelled"`
	Finished  int64 `json:"finished"`
}

// InstanceDetails is an AgentInstance.
type InstanceDetails struct {
	Type              string            `json:"type"`
	ID                string            `json:"id"`
	AccountID         string            `json:"account_id"`
	AgentID           string            `json:"agent_id"`
	AgentVersionID    string            `json:"agent_version_id"`
	AgentSchemaVerID  *string           `json:"agent_schema_version_id"`
	EnvironmentID     string            `json:"environment_id"`
	AgentDeploymentID string            `json:"agent_deployment_id"`
	Status            string            `json:"status"`
	Purpose           string            `json:"purpose"`
	TerminationReason *string           `json:"termination_reason"`
	InsertedAt        *string           `json:"inserted_at"`
	UpdatedAt         *string           `json:"updated_at"`
	StartedAt         *string           `json:"started_at"`
	FinishedAt        *string           `json:"finished_at"`
	SpanCounts        SpanCountsDetails `json:"span_counts"`
	// QualityPayloads and QualitySummaries are the recorded quality
	// payloads by name, and the summaries their schemas' templates render.
	QualityPayloads  map[string]json.RawMessage `json:"quality_payloads"`
	QualitySummaries map[string]string          `json:"quality_summaries"`
}

// SpanDetails is an AgentSpan (excerpt 002).
type SpanDetails struct {
	Type            string          `json:"type"`
	ID              string          `json:"id"`
	AccountID       string          `json:"account_id"`
	AgentID         string          `json:"agent_id"`
	AgentInstanceID string          `json:"agent_instance_id"`
	ParentSpanID    *string         `json:"parent_span_id"`
	SchemaName      string          `json:"schema_name"`
	SchemaTitle     string          `json:"schema_title"`
	Status          string          `json:"status"`
	Payload         json.RawMessage `json:"payload"`
	ResultPayload   json.RawMessage `json:"result_payload"`
	Summary         *string         `json:"summary"`
	StartedAt       *string         `json:"started_at"`
	FinishedAt      *string         `json:"finished_at"`
	InsertedAt      *string         `json:"inserted_at"`
	UpdatedAt       *string         `json:"updated_at"`
}

// Control is the termination signal on span answers.
type Control struct {
	Terminate bool    `json:"terminate"`
	Reason    *string `json:"reason"`
}

// AgentDetails is an Agent (excerpt 001).
type AgentDetails struct {
	Type                   string                `json:"type"`
	ID                     string                `json:"id"`
	Name                   string                `json:"name"`
	Description            *string               `json:"description"`
	ExternalIdentifier     *string               `json:"external_identifier"`
	Status                 string                `json:"status"`
	EnvironmentID          *string               `json:"environment_id"`
	CurrentVersionID       *string               `json:"current_version_id"`
	CurrentSchemaVersionID *string               `json:"current_schema_version_id"`
	InstanceCounts         InstanceCountsDetails `json:"instance_counts"`
	AvailableActions       AvailableActions      `json:"available_actions"`
	InsertedAt             *string               `json:"inserted_at"`
	UpdatedAt              *string               `json:"updated_at"`
}

// InstanceCountsDetails count an agent's instances by status.
type InstanceCountsDetails struct {
	Total      int64 `json:"total"`
	Pending    int64 `json:"pending"`
	Active     int64 `json:"active"`
	Complete   int64 `json:"complete"`
	Failed     int64 `json:"failed"`
	Cancelled  int64 `json:"cancelled"`
	Terminated int64 `json:"terminated"`
	Finished   int64 `json:"finished"`
}

// AvailableActions say what an agent allows now.
type AvailableActions struct {
	Update    bool `json:"update"`
	Retire    bool `json:"retire"`
	Reinstate bool `json:"reinstate"`
	Delete    bool `json:"delete"`
}

// successBody renders {"status":"success","details":d[,"control":c]}.
func successBody(d any, control *Control) []byte { return Codec{}.successBody(d, control) }

// successBody is successBody with the codec.
func (c Codec) successBody(d any, control *Control) []byte {
	b, _ := c.marshal(struct {
		Status  string   `json:"status"`
		Details any      `json:"details"`
		Control *Control `json:"control,omitempty"`
	}{"success", d, control})
	return b
}

func strPtr(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// instanceDetails renders an AgentInstance.
func (a *API) instanceDetails(in *InstanceRecord) InstanceDetails {
	c := in.SpanCounts
	d := InstanceDetails{
		Type: "agent_instance", ID: in.ID, AccountID: a.cfg.AccountID, AgentID: in.AgentID, AgentVersionID: in.VersionID,
		AgentSchemaVerID: strPtr(in.SchemaVersionID), EnvironmentID: in.EnvironmentID, AgentDeploymentID: in.DeploymentID,
		Status: in.Status, Purpose: in.Purpose, InsertedAt: Timestamp(in.InsertedAt), UpdatedAt: Timestamp(in.UpdatedAt),
		StartedAt: Timestamp(in.StartedAt), FinishedAt: Timestamp(in.FinishedAt),
		SpanCounts: SpanCountsDetails{Pending: c.Pending, Active: c.Active, Complete: c.Complete, Failed: c.Failed,
			Cancelled: c.Cancelled, Finished: c.Complete + c.Failed + c.Cancelled},
	}
	d.SpanCounts.Total = d.SpanCounts.Finished + c.Pending + c.Active
	d.QualityPayloads = make(map[string]json.RawMessage, len(in.Quality))
	d.QualitySummaries = map[string]string{}
	for name, q := range in.Quality {
		d.QualityPayloads[name] = q.Payload
		if q.Summary != nil {
			d.QualitySummaries[name] = *q.Summary
		}
	}
	if in.Status == "terminated" {
		r := in.TerminationReason
		d.TerminationReason = &r
	}
	return d
}

// spanDetails renders an AgentSpan with its schema title and summary from
// the span type's template.
func (a *API) spanDetails(sp *SpanRecord, types map[string]SpanTypeInfo) SpanDetails {
	d := SpanDetails{
		Type: "agent_span", ID: sp.ID, AccountID: a.cfg.AccountID, AgentID: sp.AgentID, AgentInstanceID: sp.InstanceID,
		ParentSpanID: strPtr(sp.ParentID), SchemaName: sp.SchemaName, SchemaTitle: sp.SchemaName, Status: sp.Status,
		Payload: sp.Payload, ResultPayload: sp.ResultPayload, StartedAt: Timestamp(sp.StartedAt),
		FinishedAt: Timestamp(sp.FinishedAt), InsertedAt: Timestamp(sp.InsertedAt),
	}
	// A span is usually updated when it was inserted or finished: the
	// text of an equal time is shared, not formatted again.
	if sp.UpdatedAt.Equal(sp.InsertedAt) {
		d.UpdatedAt = d.InsertedAt
	} else if sp.UpdatedAt.Equal(sp.FinishedAt) {
		d.UpdatedAt = d.FinishedAt
	} else {
		d.UpdatedAt = Timestamp(sp.UpdatedAt)
	}
	if d.Payload == nil {
		d.Payload = json.RawMessage("{}")
	}
	if t, ok := types[sp.SchemaName]; ok {
		if t.Title != "" {
			d.SchemaTitle = t.Title
		}
		if t.Template != "" {
			if s, ok := a.cfg.Codec.renderSummary(t.Template, sp.Payload, sp.ResultPayload); ok {
				d.Summary = &s
			}
		}
	}
	return d
}

func control(in *InstanceRecord) *Control {
	if in.Status != "terminated" {
		return nil
	}
	return &Control{Terminate: true, Reason: strPtr(in.TerminationReason)}
}

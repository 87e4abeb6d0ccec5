package prefactorapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
)

// The request bodies, one type per endpoint. Fields are pointers so that an
// absent field (or null) differs from an empty one; nested objects the
// API checks field by field (agent_version, agent_schema_version) are kept
// raw and decoded strictly by the check, so their errors name the nested
// field.

// RegisterRequest is the body of POST /api/v1/agent_instance/register.
type RegisterRequest struct {
	ID                   *string         `json:"id,omitempty"`
	AgentID              *string         `json:"agent_id,omitempty"`
	EnvironmentID        *string         `json:"environment_id,omitempty"`
	AgentVersion         json.RawMessage `json:"agent_version,omitempty"`
	AgentSchemaVersion   json.RawMessage `json:"agent_schema_version,omitempty"`
	Purpose              *string         `json:"purpose,omitempty"`
	UpdateCurrentVersion *bool           `json:"update_current_version,omitempty"`
	IdempotencyKey       *string         `json:"idempotency_key"`
}

// AgentVersionInput is register's agent_version.
type AgentVersionInput struct {
	ExternalIdentifier *string `json:"external_identifier"`
	Name               *string `json:"name"`
	Description        *string `json:"description"`
}

// SchemaVersionInput is register's agent_schema_version.
type SchemaVersionInput struct {
	ExternalIdentifier *string                    `json:"external_identifier"`
	SpanTypeSchemas    []SpanTypeSchemaInput      `json:"span_type_schemas"`
	SpanSchemas        map[string]json.RawMessage `json:"span_schemas"`
	SpanResultSchemas  map[string]json.RawMessage `json:"span_result_schemas"`
	QualitySchemas     []json.RawMessage          `json:"quality_schemas"`
}

// SpanTypeSchemaInput is one entry of span_type_schemas.
type SpanTypeSchemaInput struct {
	Name           *string         `json:"name"`
	ParamsSchema   json.RawMessage `json:"params_schema"`
	ResultSchema   json.RawMessage `json:"result_schema"`
	Title          *string         `json:"title"`
	Description    *string         `json:"description"`
	Template       *string         `json:"template"`
	ResultTemplate *string         `json:"result_template"`
	DataRisk       json.RawMessage `json:"data_risk"`
}

// DataRiskInput is a span type's data_risk.
type DataRiskInput struct {
	ActionProfile        map[string]*string `json:"action_profile"`
	ParamsDataCategories map[string]*string `json:"params_data_categories"`
	ResultDataCategories map[string]*string `json:"result_data_categories"`
}

// StartRequest is the body of POST /api/v1/agent_instance/{id}/start.
type StartRequest struct {
	Timestamp      *string `json:"timestamp"`
	IdempotencyKey *string `json:"idempotency_key"`
}

// FinishInstanceRequest is the body of POST /api/v1/agent_instance/{id}/finish.
type FinishInstanceRequest struct {
	Status         *string `json:"status"`
	Timestamp      *string `json:"timestamp"`
	IdempotencyKey *string `json:"idempotency_key"`
}

// TerminateRequest is the body of POST /api/v1/agent_instance/{id}/terminate
// (the key is optional).
type TerminateRequest struct {
	Reason         *string `json:"reason"`
	IdempotencyKey *string `json:"idempotency_key"`
}

// CreateSpanRequest is the body of POST /api/v1/agent_spans. The key is at
// the top level (TypeScript SDK) or inside details (Python SDK).
type CreateSpanRequest struct {
	Details        *SpanDetailsInput `json:"details"`
	IdempotencyKey *string           `json:"idempotency_key"`
}

// SpanDetailsInput is a span create's details.
type SpanDetailsInput struct {
	AgentInstanceID   *string         `json:"agent_instance_id"`
	SchemaName        *string         `json:"schema_name"`
	Status            *string         `json:"status"`
	Payload           json.RawMessage `json:"payload"`
	ResultPayload     json.RawMessage `json:"result_payload"`
	ID                *string         `json:"id,omitempty"`
	ParentSpanID      *string         `json:"parent_span_id"`
	StartedAt         *string         `json:"started_at"`
	FinishedAt        *string         `json:"finished_at"`
	SensitiveEncoding *bool           `json:"sensitive_encoding"`
	IdempotencyKey    *string         `json:"idempotency_key,omitempty"`
}

// FinishSpanRequest is the body of POST /api/v1/agent_spans/{id}/finish.
type FinishSpanRequest struct {
	Timestamp         *string         `json:"timestamp"`
	Status            *string         `json:"status"`
	ResultPayload     json.RawMessage `json:"result_payload"`
	SensitiveEncoding *bool           `json:"sensitive_encoding"`
	IdempotencyKey    *string         `json:"idempotency_key"`
}

// BulkRequest is the body of POST /api/v1/bulk. Each item is decoded by its
// _type into the bulk form of a single request: the same fields, the key,
// and the ID of the single request's path as a field (agent_instance_id,
// agent_span_id).
type BulkRequest struct {
	Items []json.RawMessage `json:"items"`
}

// bulkHead is what every bulk item carries.
type bulkHead struct {
	Type           *string `json:"_type"`
	IdempotencyKey *string `json:"idempotency_key"`
}

type bulkRegister struct {
	Type *string `json:"_type"`
	RegisterRequest
}

type bulkStart struct {
	Type            *string `json:"_type"`
	AgentInstanceID *string `json:"agent_instance_id"`
	StartRequest
}

type bulkFinishInstance struct {
	Type            *string `json:"_type"`
	AgentInstanceID *string `json:"agent_instance_id"`
	FinishInstanceRequest
}

// bulkCreateSpan is agent_spans/create: details, or (as in the Python
// SDK's example) the details' fields flat on the item.
type bulkCreateSpan struct {
	Type           *string           `json:"_type"`
	Details        *SpanDetailsInput `json:"details"`
	IdempotencyKey *string           `json:"idempotency_key"`
	SpanDetailsInput
}

type bulkFinishSpan struct {
	Type        *string `json:"_type"`
	AgentSpanID *string `json:"agent_span_id"`
	FinishSpanRequest
}

// isObject reports whether b holds a JSON object (by its first byte).
func isObject(b []byte) bool {
	b = bytes.TrimLeft(b, " \t\r\n")
	return len(b) > 0 && b[0] == '{'
}

var (
	errNotObject = errors.New("the body must be a JSON object")
	errTrailing  = errors.New("trailing data after the JSON object")
)

// decodeStrict decodes the JSON object b into v, refusing unknown fields
// and trailing data.
func decodeStrict(b []byte, v any) error {
	if !isObject(b) {
		return errNotObject
	}
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		return err
	}
	if len(bytes.TrimLeft(b[d.InputOffset():], " \t\r\n")) > 0 {
		return errTrailing
	}
	return nil
}

// decodeError turns a decoding error into a 400 bad_request (not a JSON
// object, malformed, unknown field) or a 422 validation_errors (a field of
// the wrong type).
func decodeError(err error, prefix string) *Error {
	msg := err.Error()
	if f, ok := strings.CutPrefix(msg, "json: unknown field "); ok {
		f = prefix + strings.Trim(f, `"`)
		return &Error{Status: 400, Code: CodeBadRequest, Message: "unknown field " + f, Fields: map[string][]string{f: {"unknown field"}}}
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) && te.Field != "" {
		return invalid(prefix+te.Field, "must be "+jsonKind(te.Type.Kind().String())+", not "+te.Value)
	}
	if errors.Is(err, errNotObject) || errors.As(err, &te) {
		return badRequest("the body must be a JSON object")
	}
	return badRequest("malformed JSON: " + msg)
}

func jsonKind(k string) string {
	switch k {
	case "string":
		return "a string"
	case "bool":
		return "a boolean"
	case "slice":
		return "an array"
	case "struct", "map", "ptr":
		return "an object"
	}
	return "a " + k
}

package agenttrace

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
)

// Risk is the three-valued answer of an action profile field.
type Risk string

// Risk values.
const (
	RiskUnknown    Risk = "unknown"
	RiskAllowed    Risk = "allowed"
	RiskDisallowed Risk = "disallowed"
)

// Inclusion says whether a data category appears in a payload.
type Inclusion string

// Inclusion values.
const (
	InclusionUnknown  Inclusion = "unknown"
	InclusionIncluded Inclusion = "included"
	InclusionExcluded Inclusion = "excluded"
)

// Classification is the sensitivity class of a payload.
type Classification string

// Classification values.
const (
	ClassificationUnknown      Classification = "unknown"
	ClassificationPublic       Classification = "public"
	ClassificationInternal     Classification = "internal"
	ClassificationConfidential Classification = "confidential"
	ClassificationRestricted   Classification = "restricted"
	ClassificationSecret       Classification = "secret"
)

// ActionProfile says what a span type's work may do. Empty fields encode as
// "unknown".
type ActionProfile struct {
	CreateData            Risk `json:"create_data"`
	ReadData              Risk `json:"read_data"`
	UpdateData            Risk `json:"update_data"`
	DestroyData           Risk `json:"destroy_data"`
	FinancialTransactions Risk `json:"financial_transactions"`
	ExternalCommunication Risk `json:"external_communication"`
}

// DataCategories says which kinds of data a payload carries. Empty fields
// encode as "unknown".
type DataCategories struct {
	Classification                     Classification `json:"classification"`
	PersonalIdentifiers                Inclusion      `json:"personal_identifiers"`
	ContactInformation                 Inclusion      `json:"contact_information"`
	FinancialInformation               Inclusion      `json:"financial_information"`
	HealthAndMedical                   Inclusion      `json:"health_and_medical"`
	CriminalJustice                    Inclusion      `json:"criminal_justice"`
	AuthenticationAndSecrets           Inclusion      `json:"authentication_and_secrets"`
	OrganisationalConfidential         Inclusion      `json:"organisational_confidential"`
	MinorsData                         Inclusion      `json:"minors_data"`
	LocationAndTracking                Inclusion      `json:"location_and_tracking"`
	BehaviouralAndInferred             Inclusion      `json:"behavioural_and_inferred"`
	GDPRRacialOrEthnicOrigin           Inclusion      `json:"gdpr_racial_or_ethnic_origin"`
	GDPRPoliticalOpinions              Inclusion      `json:"gdpr_political_opinions"`
	GDPRReligiousOrPhilosophicalBelief Inclusion      `json:"gdpr_religious_or_philosophical_beliefs"`
	GDPRTradeUnionMembership           Inclusion      `json:"gdpr_trade_union_membership"`
	GDPRGeneticData                    Inclusion      `json:"gdpr_genetic_data"`
	GDPRBiometricForIdentification     Inclusion      `json:"gdpr_biometric_for_identification"`
	GDPRSexLifeOrSexualOrientation     Inclusion      `json:"gdpr_sex_life_or_sexual_orientation"`
}

// DataRisk is the data-risk profile of a span type, as the Prefactor API
// describes it. Every field is sent explicitly; unset ones as "unknown".
type DataRisk struct {
	ActionProfile        ActionProfile  `json:"action_profile"`
	ParamsDataCategories DataCategories `json:"params_data_categories"`
	ResultDataCategories DataCategories `json:"result_data_categories"`
}

// MarshalJSON encodes every field, defaulting empty ones to "unknown".
func (d DataRisk) MarshalJSON() ([]byte, error) {
	type plain DataRisk
	p := plain(d)
	for _, r := range []*Risk{&p.ActionProfile.CreateData, &p.ActionProfile.ReadData, &p.ActionProfile.UpdateData,
		&p.ActionProfile.DestroyData, &p.ActionProfile.FinancialTransactions, &p.ActionProfile.ExternalCommunication} {
		if *r == "" {
			*r = RiskUnknown
		}
	}
	for _, c := range []*DataCategories{&p.ParamsDataCategories, &p.ResultDataCategories} {
		if c.Classification == "" {
			c.Classification = ClassificationUnknown
		}
		for _, f := range []*Inclusion{&c.PersonalIdentifiers, &c.ContactInformation, &c.FinancialInformation,
			&c.HealthAndMedical, &c.CriminalJustice, &c.AuthenticationAndSecrets, &c.OrganisationalConfidential,
			&c.MinorsData, &c.LocationAndTracking, &c.BehaviouralAndInferred, &c.GDPRRacialOrEthnicOrigin,
			&c.GDPRPoliticalOpinions, &c.GDPRReligiousOrPhilosophicalBelief, &c.GDPRTradeUnionMembership,
			&c.GDPRGeneticData, &c.GDPRBiometricForIdentification, &c.GDPRSexLifeOrSexualOrientation} {
			if *f == "" {
				*f = InclusionUnknown
			}
		}
	}
	return json.Marshal(p)
}

// SpanType describes one kind of span a tracer may emit: its schema name and
// the JSON Schemas of its payload and result payload. The instance
// registration sent to Prefactor lists every span type of the tracer.
type SpanType struct {
	// Name is the schema name spans of this type carry, such as "llm" or
	// "billing:refund". Required: letters, digits and ._:- only.
	Name string `json:"name"`
	// Title is a human title; it defaults to Name.
	Title string `json:"title,omitempty"`
	// Description says what the span type records.
	Description string `json:"description,omitempty"`
	// ParamsSchema is the JSON Schema of the payload (an object schema).
	// Nil means any object.
	ParamsSchema json.RawMessage `json:"params_schema"`
	// ResultSchema is the JSON Schema of the result payload. Nil means any
	// object.
	ResultSchema json.RawMessage `json:"result_schema,omitempty"`
	// Template is a Liquid summary template the server renders from the
	// payload merged with the result payload.
	Template string `json:"template,omitempty"`
	// DataRisk is the span type's data-risk profile; nil sends none.
	DataRisk *DataRisk `json:"data_risk,omitempty"`
}

var spanTypeNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:\-]{0,127}$`)

// ErrInvalidSpanType is returned by New for a span type that cannot be
// registered.
var ErrInvalidSpanType = errors.New("agenttrace: invalid span type")

func (st SpanType) validate() error {
	if !spanTypeNameRE.MatchString(st.Name) {
		return fmt.Errorf("%w: name %q must be 1-128 letters, digits or ._:-", ErrInvalidSpanType, st.Name)
	}
	for _, s := range []struct {
		what string
		raw  json.RawMessage
	}{{"params schema", st.ParamsSchema}, {"result schema", st.ResultSchema}} {
		if len(s.raw) > 0 && (!json.Valid(s.raw) || !isObject(s.raw)) {
			return fmt.Errorf("%w: %s of %q is not a JSON object", ErrInvalidSpanType, s.what, st.Name)
		}
	}
	return nil
}

// normalized fills defaults so that equal span types hash alike.
func (st SpanType) normalized() SpanType {
	if st.Title == "" {
		st.Title = st.Name
	}
	if len(st.ParamsSchema) == 0 {
		st.ParamsSchema = json.RawMessage(`{"type":"object"}`)
	}
	if len(st.ResultSchema) == 0 {
		st.ResultSchema = json.RawMessage(`{"type":"object"}`)
	}
	st.ParamsSchema = compactJSON(st.ParamsSchema)
	st.ResultSchema = compactJSON(st.ResultSchema)
	return st
}

func compactJSON(b json.RawMessage) json.RawMessage {
	var v any
	if json.Unmarshal(b, &v) != nil {
		return b
	}
	out, err := json.Marshal(v) // sorted keys: a canonical form
	if err != nil {
		return b
	}
	return out
}

// SchemaVersion is the set of span types a tracer may emit, with an
// identifier derived from its content: an unchanged schema always has the
// same identifier, a changed one never does.
type SchemaVersion struct {
	// ExternalIdentifier is "agenttrace-" followed by 16 hex digits of the
	// SHA-256 of the canonical JSON of the span types.
	ExternalIdentifier string `json:"external_identifier"`
	// SpanTypes are sorted by name.
	SpanTypes []SpanType `json:"span_type_schemas"`
}

func newSchemaVersion(types map[string]SpanType) SchemaVersion {
	list := make([]SpanType, 0, len(types))
	for _, st := range types {
		list = append(list, st)
	}
	slices.SortFunc(list, func(a, b SpanType) int {
		if a.Name < b.Name {
			return -1
		}
		if a.Name > b.Name {
			return 1
		}
		return 0
	})
	canon, _ := json.Marshal(list)
	sum := sha256.Sum256(canon)
	return SchemaVersion{ExternalIdentifier: "agenttrace-" + hex.EncodeToString(sum[:8]), SpanTypes: list}
}

// Conventional span type names.
const (
	TypeAgent = "agent"
	TypeLLM   = "llm"
	TypeTool  = "tool"
	TypeChain = "chain"
)

var usageSchema = `{"type":"object","properties":{"prompt_tokens":{"type":"integer"},"completion_tokens":{"type":"integer"},"total_tokens":{"type":"integer"},"details":{"type":"object","additionalProperties":{"type":"integer"}}}}`
var costSchema = `{"type":"object","properties":{"prompt":{"type":"number"},"completion":{"type":"number"},"other":{"type":"number"},"total":{"type":"number"},"currency":{"type":"string"}}}`
var messageSchema = `{"type":"object","properties":{"role":{"type":"string"},"content":{"type":"string"},"name":{"type":"string"},"tool_call_id":{"type":"string"},"tool_calls":{"type":"array","items":{"type":"object","properties":{"id":{"type":"string"},"name":{"type":"string"},"arguments":{}}}}},"required":["role"]}`

// DefaultSpanTypes returns the built-in span types agent, llm, tool and
// chain, whose schemas describe the typed payloads (AgentInput and
// AgentOutput, LLMRequest and LLMResponse, ToolInput and ToolOutput,
// ChainInput and ChainOutput).
func DefaultSpanTypes() []SpanType {
	return []SpanType{
		{
			Name: TypeAgent, Title: "Agent", Description: "One agent's run: its input, final output and totals.",
			ParamsSchema: json.RawMessage(`{"type":"object","properties":{"agent_name":{"type":"string"},"session_id":{"type":"string"},"model":{"type":"string"},"input":{}}}`),
			ResultSchema: json.RawMessage(`{"type":"object","properties":{"output":{},"stop_reason":{"type":"string"},"turns":{"type":"integer"},"token_usage":` + usageSchema + `,"cost":` + costSchema + `}}`),
			Template:     "{{ agent_name }}",
		},
		{
			Name: TypeLLM, Title: "LLM call", Description: "One call to a language model.",
			ParamsSchema: json.RawMessage(`{"type":"object","properties":{"operation":{"type":"string"},"provider":{"type":"string"},"model":{"type":"string"},"system":{"type":"string"},"messages":{"type":"array","items":` + messageSchema + `},"tools":{"type":"array","items":{"type":"object","properties":{"name":{"type":"string"},"description":{"type":"string"},"parameters":{"type":"object"}}}},"settings":{"type":"object"},"stream":{"type":"boolean"},"metadata":{"type":"object"}}}`),
			ResultSchema: json.RawMessage(`{"type":"object","properties":{"id":{"type":"string"},"model":{"type":"string"},"text":{"type":"string"},"messages":{"type":"array","items":` + messageSchema + `},"tool_calls":{"type":"array"},"finish_reason":{"type":"string"},"token_usage":` + usageSchema + `,"cost":` + costSchema + `}}`),
			Template:     "{{ model }}: {{ finish_reason }}",
		},
		{
			Name: TypeTool, Title: "Tool call", Description: "One call of a tool by an agent.",
			ParamsSchema: json.RawMessage(`{"type":"object","properties":{"tool_name":{"type":"string"},"call_id":{"type":"string"},"arguments":{}},"required":["tool_name"]}`),
			ResultSchema: json.RawMessage(`{"type":"object","properties":{"output":{},"is_error":{"type":"boolean"}}}`),
			Template:     "{{ tool_name }}",
		},
		{
			Name: TypeChain, Title: "Chain step", Description: "One step of a pipeline or chain.",
			ParamsSchema: json.RawMessage(`{"type":"object","properties":{"name":{"type":"string"},"inputs":{}}}`),
			ResultSchema: json.RawMessage(`{"type":"object","properties":{"outputs":{}}}`),
			Template:     "{{ name }}",
		},
	}
}

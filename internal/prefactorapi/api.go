package prefactorapi

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Endpoint names an API operation.
type Endpoint string

// The endpoints of the ingest API (/api/v1).
const (
	EndpointPing           Endpoint = "ping"
	EndpointRegister       Endpoint = "register"
	EndpointStart          Endpoint = "start"
	EndpointFinishInstance Endpoint = "finish_instance"
	EndpointGetInstance    Endpoint = "get_instance"
	EndpointListInstances  Endpoint = "list_instances"
	EndpointTerminate      Endpoint = "terminate"
	EndpointCreateSpan     Endpoint = "create_span"
	EndpointFinishSpan     Endpoint = "finish_span"
	EndpointListSpans      Endpoint = "list_spans"
	EndpointBulk           Endpoint = "bulk"
	EndpointOther          Endpoint = "other"
)

// Config configures an API.
type Config struct {
	// AccountID is the account's PFID; its partition is the one IDs are
	// made in and client-chosen IDs must carry.
	AccountID string
	// Deployment makes the token deployment-scoped: register takes no
	// agent_id or environment_id (AgentID and EnvironmentID are used;
	// others are 403 not_permitted).
	Deployment bool
	// RequireIDs makes agent_id and environment_id required at register
	// (with an account token). Without it, a register without agent_id
	// uses the agent whose external identifier is agent_version.name
	// (created on first use), and one without environment_id uses
	// EnvironmentID.
	RequireIDs bool
	// AgentID and EnvironmentID are the deployment's (Deployment) or the
	// defaults (see RequireIDs).
	AgentID, EnvironmentID string
	// RequireKeys makes idempotency_key required on every single mutating
	// request, as this project's exporter always sends one. Without it a
	// request without a key is applied as it comes, without replay
	// protection: the reference makes the key optional there, and the
	// official TypeScript SDK as published (0.2.x) sends none. Bulk items
	// always need one.
	RequireKeys bool
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Codec decodes bulk requests and their items (default encoding/json;
	// see Codec).
	Codec Codec
}

// API is the protocol: it decodes and checks requests, applies them to a
// Store in one transaction each, and renders the answers. Its methods are
// safe for concurrent use.
type API struct {
	cfg       Config
	store     Store
	partition string
	pnum      uint32
}

// New returns the API over store.
func New(store Store, cfg Config) (*API, error) {
	if !ValidPFID(cfg.AccountID) {
		return nil, errors.New("prefactorapi: Config.AccountID must be a PFID")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	a := &API{cfg: cfg, store: store, partition: PartitionOf(cfg.AccountID)}
	for i := range 6 {
		a.pnum = a.pnum<<5 | uint32(strings.IndexByte(crockford, a.partition[i]))
	}
	return a, nil
}

// Store returns the API's store.
func (a *API) Store() Store { return a.store }

// Config returns the API's configuration.
func (a *API) Config() Config { return a.cfg }

// NewID makes a PFID in the account partition.
func (a *API) NewID() string { return newPFIDAt(a.cfg.Now(), a.pnum) }

func (a *API) now() time.Time { return a.cfg.Now().UTC() }

// Answer is the API's answer to one request.
type Answer struct {
	Status int
	// Code is the error code of an error answer.
	Code string
	Body []byte
	// Replayed reports an idempotent replay (for bulk: of any item).
	Replayed bool
	// Items lists the endpoints of the bulk items applied or replayed, in
	// order; ItemError is the code of the item that stopped a bulk request.
	Items     []Endpoint
	ItemError string
	// ReplayedItems counts the bulk items replayed.
	ReplayedItems int
}

func errAnswer(e *Error) Answer { return Answer{Status: e.Status, Code: e.Code, Body: e.body()} }

func okAnswer(body []byte) Answer { return Answer{Status: http.StatusOK, Body: body} }

// Route names the endpoint of a request and the ID in its path.
func Route(method, path string) (Endpoint, string) {
	p, ok := strings.CutPrefix(path, "/api/v1/")
	if !ok {
		return EndpointOther, ""
	}
	p = strings.TrimSuffix(p, "/")
	switch {
	case method == http.MethodGet && p == "ping":
		return EndpointPing, ""
	case method == http.MethodPost && p == "bulk":
		return EndpointBulk, ""
	case method == http.MethodPost && p == "agent_instance/register":
		return EndpointRegister, ""
	case method == http.MethodPost && p == "agent_spans":
		return EndpointCreateSpan, ""
	case method == http.MethodGet && p == "agent_spans":
		return EndpointListSpans, ""
	case method == http.MethodGet && p == "agent_instance":
		return EndpointListInstances, ""
	}
	parts := strings.Split(p, "/")
	switch {
	case len(parts) == 3 && parts[0] == "agent_instance" && method == http.MethodPost:
		switch parts[2] {
		case "start":
			return EndpointStart, parts[1]
		case "finish":
			return EndpointFinishInstance, parts[1]
		case "terminate":
			return EndpointTerminate, parts[1]
		case "record_quality":
			return EndpointRecordQuality, parts[1]
		}
	case len(parts) == 3 && parts[0] == "agent_instance" && method == http.MethodGet && parts[2] == "agent_context":
		return EndpointAgentContext, parts[1]
	case len(parts) == 2 && parts[0] == "agent_instance" && method == http.MethodGet && parts[1] != "register":
		return EndpointGetInstance, parts[1]
	case len(parts) == 3 && parts[0] == "agent_spans" && parts[2] == "finish" && method == http.MethodPost:
		return EndpointFinishSpan, parts[1]
	}
	return EndpointOther, ""
}

// operation is a decoded mutating request in its single-request form.
type operation struct {
	ep    Endpoint
	id    string // the ID of the path
	key   *string
	req   any    // *RegisterRequest, *StartRequest, ...
	raw   []byte // the body of a single register (stored as sent)
	bulk  bool
	h     string // the hash, once computed
	codec Codec  // encodes req for the hash
}

// hash identifies the operation for idempotency: the endpoint, the path's
// ID and the request without its key, in canonical JSON. A single request
// and the bulk item of the same operation hash alike.
func (o *operation) hash() string {
	if o.h == "" {
		o.h = o.computeHash()
	}
	return o.h
}

func (o *operation) computeHash() string {
	b, _ := o.codec.marshal(o.req)
	h := sha256.New()
	h.Write([]byte(o.ep))
	h.Write([]byte{0})
	h.Write([]byte(o.id))
	h.Write([]byte{0})
	h.Write(b)
	return hex.EncodeToString(h.Sum(nil))
}

// Do answers one request to the ingest API; body is its body and id the
// ID of its path (see Route). The caller has authenticated it.
func (a *API) Do(ctx context.Context, ep Endpoint, id string, body []byte, query map[string][]string) Answer {
	switch ep {
	case EndpointPing:
		return okAnswer([]byte(`{"status":"success"}`))
	case EndpointGetInstance:
		return a.getInstance(ctx, id)
	case EndpointListInstances:
		return a.listInstances(ctx, query)
	case EndpointListSpans:
		return a.listSpans(ctx, query)
	case EndpointBulk:
		return a.bulk(ctx, body)
	case EndpointAgentContext:
		return a.agentContext(ctx, id)
	case EndpointRegister, EndpointStart, EndpointFinishInstance, EndpointTerminate, EndpointCreateSpan, EndpointFinishSpan,
		EndpointRecordQuality:
	default:
		return errAnswer(notFound("endpoint"))
	}
	o, e := decodeSingle(ep, id, body)
	if e != nil {
		return errAnswer(e)
	}
	if o.key == nil && (ep == EndpointTerminate || !a.cfg.RequireKeys) {
		var ans Answer
		err := a.update(ctx, func(tx Tx) error {
			var err error
			ans, err = a.apply(tx, o)
			return err
		})
		if err != nil {
			return storeFailure(err)
		}
		return ans
	}
	if e := checkKey(o.key, 1); e != nil {
		return errAnswer(e)
	}
	var ans Answer
	err := a.update(ctx, func(tx Tx) error {
		var err error
		ans, err = a.idempotent(tx, o)
		return err
	})
	if err != nil {
		return storeFailure(err)
	}
	return ans
}

// update runs fn in a store transaction, retrying a conflict a few times.
func (a *API) update(ctx context.Context, fn func(Tx) error) error {
	var err error
	for range 5 {
		if err = a.store.Update(ctx, fn); !errors.Is(err, ErrConflict) {
			return err
		}
	}
	return err
}

func storeFailure(err error) Answer {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return errAnswer(&Error{Status: http.StatusServiceUnavailable, Code: CodeUnexpected, Message: "request cancelled"})
	}
	return errAnswer(&Error{Status: http.StatusInternalServerError, Code: CodeUnexpected, Message: "the store failed; nothing was stored"})
}

func checkKey(k *string, minLen int) *Error {
	if k == nil || len(*k) < minLen || len(*k) > 64 {
		return invalid("idempotency_key", "required: a string of "+strconv.Itoa(minLen)+" to 64 characters")
	}
	return nil
}

// decodeSingle decodes the body of a single mutating request.
func decodeSingle(ep Endpoint, id string, body []byte) (*operation, *Error) {
	o := &operation{ep: ep, id: id}
	var err error
	switch ep {
	case EndpointRegister:
		r := &RegisterRequest{}
		err = decodeStrict(body, r)
		o.key, r.IdempotencyKey, o.req, o.raw = r.IdempotencyKey, nil, r, body
	case EndpointStart:
		r := &StartRequest{}
		err = decodeStrict(body, r)
		o.key, r.IdempotencyKey, o.req = r.IdempotencyKey, nil, r
	case EndpointFinishInstance:
		r := &FinishInstanceRequest{}
		err = decodeStrict(body, r)
		o.key, r.IdempotencyKey, o.req = r.IdempotencyKey, nil, r
	case EndpointTerminate:
		if len(strings.TrimSpace(string(body))) == 0 {
			body = []byte("{}")
		}
		r := &TerminateRequest{}
		err = decodeStrict(body, r)
		o.key, r.IdempotencyKey, o.req = r.IdempotencyKey, nil, r
	case EndpointCreateSpan:
		r := &CreateSpanRequest{}
		err = decodeStrict(body, r)
		if err == nil {
			o.key, r.IdempotencyKey = r.IdempotencyKey, nil
			if r.Details != nil && r.Details.IdempotencyKey != nil {
				if o.key != nil && *o.key != *r.Details.IdempotencyKey {
					return nil, invalid("idempotency_key", "differs from details.idempotency_key")
				}
				o.key, r.Details.IdempotencyKey = r.Details.IdempotencyKey, nil
			}
		}
		o.req = r
	case EndpointFinishSpan:
		r := &FinishSpanRequest{}
		err = decodeStrict(body, r)
		o.key, r.IdempotencyKey, o.req = r.IdempotencyKey, nil, r
	case EndpointRecordQuality:
		r := &RecordQualityRequest{}
		err = decodeStrict(body, r)
		o.key, r.IdempotencyKey, o.req = r.IdempotencyKey, nil, r
	}
	if err != nil {
		return nil, decodeError(err, "")
	}
	return o, nil
}

// idempotent applies o under its key: a stored answer for the same
// operation is replayed, the key of another operation is refused, a new
// answer is stored with the changes it describes (except 404 not_found:
// the resource may appear later, and clients retry under the same key).
func (a *API) idempotent(tx Tx, o *operation) (Answer, error) {
	h := o.hash()
	rec, ok, err := tx.Idempotency(*o.key)
	if err != nil {
		return Answer{}, err
	}
	if ok {
		if rec.Hash != h {
			return errAnswer(&Error{Status: http.StatusConflict, Code: CodeIdempotencyReused,
				Message: "idempotency key " + strconv.Quote(*o.key) + " was used for another request"}), nil
		}
		ans := Answer{Status: rec.Status, Body: rec.Body, Replayed: true}
		if rec.Status >= 400 {
			ans.Code = errorCode(rec.Body)
		}
		return ans, nil
	}
	ans, err := a.apply(tx, o)
	if err != nil {
		return Answer{}, err
	}
	if ans.Status < 500 && ans.Status != http.StatusNotFound {
		if err := tx.PutIdempotency(IdempotencyRecord{Key: *o.key, Hash: h, Status: ans.Status, Body: ans.Body}); err != nil {
			return Answer{}, err
		}
	}
	return ans, nil
}

func errorCode(body []byte) string {
	var e struct{ Code string }
	_ = json.Unmarshal(body, &e)
	return e.Code
}

// apply runs one operation in tx. Every check comes before the first
// write, so a refused operation writes nothing.
func (a *API) apply(tx Tx, o *operation) (Answer, error) {
	switch r := o.req.(type) {
	case *RegisterRequest:
		return a.register(tx, o, r)
	case *StartRequest:
		return a.startInstance(tx, o.id, r)
	case *FinishInstanceRequest:
		return a.finishInstance(tx, o.id, r)
	case *TerminateRequest:
		return a.terminate(tx, o.id, r)
	case *CreateSpanRequest:
		return a.createSpan(tx, r)
	case *FinishSpanRequest:
		return a.finishSpan(tx, o.id, r)
	case *CreateAgentRequest, *UpdateAgentRequest, *AgentActionRequest:
		return a.applyAgent(tx, o)
	case *RecordQualityRequest:
		return a.recordQuality(tx, o.id, r)
	case *CreateAgentVersionRequest, *CreateSchemaVersionRequest:
		return a.applyVersion(tx, o)
	}
	return errAnswer(notFound("endpoint")), nil
}

// The enums of the reference.
var (
	finishStatuses = enumSet("complete", "failed", "cancelled")
	spanStatuses   = enumSet("pending", "active", "complete", "failed", "cancelled")
	purposes       = enumSet("live", "smoke_test", "eval")
	risks          = enumSet("unknown", "allowed", "disallowed")
	inclusions     = enumSet("unknown", "included", "excluded")
	classes        = enumSet("unknown", "public", "internal", "confidential", "restricted", "secret")
	actionFields   = []string{"create_data", "read_data", "update_data", "destroy_data", "financial_transactions", "external_communication"}
	categoryFields = []string{"personal_identifiers", "contact_information", "financial_information", "health_and_medical",
		"criminal_justice", "authentication_and_secrets", "organisational_confidential", "minors_data",
		"location_and_tracking", "behavioural_and_inferred", "gdpr_racial_or_ethnic_origin", "gdpr_political_opinions",
		"gdpr_religious_or_philosophical_beliefs", "gdpr_trade_union_membership", "gdpr_genetic_data",
		"gdpr_biometric_for_identification", "gdpr_sex_life_or_sexual_orientation"}
)

func enumSet(values ...string) map[string]bool {
	m := make(map[string]bool, len(values))
	for _, v := range values {
		m[v] = true
	}
	return m
}

// Terminal reports a status that ends an instance or a span.
func Terminal(status string) bool {
	return status == "complete" || status == "failed" || status == "cancelled" || status == "terminated"
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
	if s != "" && !ValidPFID(s) {
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
		c.bad(k, "invalid value "+strconv.Quote(s))
	}
	return s
}

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

// object returns an object value (nil when absent or null).
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

func (a *API) inPartition(id string) bool { return PartitionOf(id) == a.partition }

func orNow(t time.Time, ok bool, now time.Time) time.Time {
	if ok {
		return t
	}
	return now
}

// clone copies a raw value (nil stays nil).
func clone(b json.RawMessage) json.RawMessage {
	if b == nil {
		return nil
	}
	return append(json.RawMessage(nil), b...)
}

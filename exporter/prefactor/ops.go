package prefactor

import (
	"bytes"
	"encoding/json"
	"strconv"
	"time"

	"github.com/agenttrace/agenttrace"
	"github.com/agenttrace/agenttrace/internal/jsonesc"
	"github.com/agenttrace/agenttrace/internal/jsonw"
)

type opKind uint8

const (
	opRegister opKind = iota
	opStartInstance
	opFinishInstance
	opCreateSpan
	opFinishSpan
)

// bulkType is the bulk endpoint's _type of each operation.
var bulkType = [...]string{
	opRegister:       "agent_instances/register",
	opStartInstance:  "agent_instances/start",
	opFinishInstance: "agent_instances/finish",
	opCreateSpan:     "agent_spans/create",
	opFinishSpan:     "agent_spans/finish",
}

// keyPrefix makes idempotency keys: prefix + the ULID of the instance or
// span. A key is the same on every attempt of its operation, and every
// operation has its own.
var keyPrefix = [...]string{
	opRegister:       "ir-",
	opStartInstance:  "is-",
	opFinishInstance: "if-",
	opCreateSpan:     "sc-",
	opFinishSpan:     "sf-",
}

// op is one API operation.
type op struct {
	kind opKind
	// refs are the records the operation completes: its own, and for the
	// create of a span that was deferred, the span's start record.
	refs [2]*recRef
	// deadline is when the operation gives up: Retry.Deadline after it
	// reached its lane.
	deadline time.Time
	next     *op // in a deferred span's waiting list
	inst     agenttrace.ID
	span     agenttrace.ID // span ops
	// pendingCreate marks the create of a span that is then finished as
	// cancelled (its key differs from an ordinary create's).
	pendingCreate bool
	status        string
	idata         *agenttrace.InstanceData
	sdata         *agenttrace.SpanData
	tries         int // not_found retries
	// chosen: the last body sent carried an ID the exporter chose, which
	// an answer must not change.
	chosen bool
	// own holds the recRef of the record whose first operation this is.
	own recRef
}

func (o *op) key() string { return string(o.appendKey(make([]byte, 0, keyLen))) }

// keyLen is the length of an idempotency key: a prefix and a ULID.
const keyLen = 3 + 26

// appendKey appends the operation's idempotency key (see key).
func (o *op) appendKey(b []byte) []byte {
	id := o.inst
	if o.kind >= opCreateSpan {
		id = o.span
	}
	k := keyPrefix[o.kind]
	if o.pendingCreate {
		k = "sp-"
	}
	b = append(b, k...)
	if id.IsZero() {
		return b
	}
	var text [26]byte
	_ = id.ULID().MarshalTextTo(text[:]) // cannot fail: the buffer is 26 bytes
	return append(b, text[:]...)
}

// name is the operation for errors and stats.
func (o *op) name() string { return bulkType[o.kind] }

// path returns the single-request path.
func (o *op) path(e *Exporter) string {
	switch o.kind {
	case opRegister:
		return "/api/v1/agent_instance/register"
	case opStartInstance:
		return "/api/v1/agent_instance/" + e.instanceID(o.inst) + "/start"
	case opFinishInstance:
		return "/api/v1/agent_instance/" + e.instanceID(o.inst) + "/finish"
	case opCreateSpan:
		return "/api/v1/agent_spans"
	default:
		return "/api/v1/agent_spans/" + e.spanID(o.span) + "/finish"
	}
}

// fields appends the operation's body fields, without braces and without
// the idempotency key. For bulk items it adds the path's ID. Each
// operation's body has a function of its own.
func (o *op) fields(e *Exporter, b []byte, bulk bool) []byte {
	w := jsonw.Members(b)
	switch o.kind {
	case opRegister:
		o.registerBody(e, &w)
	case opStartInstance:
		if bulk {
			w.String("agent_instance_id", e.instanceID(o.inst))
		}
		w.Time("timestamp", o.idata.StartedAt, 3)
	case opFinishInstance:
		if bulk {
			w.String("agent_instance_id", e.instanceID(o.inst))
		}
		w.String("status", o.status)
		w.Time("timestamp", o.idata.EndedAt, 3)
	case opCreateSpan:
		o.createSpanBody(e, &w)
	case opFinishSpan:
		o.finishSpanBody(e, &w, bulk)
	}
	return w.B
}

// registerBody writes an instance registration: its ID when the exporter
// can choose it, the agent, environment, agent version and schema version.
func (o *op) registerBody(e *Exporter, w *jsonw.Object) {
	d := o.idata
	o.chosen = e.partitionKnown()
	if o.chosen {
		w.String("id", e.instanceID(o.inst))
	}
	agentID := e.cfg.agentID
	if agentID == "" && ValidPFID(d.Agent.ID) {
		agentID = d.Agent.ID
	}
	if agentID != "" {
		w.String("agent_id", agentID)
	}
	if e.cfg.envID != "" {
		w.String("environment_id", e.cfg.envID)
	}
	name, version := e.agentVersion(d.Agent)
	w.Key("agent_version")
	inner := jsonw.Begin(w.B)
	inner.String("external_identifier", version)
	inner.String("name", name)
	w.B = inner.End()
	if d.Schema != nil {
		w.Key("agent_schema_version")
		w.B = append(w.B, e.schemaJSON(d.Schema)...)
	}
	if d.Purpose != "" {
		w.String("purpose", string(d.Purpose))
	}
	w.Key("update_current_version")
	w.B = strconv.AppendBool(w.B, !e.cfg.noUpdateVersion)
}

// createSpanBody writes a span creation: its details, with the ID the
// exporter chose, the parent, and the times and result its status calls
// for.
func (o *op) createSpanBody(e *Exporter, w *jsonw.Object) {
	d := o.sdata
	w.Key("details")
	in := jsonw.Begin(w.B)
	o.chosen = true
	e.idMember(&in, "id", o.span)
	e.idMember(&in, "agent_instance_id", o.inst)
	in.String("schema_name", d.Type)
	in.String("status", o.status)
	in.Key("payload")
	if d.ParentID.IsZero() && o.idata != nil {
		in.B = appendRootPayload(in.B, d.Payload, o.idata)
	} else {
		in.B = appendObject(in.B, d.Payload, d, false)
	}
	in.Key("parent_span_id")
	if d.ParentID.IsZero() {
		in.B = append(in.B, "null"...)
	} else {
		in.B = e.appendWireID(append(in.B, '"'), d.ParentID)
		in.B = append(in.B, '"')
	}
	switch o.status {
	case "pending":
	case "active":
		in.Time("started_at", startedAt(d), 3)
	default:
		in.Time("started_at", startedAt(d), 3)
		in.Time("finished_at", d.EndedAt, 3)
		in.Key("result_payload")
		in.B = appendObject(in.B, d.Result, d, true)
	}
	if d.Sensitive != nil {
		in.Key("sensitive_encoding")
		in.B = strconv.AppendBool(in.B, *d.Sensitive)
	}
	w.B = in.End()
}

// finishSpanBody writes a span finish: the time, status and result.
func (o *op) finishSpanBody(e *Exporter, w *jsonw.Object, bulk bool) {
	d := o.sdata
	if bulk {
		w.String("agent_span_id", e.spanID(o.span))
	}
	w.Time("timestamp", d.EndedAt, 3)
	w.String("status", o.status)
	w.Key("result_payload")
	w.B = appendObject(w.B, d.Result, d, true)
	if d.Sensitive != nil {
		w.Key("sensitive_encoding")
		w.B = strconv.AppendBool(w.B, *d.Sensitive)
	}
}

// startedAt is when the span became active, or when it was created if it
// never did.
func startedAt(d *agenttrace.SpanData) time.Time {
	if d.StartedAt.IsZero() {
		return d.CreatedAt
	}
	return d.StartedAt
}

// single returns the body of the operation's own request.
func (o *op) single(e *Exporter) []byte {
	b := append(make([]byte, 0, 256+len(o.payloadSize())), '{')
	b = o.fields(e, b, false)
	if len(b) > 1 {
		b = append(b, ',')
	}
	b = append(b, `"idempotency_key":`...)
	b = jsonesc.AppendString(b, o.key())
	return append(b, '}')
}

// item appends the operation as a bulk item.
func (o *op) item(e *Exporter, b []byte) []byte {
	b = append(b, `{"_type":`...)
	b = jsonesc.AppendString(b, bulkType[o.kind])
	b = append(b, `,"idempotency_key":"`...)
	b = append(o.appendKey(b), '"') // plain ASCII: nothing to escape
	n := len(b)
	b = append(b, ',')
	if b2 := o.fields(e, b, true); len(b2) > n+1 {
		b = b2
	} else {
		b = b[:n]
	}
	return append(b, '}')
}

// payloadSize is a rough size hint for buffers.
func (o *op) payloadSize() []byte {
	if o.sdata == nil {
		return nil
	}
	if len(o.sdata.Payload) > len(o.sdata.Result) {
		return o.sdata.Payload
	}
	return o.sdata.Result
}

// appendObject appends a payload object, {} if there is none. For a
// result it adds what the span carries beside it, unless the object has
// those keys already: "error" ({error_type, message}) for a failed or
// cancelled span, "token_usage" and "cost".
func appendObject(b []byte, obj json.RawMessage, d *agenttrace.SpanData, result bool) []byte {
	obj = bytes.TrimSpace(obj)
	if len(obj) < 2 || obj[0] != '{' {
		obj = json.RawMessage("{}")
	}
	if !result {
		return append(b, obj...)
	}
	var extra []byte
	add := func(key string, v any) {
		if v == nil || bytes.Contains(obj, []byte(`"`+key+`"`)) {
			return
		}
		enc, err := json.Marshal(v)
		if err != nil {
			return
		}
		if len(extra) > 0 {
			extra = append(extra, ',')
		}
		extra = jsonesc.AppendString(extra, key)
		extra = append(extra, ':')
		extra = append(extra, enc...)
	}
	if d.Error != nil {
		add("error", d.Error)
	}
	if d.Usage != nil && !bytes.Contains(obj, []byte(`"token_usage"`)) {
		add("token_usage", d.Usage)
	}
	if d.Cost != nil {
		add("cost", d.Cost)
	}
	if ttft := d.TimeToFirstToken(); ttft > 0 {
		add("ttft_ms", float64(ttft.Microseconds())/1000)
	}
	if len(extra) == 0 {
		return append(b, obj...)
	}
	b = append(b, '{')
	b = append(b, extra...)
	if rest := bytes.TrimSpace(obj[1 : len(obj)-1]); len(rest) > 0 {
		b = append(b, ',')
		b = append(b, rest...)
	}
	return append(b, '}')
}

// instanceInfo is what the API has no instance field for, carried in an
// "instance" object of an instance's root spans' payload: the run's name,
// user, group, channel, session, client address and user agent (the local
// server's run listing reads it there).
type instanceInfo struct {
	Name      string `json:"name,omitempty"`
	UserID    string `json:"user_id,omitempty"`
	GroupID   string `json:"group_id,omitempty"`
	Channel   string `json:"channel,omitempty"`
	SessionID string `json:"session_id,omitempty"`
	IPAddress string `json:"ip_address,omitempty"`
	UserAgent string `json:"user_agent,omitempty"`
}

// appendRootPayload appends a root span's payload with an "instance"
// object of the instance's identifiers added, unless the payload has that
// key already or the instance has none of them.
func appendRootPayload(b []byte, obj json.RawMessage, d *agenttrace.InstanceData) []byte {
	info := instanceInfo{Name: d.Name, UserID: d.UserID, GroupID: d.GroupID, Channel: d.Channel,
		SessionID: d.SessionID, IPAddress: d.IPAddress, UserAgent: d.UserAgent}
	obj = bytes.TrimSpace(obj)
	if len(obj) < 2 || obj[0] != '{' {
		obj = json.RawMessage("{}")
	}
	if info == (instanceInfo{}) || bytes.Contains(obj, []byte(`"instance"`)) {
		return append(b, obj...)
	}
	enc, err := json.Marshal(info)
	if err != nil {
		return append(b, obj...)
	}
	b = append(b, `{"instance":`...)
	b = append(b, enc...)
	if rest := bytes.TrimSpace(obj[1 : len(obj)-1]); len(rest) > 0 {
		b = append(b, ',')
		b = append(b, rest...)
	}
	return append(b, '}')
}

// idMember writes the member k: the wire ID of an instance or span.
func (e *Exporter) idMember(w *jsonw.Object, k string, id agenttrace.ID) {
	w.Key(k)
	w.B = e.appendWireID(append(w.B, '"'), id)
	w.B = append(w.B, '"')
}

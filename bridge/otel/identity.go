package otelbridge

import (
	"github.com/agenttrace/agenttrace"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// Identity is what a span emitted by the Exporter says of the agenttrace
// span it stands for.
type Identity struct {
	// InstanceID is the span's instance: agenttrace.instance.id, or the
	// trace ID when the attribute is left out (the trace ID is then the
	// instance ULID).
	InstanceID agenttrace.ID
	// SpanID is agenttrace.span.id.
	SpanID agenttrace.ID
	// Type is agenttrace.span.type, or the type gen_ai.operation.name
	// names: tool for execute_tool, agent for invoke_agent and
	// create_agent, llm for any other operation.
	Type string
	// Status is agenttrace.span.status, or what the OTel status says:
	// failed for Error, complete for Unset. It is zero for a span marked
	// agenttrace.unfinished, whose end the Exporter did not see.
	Status agenttrace.Status
}

// IdentityOf reads back the agenttrace identity of a span the Exporter
// emitted, whether or not WithImpliedAttributes was given. It reports false
// for a span without agenttrace.span.id: an instance root (whose
// agenttrace.instance.id is always there) or a span from elsewhere.
func IdentityOf(s sdktrace.ReadOnlySpan) (Identity, bool) {
	var id Identity
	var op, status string
	unfinished, hasInst := false, false
	for _, kv := range s.Attributes() {
		switch kv.Key {
		case KeySpanID:
			id.SpanID, _ = agenttrace.ParseID(kv.Value.AsString())
		case KeyInstanceID:
			id.InstanceID, _ = agenttrace.ParseID(kv.Value.AsString())
			hasInst = true
		case KeySpanType:
			id.Type = kv.Value.AsString()
		case KeyOperationName:
			op = kv.Value.AsString()
		case KeySpanStatus:
			status = kv.Value.AsString()
		case KeyUnfinished:
			unfinished = kv.Value.Type() == attribute.BOOL && kv.Value.AsBool()
		}
	}
	if id.SpanID.IsZero() {
		return Identity{}, false
	}
	if !hasInst {
		id.InstanceID = agenttrace.ID(s.SpanContext().TraceID())
	}
	if id.Type == "" && op != "" {
		id.Type = typeOfOperation(op)
	}
	switch {
	case status != "":
		id.Status = statusNamed(status)
	case unfinished:
	case s.Status().Code == codes.Error:
		id.Status = agenttrace.StatusFailed
	default:
		id.Status = agenttrace.StatusComplete
	}
	return id, true
}

// statusNamed is the Status spelled name, or zero.
func statusNamed(name string) agenttrace.Status {
	for s := agenttrace.StatusPending; s <= agenttrace.StatusTerminated; s++ {
		if s.String() == name {
			return s
		}
	}
	return 0
}

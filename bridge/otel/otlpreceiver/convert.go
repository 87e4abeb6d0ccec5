package otlpreceiver

import (
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	otelbridge "github.com/agenttrace/agenttrace/bridge/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/sdk/instrumentation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
)

// bridgeScope is the scope name the processor is shown for spans that
// otelbridge.Exporter emitted in another process (see the package doc).
const bridgeScope = otelbridge.ScopeName + "/otlp"

// rejections counts the spans left out of a request, by reason.
type rejections struct {
	count   int
	reasons map[string]int
}

func (r *rejections) add(reason string) {
	if r.reasons == nil {
		r.reasons = map[string]int{}
	}
	r.count++
	r.reasons[reason]++
}

// message lists the reasons, most frequent first.
func (r *rejections) message() string {
	type kv struct {
		reason string
		n      int
	}
	var all []kv
	for k, v := range r.reasons {
		all = append(all, kv{k, v})
	}
	sort.Slice(all, func(i, j int) bool {
		if all[i].n != all[j].n {
			return all[i].n > all[j].n
		}
		return all[i].reason < all[j].reason
	})
	parts := make([]string, len(all))
	for i, e := range all {
		parts[i] = strconv.Itoa(e.n) + " span(s): " + e.reason
	}
	return strings.Join(parts, "; ")
}

// convertRequest turns the spans of an export request into read-only SDK
// spans, leaving out (and counting) those that cannot be. fromJSON says the
// IDs went through protojson, which reads them as base64 where OTLP's JSON
// mapping has hex.
func convertRequest(req *collectortrace.ExportTraceServiceRequest, fromJSON bool) ([]sdktrace.ReadOnlySpan, rejections) {
	var out []sdktrace.ReadOnlySpan
	var rej rejections
	for _, rs := range req.GetResourceSpans() {
		res := convertResource(rs.GetResource(), rs.GetSchemaUrl())
		for _, ss := range rs.GetScopeSpans() {
			scope := convertScope(ss.GetScope(), ss.GetSchemaUrl())
			for _, s := range ss.GetSpans() {
				stub, reason := convertSpan(s, fromJSON)
				if reason != "" {
					rej.add(reason)
					continue
				}
				stub.Resource, stub.InstrumentationScope = res, scope
				out = append(out, stub.Snapshot())
			}
		}
	}
	return out, rej
}

func convertResource(r *resourcepb.Resource, schemaURL string) *resource.Resource {
	attrs, _ := convertAttrs(r.GetAttributes())
	if schemaURL == "" {
		return resource.NewSchemaless(attrs...)
	}
	return resource.NewWithAttributes(schemaURL, attrs...)
}

func convertScope(s *commonpb.InstrumentationScope, schemaURL string) instrumentation.Scope {
	attrs, _ := convertAttrs(s.GetAttributes())
	name := s.GetName()
	if name == otelbridge.ScopeName {
		name = bridgeScope
	}
	return instrumentation.Scope{Name: name, Version: s.GetVersion(), SchemaURL: schemaURL, Attributes: attribute.NewSet(attrs...)}
}

// convertSpan returns the stub of s, or the reason it cannot be taken.
func convertSpan(s *tracepb.Span, fromJSON bool) (tracetest.SpanStub, string) {
	var stub tracetest.SpanStub
	if fault := spanContexts(&stub, s, fromJSON); fault != "" {
		return stub, fault
	}
	start, end := s.GetStartTimeUnixNano(), s.GetEndTimeUnixNano()
	if start == 0 || start > math.MaxInt64 {
		return stub, "start_time_unix_nano is missing or out of range"
	}
	if end == 0 || end > math.MaxInt64 {
		return stub, "end_time_unix_nano is missing or out of range"
	}
	stub.StartTime = time.Unix(0, int64(start)).UTC()
	stub.EndTime = time.Unix(0, int64(max(end, start))).UTC() // an end before the start: a zero-length span
	stub.Name = s.GetName()
	stub.SpanKind = trace.ValidateSpanKind(trace.SpanKind(s.GetKind()))
	var dropped int
	stub.Attributes, dropped = convertAttrs(s.GetAttributes())
	stub.DroppedAttributes = int(s.GetDroppedAttributesCount()) + dropped
	convertEvents(&stub, s)
	convertLinks(&stub, s, fromJSON)
	switch s.GetStatus().GetCode() {
	case tracepb.Status_STATUS_CODE_ERROR:
		stub.Status = sdktrace.Status{Code: codes.Error, Description: s.GetStatus().GetMessage()}
	case tracepb.Status_STATUS_CODE_OK:
		stub.Status = sdktrace.Status{Code: codes.Ok}
	}
	return stub, ""
}

// spanContexts sets the span's own context and its parent's, or returns
// what is wrong with their IDs.
func spanContexts(stub *tracetest.SpanStub, s *tracepb.Span, fromJSON bool) string {
	tid, ok := traceID(s.GetTraceId(), fromJSON)
	if !ok {
		return "trace_id is not 16 bytes, or is all zero"
	}
	sid, ok := spanID(s.GetSpanId(), fromJSON)
	if !ok {
		return "span_id is not 8 bytes, or is all zero"
	}
	flags := s.GetFlags()
	ts, err := trace.ParseTraceState(s.GetTraceState())
	if err != nil {
		ts = trace.TraceState{} // an unreadable trace state is only context
	}
	stub.SpanContext = trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: tid, SpanID: sid, TraceFlags: trace.TraceFlags(flags & uint32(tracepb.SpanFlags_SPAN_FLAGS_TRACE_FLAGS_MASK)), TraceState: ts,
	})
	if p := s.GetParentSpanId(); len(p) > 0 {
		psid, ok := spanID(p, fromJSON)
		if !ok {
			return "parent_span_id is neither empty nor 8 bytes, or is all zero"
		}
		stub.Parent = trace.NewSpanContext(trace.SpanContextConfig{
			TraceID: tid, SpanID: psid, TraceFlags: stub.SpanContext.TraceFlags(),
			Remote: flags&uint32(tracepb.SpanFlags_SPAN_FLAGS_CONTEXT_IS_REMOTE_MASK) != 0,
		})
	}
	return ""
}

// convertEvents adds the span's events and its count of dropped ones.
func convertEvents(stub *tracetest.SpanStub, s *tracepb.Span) {
	for _, e := range s.GetEvents() {
		attrs, n := convertAttrs(e.GetAttributes())
		stub.Events = append(stub.Events, sdktrace.Event{
			Name: e.GetName(), Time: time.Unix(0, int64(min(e.GetTimeUnixNano(), math.MaxInt64))).UTC(),
			Attributes: attrs, DroppedAttributeCount: int(e.GetDroppedAttributesCount()) + n,
		})
	}
	stub.DroppedEvents = int(s.GetDroppedEventsCount())
}

// convertLinks adds the span's links; a link with unusable IDs is counted
// dropped.
func convertLinks(stub *tracetest.SpanStub, s *tracepb.Span, fromJSON bool) {
	for _, l := range s.GetLinks() {
		ltid, ok1 := traceID(l.GetTraceId(), fromJSON)
		lsid, ok2 := spanID(l.GetSpanId(), fromJSON)
		if !ok1 || !ok2 {
			stub.DroppedLinks++
			continue
		}
		attrs, n := convertAttrs(l.GetAttributes())
		lts, _ := trace.ParseTraceState(l.GetTraceState())
		stub.Links = append(stub.Links, sdktrace.Link{
			SpanContext: trace.NewSpanContext(trace.SpanContextConfig{
				TraceID: ltid, SpanID: lsid, TraceState: lts,
				TraceFlags: trace.TraceFlags(l.GetFlags() & uint32(tracepb.SpanFlags_SPAN_FLAGS_TRACE_FLAGS_MASK)),
				Remote:     l.GetFlags()&uint32(tracepb.SpanFlags_SPAN_FLAGS_CONTEXT_IS_REMOTE_MASK) != 0,
			}),
			Attributes: attrs, DroppedAttributeCount: int(l.GetDroppedAttributesCount()) + n,
		})
	}
	stub.DroppedLinks += int(s.GetDroppedLinksCount())
}

// wireID returns the n bytes of an ID as sent. protojson reads OTLP JSON's
// hex IDs as base64, which any hex string of 32 or 16 digits is, giving 24
// or 12 bytes; base64 re-encoding gives back the hex digits exactly. An ID
// that is already n bytes (a sender that used protojson's base64) is kept.
func wireID(b []byte, n int, fromJSON bool) ([]byte, bool) {
	if len(b) == n {
		return b, true
	}
	if !fromJSON || len(b) != n*3/2 {
		return nil, false
	}
	out, err := hex.DecodeString(base64.StdEncoding.EncodeToString(b))
	return out, err == nil && len(out) == n
}

func traceID(b []byte, fromJSON bool) (trace.TraceID, bool) {
	var id trace.TraceID
	raw, ok := wireID(b, len(id), fromJSON)
	if !ok {
		return id, false
	}
	copy(id[:], raw)
	return id, id.IsValid()
}

func spanID(b []byte, fromJSON bool) (trace.SpanID, bool) {
	var id trace.SpanID
	raw, ok := wireID(b, len(id), fromJSON)
	if !ok {
		return id, false
	}
	copy(id[:], raw)
	return id, id.IsValid()
}

// convertAttrs turns OTLP attributes into SDK attributes; it returns how
// many it left out (those with an empty key or no value).
func convertAttrs(kvs []*commonpb.KeyValue) ([]attribute.KeyValue, int) {
	if len(kvs) == 0 {
		return nil, 0
	}
	out := make([]attribute.KeyValue, 0, len(kvs))
	dropped := 0
	for _, kv := range kvs {
		v, ok := convertValue(kv.GetValue())
		if !ok || kv.GetKey() == "" {
			dropped++
			continue
		}
		out = append(out, attribute.KeyValue{Key: attribute.Key(kv.GetKey()), Value: v})
	}
	return out, dropped
}

// convertValue maps an OTLP value onto an attribute value: primitives and
// homogeneous arrays of primitives as themselves, anything structured as
// its JSON text, bytes as base64.
func convertValue(v *commonpb.AnyValue) (attribute.Value, bool) {
	switch x := v.GetValue().(type) {
	case *commonpb.AnyValue_StringValue:
		return attribute.StringValue(x.StringValue), true
	case *commonpb.AnyValue_BoolValue:
		return attribute.BoolValue(x.BoolValue), true
	case *commonpb.AnyValue_IntValue:
		return attribute.Int64Value(x.IntValue), true
	case *commonpb.AnyValue_DoubleValue:
		return attribute.Float64Value(x.DoubleValue), true
	case *commonpb.AnyValue_BytesValue:
		return attribute.StringValue(base64.StdEncoding.EncodeToString(x.BytesValue)), true
	case *commonpb.AnyValue_ArrayValue:
		if a, ok := homogeneous(x.ArrayValue.GetValues()); ok {
			return a, true
		}
		return attribute.StringValue(string(appendJSON(nil, v))), true
	case *commonpb.AnyValue_KvlistValue:
		return attribute.StringValue(string(appendJSON(nil, v))), true
	}
	return attribute.Value{}, false
}

// homogeneous returns an array of one primitive type as an attribute slice.
func homogeneous(vals []*commonpb.AnyValue) (attribute.Value, bool) {
	if len(vals) == 0 {
		return attribute.StringSliceValue(nil), true
	}
	switch vals[0].GetValue().(type) {
	case *commonpb.AnyValue_StringValue:
		out := make([]string, len(vals))
		for i, v := range vals {
			s, ok := v.GetValue().(*commonpb.AnyValue_StringValue)
			if !ok {
				return attribute.Value{}, false
			}
			out[i] = s.StringValue
		}
		return attribute.StringSliceValue(out), true
	case *commonpb.AnyValue_BoolValue:
		out := make([]bool, len(vals))
		for i, v := range vals {
			b, ok := v.GetValue().(*commonpb.AnyValue_BoolValue)
			if !ok {
				return attribute.Value{}, false
			}
			out[i] = b.BoolValue
		}
		return attribute.BoolSliceValue(out), true
	case *commonpb.AnyValue_IntValue:
		out := make([]int64, len(vals))
		for i, v := range vals {
			n, ok := v.GetValue().(*commonpb.AnyValue_IntValue)
			if !ok {
				return attribute.Value{}, false
			}
			out[i] = n.IntValue
		}
		return attribute.Int64SliceValue(out), true
	case *commonpb.AnyValue_DoubleValue:
		out := make([]float64, len(vals))
		for i, v := range vals {
			f, ok := v.GetValue().(*commonpb.AnyValue_DoubleValue)
			if !ok {
				return attribute.Value{}, false
			}
			out[i] = f.DoubleValue
		}
		return attribute.Float64SliceValue(out), true
	}
	return attribute.Value{}, false
}

// appendJSON appends v as plain JSON: a key-value list as an object, an
// array as an array, bytes as a base64 string, a non-finite double as a
// string, an empty value as null.
func appendJSON(b []byte, v *commonpb.AnyValue) []byte {
	switch x := v.GetValue().(type) {
	case *commonpb.AnyValue_StringValue:
		return appendString(b, x.StringValue)
	case *commonpb.AnyValue_BoolValue:
		return strconv.AppendBool(b, x.BoolValue)
	case *commonpb.AnyValue_IntValue:
		return strconv.AppendInt(b, x.IntValue, 10)
	case *commonpb.AnyValue_DoubleValue:
		f := x.DoubleValue
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return appendString(b, strconv.FormatFloat(f, 'g', -1, 64))
		}
		return strconv.AppendFloat(b, f, 'g', -1, 64)
	case *commonpb.AnyValue_BytesValue:
		return appendString(b, base64.StdEncoding.EncodeToString(x.BytesValue))
	case *commonpb.AnyValue_ArrayValue:
		b = append(b, '[')
		for i, e := range x.ArrayValue.GetValues() {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSON(b, e)
		}
		return append(b, ']')
	case *commonpb.AnyValue_KvlistValue:
		b = append(b, '{')
		for i, kv := range x.KvlistValue.GetValues() {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, kv.GetKey())
			b = append(b, ':')
			b = appendJSON(b, kv.GetValue())
		}
		return append(b, '}')
	}
	return append(b, "null"...)
}

func appendString(b []byte, s string) []byte {
	q, _ := json.Marshal(s) // a string always encodes
	return append(b, q...)
}

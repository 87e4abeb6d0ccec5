// Package otlpreceiver is an OTLP/HTTP trace endpoint that records the spans
// it is sent into an agenttrace Tracer, through the span processor mapping
// of the OpenTelemetry bridge (otelbridge.SpanProcessor): GenAI spans from
// any OpenTelemetry instrumentation, in any language, land as instances and
// llm, tool and agent spans with their usage.
//
//	rcv := otlpreceiver.New(tracer)
//	defer rcv.Shutdown(ctx)
//	mux.Handle("POST /v1/traces", rcv)
//
// The handler speaks OTLP/HTTP 1.x: a request body is an
// ExportTraceServiceRequest in binary protobuf (Content-Type
// application/x-protobuf) or in OTLP's JSON mapping (application/json:
// lowerCamelCase or original field names, hex trace and span IDs, enums as
// numbers or names, unknown fields ignored), optionally gzip-compressed
// (Content-Encoding: gzip). The answer is an ExportTraceServiceResponse in
// the request's encoding; spans that cannot be taken (a trace or span ID of
// the wrong length, an all-zero ID, a missing start or end time) are left out
// and reported in its partial_success (rejected_spans and error_message), the
// other spans of the request are recorded. A body that cannot be read or
// decoded is answered 400 with a google.rpc.Status, a body over the size cap
// (WithMaxBodyBytes, counted both before and after decompression) 413, an
// unknown Content-Type or Content-Encoding 415, a method other than POST 405,
// and a request arriving after Shutdown 503 with Retry-After; none of them
// records anything.
//
// Spans are handed to the processor request by request, the local roots of
// a request (spans without a parent, or whose parent is flagged remote in the
// OTLP span flags) after its other spans; the processor buffers a trace until
// its local root arrives, so a trace split over several requests still
// becomes one instance, as long as the root does not come in a request
// before its children (SDKs export spans as they end, children first): a
// span arriving after its trace was recorded is dropped and counted
// (Stats.Dropped).
// A trace whose root never arrives (its parent lives in a process that does
// not send here, and the sender's SDK does not set the remote flag) is
// recorded with what it has after the processor's trace timeout
// (otelbridge.WithTraceTimeout, given through WithBridgeOptions).
//
// Message content is copied: the sending instrumentation has already chosen
// whether to capture it. Structured attribute values (key-value lists,
// arrays of mixed or structured values, as newer GenAI conventions use for
// gen_ai.input.messages) become their JSON text, which is what the mapping
// reads; byte values become base64 strings.
//
// Spans exported by agenttrace's own otelbridge.Exporter (instrumentation
// scope otelbridge.ScopeName), which the processor skips to avoid a loop
// inside one process, are recorded too: over OTLP they come from another
// process, and there is no loop to avoid. They land as new instances whose
// root is the exporter's instance span.
package otlpreceiver

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/agenttrace/agenttrace"
	otelbridge "github.com/agenttrace/agenttrace/bridge/otel"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// DefaultMaxBodyBytes is the default cap on a request body, compressed and
// decompressed alike.
const DefaultMaxBodyBytes = 16 << 20

const (
	contentProtobuf = "application/x-protobuf"
	contentJSON     = "application/json"
)

type config struct {
	maxBody    int64
	bridgeOpts []otelbridge.Option
}

// Option configures a Receiver.
type Option func(*config)

// WithMaxBodyBytes caps the size of a request body, both as sent and after
// decompression (default DefaultMaxBodyBytes); a larger body is answered
// 413 and nothing of it is recorded. n <= 0 keeps the default.
func WithMaxBodyBytes(n int64) Option {
	return func(c *config) {
		if n > 0 {
			c.maxBody = n
		}
	}
}

// WithBridgeOptions passes options to the receiver's otelbridge
// SpanProcessor: WithTraceTimeout, WithTraceLimits, WithGenericSpans, or
// WithContentCapture(false) to leave message content out (it is copied by
// default).
func WithBridgeOptions(opts ...otelbridge.Option) Option {
	return func(c *config) { c.bridgeOpts = append(c.bridgeOpts, opts...) }
}

// Stats are a Receiver's counters since it was created.
type Stats struct {
	// Requests is the number of requests answered 200.
	Requests uint64
	// Spans is the number of spans handed to the span processor.
	Spans uint64
	// Rejected is the number of spans left out of accepted requests and
	// reported in their partial_success.
	Rejected uint64
	// Refused is the number of requests answered with an error status
	// (400, 405, 413, 415, 503): nothing of them was recorded.
	Refused uint64
	// Dropped is the number of spans the span processor left out (beyond
	// its per-trace limit, or arriving after their trace was recorded).
	Dropped uint64
}

// Receiver is an http.Handler for OTLP/HTTP trace export requests
// (POST /v1/traces) that records their spans into a Tracer. It is safe for
// concurrent use. Its span processor runs one goroutine for the trace
// timeout until Shutdown.
type Receiver struct {
	proc    *otelbridge.SpanProcessor
	maxBody int64

	mu     sync.RWMutex // held for reading while a request feeds the processor
	closed bool

	requests, spans, rejected, refused atomic.Uint64
}

var _ http.Handler = (*Receiver)(nil)

// New returns a Receiver recording into tracer. The tracer stays the
// caller's: Shutdown flushes it but does not shut it down.
func New(tracer *agenttrace.Tracer, opts ...Option) *Receiver {
	c := config{maxBody: DefaultMaxBodyBytes}
	for _, o := range opts {
		if o != nil {
			o(&c)
		}
	}
	bo := append([]otelbridge.Option{otelbridge.WithContentCapture(true)}, c.bridgeOpts...)
	return &Receiver{proc: otelbridge.NewSpanProcessor(tracer, bo...), maxBody: c.maxBody}
}

// Stats returns the receiver's counters.
func (r *Receiver) Stats() Stats {
	return Stats{
		Requests: r.requests.Load(),
		Spans:    r.spans.Load(),
		Rejected: r.rejected.Load(),
		Refused:  r.refused.Load(),
		Dropped:  r.proc.Dropped(),
	}
}

// Flush records every trace still waiting for its root with what it has,
// then flushes the tracer.
func (r *Receiver) Flush(ctx context.Context) error {
	return r.proc.ForceFlush(ctx)
}

// Shutdown stops taking requests (later ones are answered 503), waits for
// the requests in progress, records the traces still waiting for their
// root, flushes the tracer and stops the processor's goroutine. The tracer
// is not shut down. Later calls do nothing.
func (r *Receiver) Shutdown(ctx context.Context) error {
	r.mu.Lock()
	r.closed = true
	r.mu.Unlock()
	return r.proc.Shutdown(ctx)
}

// encoding is how a request's body and its answer are encoded.
type encoding int

const (
	encProtobuf encoding = iota
	encJSON
)

// ServeHTTP implements http.Handler for OTLP/HTTP trace export requests.
func (r *Receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if req.Method != http.MethodPost {
		r.refused.Add(1)
		w.Header().Set("Allow", http.MethodPost)
		writeStatus(w, encProtobuf, http.StatusMethodNotAllowed, "method "+req.Method+" not allowed; OTLP export requests are POSTs")
		return
	}
	enc, ok := requestEncoding(req.Header.Get("Content-Type"))
	if !ok {
		r.refused.Add(1)
		writeStatus(w, encProtobuf, http.StatusUnsupportedMediaType, "unsupported Content-Type; use application/x-protobuf or application/json")
		return
	}
	body, code, err := r.readBody(w, req)
	if err != nil {
		r.refused.Add(1)
		writeStatus(w, enc, code, err.Error())
		return
	}
	var msg collectortrace.ExportTraceServiceRequest
	if err := unmarshal(enc, body, &msg); err != nil {
		r.refused.Add(1)
		writeStatus(w, enc, http.StatusBadRequest, "malformed export request: "+err.Error())
		return
	}
	spans, rej := convertRequest(&msg, enc == encJSON)

	if !r.deliver(spans) {
		r.refused.Add(1)
		w.Header().Set("Retry-After", "1")
		writeStatus(w, enc, http.StatusServiceUnavailable, "receiver is shutting down")
		return
	}

	r.requests.Add(1)
	r.spans.Add(uint64(len(spans)))
	resp := &collectortrace.ExportTraceServiceResponse{}
	if rej.count > 0 {
		r.rejected.Add(uint64(rej.count))
		resp.PartialSuccess = &collectortrace.ExportTracePartialSuccess{
			RejectedSpans: int64(rej.count),
			ErrorMessage:  rej.message(),
		}
	}
	writeMessage(w, enc, http.StatusOK, resp)
}

// unmarshal decodes an export request in its encoding.
func unmarshal(enc encoding, body []byte, msg *collectortrace.ExportTraceServiceRequest) error {
	if enc == encJSON {
		return protojson.UnmarshalOptions{DiscardUnknown: true}.Unmarshal(body, msg)
	}
	return proto.Unmarshal(body, msg)
}

// deliver hands the spans to the processor, unless the receiver is shut
// down (it then reports false). The processor records a trace when its
// local root ends: it gets the request's other spans first, whatever order
// the sender put them in.
func (r *Receiver) deliver(spans []sdktrace.ReadOnlySpan) bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if r.closed {
		return false
	}
	for _, s := range spans {
		if !isLocalRoot(s) {
			r.proc.OnEnd(s)
		}
	}
	for _, s := range spans {
		if isLocalRoot(s) {
			r.proc.OnEnd(s)
		}
	}
	return true
}

// isLocalRoot reports whether s ends its trace's part in the sender's
// process: it has no parent, or a remote one.
func isLocalRoot(s sdktrace.ReadOnlySpan) bool {
	return !s.Parent().IsValid() || s.Parent().IsRemote()
}

// requestEncoding reads a Content-Type.
func requestEncoding(ct string) (encoding, bool) {
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return 0, false
	}
	switch mt {
	case contentProtobuf:
		return encProtobuf, true
	case contentJSON:
		return encJSON, true
	}
	return 0, false
}

var errTooLarge = errors.New("request body too large")

// readBody reads the request body, decompressing it, within the size cap.
// On error it returns the status code to answer with.
func (r *Receiver) readBody(w http.ResponseWriter, req *http.Request) ([]byte, int, error) {
	if req.ContentLength > r.maxBody {
		return nil, http.StatusRequestEntityTooLarge, fmt.Errorf("%w: %d bytes, the limit is %d", errTooLarge, req.ContentLength, r.maxBody)
	}
	var src io.Reader = http.MaxBytesReader(w, req.Body, r.maxBody)
	switch ce := req.Header.Get("Content-Encoding"); ce {
	case "", "identity":
	case "gzip":
		zr, err := gzip.NewReader(src)
		if err != nil {
			return nil, bodyErrorCode(err), fmt.Errorf("reading gzip body: %w", err)
		}
		defer zr.Close()
		src = zr
	default:
		return nil, http.StatusUnsupportedMediaType, fmt.Errorf("unsupported Content-Encoding %q; use gzip or none", ce)
	}
	var buf bytes.Buffer
	if req.ContentLength > 0 {
		buf.Grow(int(req.ContentLength))
	}
	n, err := buf.ReadFrom(io.LimitReader(src, r.maxBody+1))
	if err != nil {
		return nil, bodyErrorCode(err), fmt.Errorf("reading body: %w", err)
	}
	if n > r.maxBody {
		return nil, http.StatusRequestEntityTooLarge, fmt.Errorf("%w: more than %d bytes decompressed", errTooLarge, r.maxBody)
	}
	return buf.Bytes(), 0, nil
}

func bodyErrorCode(err error) int {
	if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
		return http.StatusRequestEntityTooLarge
	}
	return http.StatusBadRequest
}

// writeStatus answers with a google.rpc.Status, as OTLP/HTTP asks of
// failures.
func writeStatus(w http.ResponseWriter, enc encoding, code int, msg string) {
	// A decoder's message may quote the body's bytes; protobuf strings
	// must be UTF-8.
	msg = strings.ToValidUTF8(msg, "\uFFFD")
	writeMessage(w, enc, code, &status.Status{Code: grpcCode(code), Message: msg})
}

// grpcCode is the gRPC code matching an HTTP status, for the Status body.
func grpcCode(code int) int32 {
	switch code {
	case http.StatusBadRequest, http.StatusRequestEntityTooLarge:
		return 3 // INVALID_ARGUMENT
	case http.StatusServiceUnavailable:
		return 14 // UNAVAILABLE
	default:
		return 12 // UNIMPLEMENTED: method or media type
	}
}

func writeMessage(w http.ResponseWriter, enc encoding, code int, m proto.Message) {
	var b []byte
	var err error
	ct := contentProtobuf
	if enc == encJSON {
		ct = contentJSON
		b, err = protojson.Marshal(m)
	} else {
		b, err = proto.Marshal(m)
	}
	if err != nil { // not reachable with the messages above
		http.Error(w, "encoding answer: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", ct)
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(code)
	_, _ = w.Write(b)
}

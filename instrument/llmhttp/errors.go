package llmhttp

import (
	"errors"
	"net/url"
	"strconv"
	"strings"
)

// APIError is an error response of an LLM API, as recorded on the failed
// span: the HTTP status and the API's own error type, code and message.
type APIError struct {
	StatusCode int
	// Type is the API's error type ("rate_limit_error",
	// "invalid_request_error", Gemini's status such as "RESOURCE_EXHAUSTED").
	Type    string
	Code    string
	Message string
}

// Error returns the status, type and message.
func (e *APIError) Error() string {
	var b strings.Builder
	b.WriteString("llm API error")
	if e.StatusCode > 0 {
		b.WriteString(" ")
		b.WriteString(strconv.Itoa(e.StatusCode))
	}
	if e.Type != "" {
		b.WriteString(" ")
		b.WriteString(e.Type)
	}
	if e.Message != "" {
		b.WriteString(": ")
		b.WriteString(e.Message)
	}
	return b.String()
}

// ErrorType returns the API's error type, its code, or "http_<status>",
// which the span records as its error type.
func (e *APIError) ErrorType() string {
	switch {
	case e.Type != "":
		return e.Type
	case e.Code != "":
		return e.Code
	case e.StatusCode > 0:
		return "http_" + strconv.Itoa(e.StatusCode)
	}
	return "api_error"
}

// Reasons a stream failed before its terminal event.
var (
	// ErrStreamCut: the response body ended (EOF or a read error) before the
	// stream's terminal event.
	ErrStreamCut = errors.New("stream ended before its terminal event: connection cut")
	// ErrClosedEarly: the caller closed the response body before the
	// stream's terminal event.
	ErrClosedEarly = errors.New("response body closed by the caller before the stream's terminal event")
	// ErrIncompleteBody: the caller closed a JSON response body before it
	// was fully read, or the body could not be parsed.
	ErrIncompleteBody = errors.New("response body closed before it was fully read")
)

// StreamError is why a streamed call failed without its terminal event:
// Reason is ErrStreamCut or ErrClosedEarly, or the context's cause when the
// context was cancelled; Err is the read error, if any.
type StreamError struct {
	Reason error
	Err    error
}

// Error describes the reason and the read error.
func (e *StreamError) Error() string {
	if e.Err != nil {
		return e.Reason.Error() + ": " + e.Err.Error()
	}
	return e.Reason.Error()
}

// Unwrap returns the reason and the read error, so errors.Is finds
// ErrStreamCut, ErrClosedEarly or context.Canceled.
func (e *StreamError) Unwrap() []error {
	if e.Err != nil {
		return []error{e.Reason, e.Err}
	}
	return []error{e.Reason}
}

// ErrorType returns "stream_cut", "stream_closed_early" or
// "incomplete_body" (a cancelled context is recorded as context.Canceled).
func (e *StreamError) ErrorType() string {
	switch e.Reason {
	case ErrStreamCut:
		return "stream_cut"
	case ErrClosedEarly:
		return "stream_closed_early"
	case ErrIncompleteBody:
		return "incomplete_body"
	}
	return ""
}

// safeError is a transport error with any URL query removed: API keys
// sometimes travel in the query (Gemini's ?key=), and errors end up on
// spans.
type safeError struct {
	msg string
	err error
}

func (e *safeError) Error() string { return e.msg }
func (e *safeError) Unwrap() error { return e.err }

func sanitize(err error) error {
	if err == nil {
		return nil
	}
	var ue *url.Error
	if !errors.As(err, &ue) {
		return err
	}
	u, perr := url.Parse(ue.URL)
	where := "request"
	if perr == nil {
		u.RawQuery, u.User, u.Fragment = "", nil, ""
		where = u.String()
	}
	return &safeError{msg: ue.Op + " " + where + ": " + ue.Err.Error(), err: ue.Err}
}

package prefactorapi

import (
	"encoding/json"
	"errors"
	"net/http"
	"sort"
)

// Error codes of the API reference (section 8).
const (
	CodeBadRequest        = "bad_request"
	CodeValidation        = "validation_errors"
	CodeBadAuthToken      = "bad_authtoken"
	CodeNotAuthenticated  = "not_authenticated"
	CodeNotPermitted      = "not_permitted"
	CodeNotFound          = "not_found"
	CodeInvalidAction     = "invalid_action"
	CodeIdempotencyReused = "idempotency_key_already_used"
	CodeUnexpected        = "unexpected"
	CodeNotImplemented    = "not_implemented"
	CodeUnexpectedRefType = "unexpected_ref_type"
)

// ErrClosed is returned by a closed store.
var ErrClosed = errors.New("prefactorapi: store closed")

// Error is an error answer: {"status":"error","code":...,"message":...,
// "errors":{field:[messages]}}.
type Error struct {
	Status  int
	Code    string
	Message string
	Fields  map[string][]string
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// body renders the error envelope.
func (e *Error) body() []byte {
	b, _ := json.Marshal(struct {
		Status  string              `json:"status"`
		Code    string              `json:"code"`
		Message string              `json:"message"`
		Errors  map[string][]string `json:"errors,omitempty"`
	}{"error", e.Code, e.Message, e.Fields})
	return b
}

// invalid is a 422 validation_errors about one field.
func invalid(field, msg string) *Error {
	return &Error{Status: http.StatusUnprocessableEntity, Code: CodeValidation, Message: field + ": " + msg,
		Fields: map[string][]string{field: {msg}}}
}

func notFound(what string) *Error {
	return &Error{Status: http.StatusNotFound, Code: CodeNotFound, Message: what + " not found"}
}

func invalidAction(msg string) *Error {
	return &Error{Status: http.StatusConflict, Code: CodeInvalidAction, Message: msg}
}

func badRequest(msg string) *Error {
	return &Error{Status: http.StatusBadRequest, Code: CodeBadRequest, Message: msg}
}

// checker collects field errors.
type checker struct {
	errs map[string][]string
}

func (c *checker) bad(k, msg string) {
	if c.errs == nil {
		c.errs = map[string][]string{}
	}
	c.errs[k] = append(c.errs[k], msg)
}

// failed returns the 422 for the errors found, or nil.
func (c *checker) failed() *Error {
	if len(c.errs) == 0 {
		return nil
	}
	keys := make([]string, 0, len(c.errs))
	for k := range c.errs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return &Error{Status: http.StatusUnprocessableEntity, Code: CodeValidation, Message: keys[0] + ": " + c.errs[keys[0]][0], Fields: c.errs}
}

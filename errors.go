package agenttrace

import (
	"context"
	"errors"
	"reflect"
)

// ErrorTyper is implemented by errors that name their own type for
// ErrorInfo.Type (the OpenTelemetry bridge uses it to keep error.type).
// Fail honours it anywhere in the error's chain.
type ErrorTyper interface {
	ErrorType() string
}

// errorInfo describes err for a span or instance. Its Type is, in order:
// "context.Canceled" or "context.DeadlineExceeded", "panic" for a
// *PanicError, "terminated" for ErrTerminated, the ErrorType of an
// ErrorTyper in the chain, the Go type of the first error in the chain
// that is not a plain errors.New / fmt.Errorf / errors.Join value, or
// "error".
func errorInfo(err error) *ErrorInfo {
	switch {
	case err == nil:
		return &ErrorInfo{Type: "error", Message: "failed with a nil error"}
	case errors.Is(err, context.Canceled):
		return &ErrorInfo{Type: "context.Canceled", Message: safeErrorString(err)}
	case errors.Is(err, context.DeadlineExceeded):
		return &ErrorInfo{Type: "context.DeadlineExceeded", Message: safeErrorString(err)}
	case errors.Is(err, ErrTerminated):
		return &ErrorInfo{Type: "terminated", Message: safeErrorString(err)}
	}
	var pe *PanicError
	if errors.As(err, &pe) {
		return &ErrorInfo{Type: "panic", Message: safeErrorString(err)}
	}
	var et ErrorTyper
	if errors.As(err, &et) {
		if t := safeErrorType(et); t != "" {
			return &ErrorInfo{Type: t, Message: safeErrorString(err)}
		}
	}
	return &ErrorInfo{Type: errorTypeName(err), Message: safeErrorString(err)}
}

// plainErrors are the standard library's anonymous error types.
var plainErrors = map[string]bool{
	"*errors.errorString": true, "*fmt.wrapError": true, "*fmt.wrapErrors": true, "*errors.joinError": true,
}

// errorTypeName returns the Go type of the first error in err's chain
// (depth first) that is not a plain one, or "error".
func errorTypeName(err error) (name string) {
	defer func() {
		if recover() != nil {
			name = "error"
		}
	}()
	var visit func(e error, depth int) string
	visit = func(e error, depth int) string {
		if e == nil || depth > 32 {
			return ""
		}
		if t := reflect.TypeOf(e).String(); !plainErrors[t] {
			return t
		}
		switch x := e.(type) {
		case interface{ Unwrap() error }:
			return visit(x.Unwrap(), depth+1)
		case interface{ Unwrap() []error }:
			for _, c := range x.Unwrap() {
				if t := visit(c, depth+1); t != "" {
					return t
				}
			}
		}
		return ""
	}
	if t := visit(err, 0); t != "" {
		return t
	}
	return "error"
}

func safeErrorType(et ErrorTyper) (t string) {
	defer func() {
		if recover() != nil {
			t = ""
		}
	}()
	return et.ErrorType()
}

func safeErrorString(err error) (s string) {
	defer func() {
		if r := recover(); r != nil {
			s = "error message unavailable: Error() panicked"
		}
	}()
	return err.Error()
}

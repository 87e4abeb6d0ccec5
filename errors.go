package agenttrace

import (
	"context"
	"errors"
	"reflect"
)

// errorInfo describes err for a span or instance.
func errorInfo(err error) *ErrorInfo {
	switch {
	case err == nil:
		return &ErrorInfo{Type: "error", Message: "failed with a nil error"}
	case errors.Is(err, context.Canceled):
		return &ErrorInfo{Type: "context.Canceled", Message: err.Error()}
	case errors.Is(err, context.DeadlineExceeded):
		return &ErrorInfo{Type: "context.DeadlineExceeded", Message: err.Error()}
	}
	var pe *PanicError
	if errors.As(err, &pe) {
		return &ErrorInfo{Type: "panic", Message: err.Error()}
	}
	return &ErrorInfo{Type: reflect.TypeOf(err).String(), Message: safeErrorString(err)}
}

func safeErrorString(err error) (s string) {
	defer func() {
		if r := recover(); r != nil {
			s = "error message unavailable: Error() panicked"
		}
	}()
	return err.Error()
}

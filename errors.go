package agenttrace

import (
	"context"
	"reflect"
	"unicode/utf8"
)

// ErrorTyper is implemented by errors that name their own type for
// ErrorInfo.Type (the OpenTelemetry bridge uses it to keep error.type).
// Fail honours it anywhere in the error's chain.
type ErrorTyper interface {
	ErrorType() string
}

// Bounds of the walk over an error's chain (Unwrap() error and
// Unwrap() []error). Errors are the caller's values: a chain that loops, or
// is deeper or wider than this, is read only this far.
const (
	maxErrorDepth = 32
	maxErrorNodes = 64
)

// MaxErrorMessage is the most bytes of an error message (Fail, Cancel's
// reason, a payload's encoding error) a span or instance keeps. A longer
// message is cut on a rune boundary and ends in "…[truncated]", the mark
// truncated payload strings carry.
const MaxErrorMessage = 4096

// MaxNameBytes is the most bytes of a span's name or type a span keeps; a
// longer one is cut like an error message.
const MaxNameBytes = 512

// errorInfo describes err for a span or instance. Its Type is, in order:
// "context.Canceled" or "context.DeadlineExceeded", "panic" for a
// *PanicError, "terminated" for ErrTerminated, the ErrorType of an
// ErrorTyper in the chain, the Go type of the first error in the chain
// that is not a plain errors.New / fmt.Errorf / errors.Join value, or
// "error". The chain is walked depth first, bounded (maxErrorDepth,
// maxErrorNodes), and every method of the caller's errors runs under
// recover: a chain that panics, loops or contains itself is read as far
// as it goes.
func errorInfo(err error) *ErrorInfo {
	if err == nil {
		return &ErrorInfo{Type: "error", Message: "failed with a nil error"}
	}
	return &ErrorInfo{Type: errorType(err), Message: clipString(safeErrorString(err), MaxErrorMessage)}
}

// errorType picks ErrorInfo.Type for err; see errorInfo.
func errorType(err error) string {
	var canceled, deadline, terminated, panicked bool
	var typer, named string
	walkErrors(err, func(e error) bool {
		canceled = canceled || matches(e, context.Canceled)
		deadline = deadline || matches(e, context.DeadlineExceeded)
		terminated = terminated || matches(e, ErrTerminated)
		panicked = panicked || isPanicError(e)
		if et, ok := e.(ErrorTyper); ok && typer == "" {
			typer = safeErrorType(et)
		}
		if t := reflect.TypeOf(e).String(); named == "" && !plainErrors[t] {
			named = t
		}
		return !canceled
	})
	switch {
	case canceled:
		return "context.Canceled"
	case deadline:
		return "context.DeadlineExceeded"
	case terminated:
		return "terminated"
	case panicked:
		return "panic"
	case typer != "":
		return typer
	case named != "":
		return named
	}
	return "error"
}

// plainErrors are the standard library's anonymous error types.
var plainErrors = map[string]bool{
	"*errors.errorString": true, "*fmt.wrapError": true, "*fmt.wrapErrors": true, "*errors.joinError": true,
}

// walkErrors calls visit on err and the errors of its chain, depth first,
// until visit returns false, at most maxErrorNodes errors no deeper than
// maxErrorDepth. Unwrap methods that panic end their branch.
func walkErrors(err error, visit func(error) bool) {
	nodes := 0
	var walk func(e error, depth int) bool
	walk = func(e error, depth int) bool {
		if e == nil || depth > maxErrorDepth || nodes >= maxErrorNodes {
			return true
		}
		nodes++
		if !visit(e) {
			return false
		}
		for _, c := range unwrapSafe(e) {
			if !walk(c, depth+1) {
				return false
			}
		}
		return true
	}
	walk(err, 0)
}

// unwrapSafe returns the errors e wraps, or none if its Unwrap panics. An
// error that unwraps to itself wraps nothing.
func unwrapSafe(e error) (out []error) {
	defer func() {
		if recover() != nil {
			out = nil
		}
	}()
	switch x := e.(type) {
	case interface{ Unwrap() error }:
		if c := x.Unwrap(); c != nil && !same(c, e) {
			return []error{c}
		}
	case interface{ Unwrap() []error }:
		cs := x.Unwrap()
		out = make([]error, 0, min(len(cs), maxErrorNodes))
		for _, c := range cs[:min(len(cs), maxErrorNodes)] {
			if c != nil && !same(c, e) {
				out = append(out, c)
			}
		}
		return out
	}
	return nil
}

// same reports a == b, false where comparing them would panic (errors of
// one uncomparable type).
func same(a, b error) (eq bool) {
	defer func() {
		if recover() != nil {
			eq = false
		}
	}()
	return a == b
}

// matches reports whether e is target itself or says so with an Is method,
// one link of errors.Is; a panicking Is says no.
func matches(e, target error) (ok bool) {
	if same(e, target) {
		return true
	}
	defer func() {
		if recover() != nil {
			ok = false
		}
	}()
	if x, isIs := e.(interface{ Is(error) bool }); isIs {
		return x.Is(target)
	}
	return false
}

// isPanicError reports whether e is a *PanicError (or says so with an As
// method, which may not panic).
func isPanicError(e error) (ok bool) {
	if _, isPE := e.(*PanicError); isPE {
		return true
	}
	defer func() {
		if recover() != nil {
			ok = false
		}
	}()
	if x, isAs := e.(interface{ As(any) bool }); isAs {
		var pe *PanicError
		return x.As(&pe)
	}
	return false
}

func safeErrorType(et ErrorTyper) (t string) {
	defer func() {
		if recover() != nil {
			t = ""
		}
	}()
	return clipString(et.ErrorType(), MaxNameBytes)
}

func safeErrorString(err error) (s string) {
	defer func() {
		if r := recover(); r != nil {
			s = "error message unavailable: Error() panicked"
		}
	}()
	return err.Error()
}

// clipString returns s if it has at most limit bytes, and otherwise its
// start, cut on a rune boundary, followed by truncSuffix, limit bytes at
// most in all.
func clipString(s string, limit int) string {
	if len(s) <= limit {
		return s
	}
	n := max(limit-len(truncSuffix), 0)
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + truncSuffix
}

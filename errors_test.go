package agenttrace_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/agenttrace/agenttrace"
)

type typedErr struct{ kind string }

func (e typedErr) Error() string     { return "typed: " + e.kind }
func (e typedErr) ErrorType() string { return e.kind }

type panickyTyper struct{}

func (panickyTyper) Error() string     { return "panicky" }
func (panickyTyper) ErrorType() string { panic("bug") }

type wrapErr struct{ err error }

func (e *wrapErr) Error() string { return "wrap: " + e.err.Error() }
func (e *wrapErr) Unwrap() error { return e.err }

type customErr struct{}

func (*customErr) Error() string { return "custom" }

func TestErrorTypes(t *testing.T) {
	_, pathErr := os.Open("/does/not/exist")
	require.Error(t, pathErr)
	for name, tc := range map[string]struct {
		err  error
		want string
	}{
		"errors.New":           {errors.New("boom"), "error"},
		"fmt wrap of plain":    {fmt.Errorf("call: %w", errors.New("boom")), "error"},
		"fmt wrap of typed":    {fmt.Errorf("open: %w", pathErr), "*fs.PathError"},
		"join":                 {errors.Join(errors.New("a"), &customErr{}), "*agenttrace_test.customErr"},
		"custom outermost":     {&customErr{}, "*agenttrace_test.customErr"},
		"ErrorTyper":           {fmt.Errorf("x: %w", typedErr{kind: "rate_limit"}), "rate_limit"},
		"panicking typer":      {panickyTyper{}, "agenttrace_test.panickyTyper"},
		"canceled":             {fmt.Errorf("llm: %w", context.Canceled), "context.Canceled"},
		"deadline":             {context.DeadlineExceeded, "context.DeadlineExceeded"},
		"terminated":           {&agenttrace.TerminatedError{Reason: "x"}, "terminated"},
		"not exist sentinel":   {fs.ErrNotExist, "error"},
		"fmt without wrapping": {fmt.Errorf("plain %d", 1), "error"},
		"wrapped twice":        {fmt.Errorf("a: %w", fmt.Errorf("b: %w", &customErr{})), "*agenttrace_test.customErr"},
		"join of plain":        {errors.Join(errors.New("a"), fmt.Errorf("b: %w", errors.New("c"))), "error"},
		"fmt with two %w":      {fmt.Errorf("%w and %w", errors.New("a"), pathErr), "*fs.PathError"},
		"typer under custom":   {&wrapErr{typedErr{kind: "quota"}}, "quota"},
		"empty ErrorType":      {typedErr{}, "agenttrace_test.typedErr"},
		"panic":                {&agenttrace.PanicError{Value: "x"}, "panic"},
	} {
		t.Run(name, func(t *testing.T) {
			tr, _ := newTracer(t)
			_, s := tr.Start(context.Background(), "tool", nil)
			s.Fail(tc.err)
			require.Equal(t, tc.want, s.Data().Error.Type)
			require.Equal(t, tc.err.Error(), s.Data().Error.Message)
		})
	}
}

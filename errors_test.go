package agenttrace_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"testing"
	"unicode/utf8"

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

type panicUnwrap struct{}

func (panicUnwrap) Error() string { return "panic unwrap" }
func (panicUnwrap) Unwrap() error { panic("unwrap") }

type panicIs struct{}

func (panicIs) Error() string     { return "panic is" }
func (panicIs) Is(error) bool     { panic("is") }
func (panicIs) As(any) bool       { panic("as") }
func (panicIs) Unwrap() error     { return errors.New("inner") }
func (panicIs) ErrorType() string { return "" }

type selfUnwrap struct{ n int }

func (e *selfUnwrap) Error() string { return "self" }
func (e *selfUnwrap) Unwrap() error { return e }

type selfJoin struct{ errs []error }

func (e *selfJoin) Error() string   { return "self join" }
func (e *selfJoin) Unwrap() []error { return e.errs }

// loopA and loopB unwrap to each other, forever.
type loopA struct{ b *loopB }
type loopB struct{ a *loopA }

func (e *loopA) Error() string { return "loop a" }
func (e *loopA) Unwrap() error { return e.b }
func (e *loopB) Error() string { return "loop b" }
func (e *loopB) Unwrap() error { return e.a }

// wide unwraps to a million errors.
type wide struct{}

func (wide) Error() string { return "wide" }
func (wide) Unwrap() []error {
	errs := make([]error, 1<<20)
	for i := range errs {
		errs[i] = wide{}
	}
	return errs
}

type uncomparable struct{ parts []string }

func (e uncomparable) Error() string { return "uncomparable" }
func (e uncomparable) Unwrap() error { return uncomparable{parts: e.parts} }

// TestFailHostileErrors: errors whose methods panic, loop or contain
// themselves fail the span with a type and message, and Fail returns.
func TestFailHostileErrors(t *testing.T) {
	sj := &selfJoin{}
	sj.errs = []error{errors.New("x"), sj, context.Canceled}
	a := &loopA{}
	a.b = &loopB{a: a}
	for name, tc := range map[string]struct {
		err  error
		want string
	}{
		"Unwrap panics":              {panicUnwrap{}, "agenttrace_test.panicUnwrap"},
		"Is and As panic":            {fmt.Errorf("w: %w", panicIs{}), "agenttrace_test.panicIs"},
		"Unwrap returns itself":      {&selfUnwrap{}, "*agenttrace_test.selfUnwrap"},
		"Unwrap []error with itself": {sj, "context.Canceled"},
		"two errors in a loop":       {a, "*agenttrace_test.loopA"},
		"a million wrapped":          {wide{}, "agenttrace_test.wide"},
		"uncomparable self":          {uncomparable{parts: []string{"a"}}, "agenttrace_test.uncomparable"},
	} {
		t.Run(name, func(t *testing.T) {
			tr, _ := newTracer(t)
			ctx, inst := tr.StartInstance(context.Background())
			_, s := tr.Start(ctx, "tool", nil)
			require.NotPanics(t, func() { s.Fail(tc.err) })
			require.NotPanics(t, func() { inst.Fail(tc.err) })
			require.Equal(t, tc.want, s.Data().Error.Type)
			require.Equal(t, agenttrace.StatusFailed, s.Status())
			require.Equal(t, tc.want, inst.Data().Error.Type)
		})
	}
}

// TestErrorMessageClipped: a long error message is cut to MaxErrorMessage
// bytes and marked.
func TestErrorMessageClipped(t *testing.T) {
	tr, _ := newTracer(t)
	_, s := tr.Start(context.Background(), "tool", nil)
	long := strings.Repeat("é", 64<<10)
	s.Fail(errors.New(long))
	msg := s.Data().Error.Message
	require.LessOrEqual(t, len(msg), agenttrace.MaxErrorMessage)
	require.True(t, strings.HasSuffix(msg, "…[truncated]"), msg[len(msg)-20:])
	require.True(t, utf8.ValidString(msg))
	require.True(t, strings.HasPrefix(long, strings.TrimSuffix(msg, "…[truncated]")))

	_, p := tr.StartPending(context.Background(), "tool", nil, agenttrace.WithName(strings.Repeat("n", 10000)))
	p.Cancel(long)
	d := p.Data()
	require.LessOrEqual(t, len(d.Error.Message), agenttrace.MaxErrorMessage)
	require.LessOrEqual(t, len(d.Name), agenttrace.MaxNameBytes)
	require.True(t, strings.HasSuffix(d.Name, "…[truncated]"))

	_, u := tr.Start(context.Background(), strings.Repeat("t", 10000), nil)
	require.LessOrEqual(t, len(u.Type()), agenttrace.MaxNameBytes)
}

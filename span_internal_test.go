package agenttrace

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
	"unsafe"

	"github.com/stretchr/testify/require"
)

// fillNonZero sets every field of the struct v points to a non-zero value.
func fillNonZero(t *testing.T, v reflect.Value) {
	t.Helper()
	for i := range v.NumField() {
		f := v.Field(i)
		switch f.Kind() {
		case reflect.String:
			f.SetString("junk")
		case reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
			f.SetUint(9)
		case reflect.Array:
			for k := range f.Len() {
				f.Index(k).SetUint(0xff)
			}
		case reflect.Slice:
			f.SetBytes([]byte(`{"junk":1}`))
		case reflect.Pointer:
			f.Set(reflect.New(f.Type().Elem()))
		case reflect.Struct:
			require.Equal(t, reflect.TypeFor[time.Time](), f.Type(), v.Type().Field(i).Name)
			f.Set(reflect.ValueOf(time.Unix(1, 0)))
		default:
			t.Fatalf("field %s: kind %s not handled", v.Type().Field(i).Name, f.Kind())
		}
	}
}

// A queue slot is refilled in place when a queued start record is updated:
// snapshotInto must overwrite every field, or a stale value would leak into
// the record.
func TestSnapshotIntoOverwritesEveryField(t *testing.T) {
	tr, err := New()
	require.NoError(t, err)
	defer tr.Shutdown(context.Background())
	for _, sp := range []func() *Span{
		func() *Span { _, s := tr.Start(context.Background(), TypeTool, nil); return s },
		func() *Span {
			ctx, p := tr.Start(context.Background(), TypeAgent, nil)
			_, s := tr.StartPending(ctx, TypeLLM, map[string]int{"a": 1})
			p.End()
			return s
		},
	} {
		s := sp()
		var junk SpanData
		fillNonZero(t, reflect.ValueOf(&junk).Elem())
		s.mu.Lock()
		want := s.snapshotLocked()
		s.snapshotInto(&junk)
		s.mu.Unlock()
		require.Equal(t, want, junk)
		s.End()
	}
}

func inlineOf(s *Span, b []byte) bool {
	if len(b) == 0 {
		return false
	}
	p := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
	base := uintptr(unsafe.Pointer(&s.inline[0]))
	return p >= base && p < base+inlineSize
}

// A small payload lives in the span's own allocation; a large one, or a
// second small one, gets its own slice, and the inline bytes are never
// rewritten once records share them.
func TestInlinePayload(t *testing.T) {
	tr, err := New()
	require.NoError(t, err)
	defer tr.Shutdown(context.Background())
	ctx := context.Background()

	_, s := tr.Start(ctx, TypeTool, ToolInput{Name: "search"})
	s.mu.Lock()
	payload := s.payload
	s.mu.Unlock()
	require.True(t, inlineOf(s, payload))
	before := string(payload)
	s.SetResult(ToolOutput{Output: "x"})
	s.SetResult(ToolOutput{Output: "y"})
	s.mu.Lock()
	require.False(t, inlineOf(s, s.result))
	require.JSONEq(t, `{"output":"y"}`, string(s.result))
	s.mu.Unlock()
	require.Equal(t, before, string(payload), "the inline payload is never rewritten")
	s.End()

	big := strings.Repeat("a", inlineSize)
	_, s = tr.Start(ctx, TypeTool, ToolInput{Name: big})
	s.SetResult(ToolOutput{Output: "small"})
	s.mu.Lock()
	require.False(t, inlineOf(s, s.payload), "too large for the inline buffer")
	require.True(t, inlineOf(s, s.result), "the free buffer takes the result")
	require.Contains(t, string(s.payload), big)
	s.mu.Unlock()
	s.End()
}

// A short LLM call's request goes to the span's inline buffer, as any
// small payload does: the queue holds the span and its records until they
// are exported, and a slice of its own would be held with them.
func TestSmallLLMRequestInline(t *testing.T) {
	tr, err := New()
	require.NoError(t, err)
	defer tr.Shutdown(context.Background())
	req := LLMRequest{Operation: "chat", Provider: "openai", Model: "gpt-4o-mini",
		Messages: []Message{{Role: "user", Parts: []ContentPart{{Type: PartText, Size: 6}}}}}
	_, s := tr.Start(context.Background(), TypeLLM, req)
	defer s.End()
	s.mu.Lock()
	defer s.mu.Unlock()
	require.LessOrEqual(t, len(s.payload), inlineSize)
	require.True(t, inlineOf(s, s.payload))
	var got LLMRequest
	require.NoError(t, json.Unmarshal(s.payload, &got))
	require.Equal(t, req.Model, got.Model)
}

// A payload that fits goes to the span's inline buffer, a larger one to a
// slice of its own; neither keeps spare capacity.
func TestInlineOrOwnSlice(t *testing.T) {
	tr, err := New()
	require.NoError(t, err)
	defer tr.Shutdown(context.Background())
	ctx := context.Background()
	check := func(in ToolInput, inline bool) {
		t.Helper()
		_, s := tr.Start(ctx, TypeTool, in)
		defer s.End()
		s.mu.Lock()
		defer s.mu.Unlock()
		require.Equal(t, inline, inlineOf(s, s.payload))
		require.Equal(t, len(s.payload), cap(s.payload), "no spare capacity is kept")
		var got ToolInput
		require.NoError(t, json.Unmarshal(s.payload, &got))
		require.Equal(t, in.Name, got.Name)
	}
	big := strings.Repeat("b", 3*inlineSize)
	check(ToolInput{Name: "small"}, true)
	check(ToolInput{Name: big}, false)
	check(ToolInput{Name: "small"}, true)

	// A value that fails to encode gets its marker.
	_, s := tr.Start(ctx, TypeTool, ToolInput{Name: "x", Arguments: func() {}})
	s.mu.Lock()
	require.Contains(t, string(s.payload), MarkerKey)
	require.NotEmpty(t, s.payloadErr)
	s.mu.Unlock()
	s.End()
}

type ctxTestKey struct{}

// The context Start returns lives inside the span and behaves as
// context.WithValue's would: values, deadlines, cancellation and causes come
// from the caller's context.
func TestSpanContext(t *testing.T) {
	tr, err := New()
	require.NoError(t, err)
	defer tr.Shutdown(context.Background())

	cause := errors.New("stop")
	parent, cancel := context.WithCancelCause(context.WithValue(context.Background(), ctxTestKey{}, "v"))
	deadline := time.Now().Add(time.Hour)
	parent, cancelDeadline := context.WithDeadline(parent, deadline)
	defer cancelDeadline()

	ctx, s := tr.Start(parent, TypeAgent, nil)
	require.Same(t, s, SpanFromContext(ctx))
	require.Equal(t, "v", ctx.Value(ctxTestKey{}))
	d, ok := ctx.Deadline()
	require.True(t, ok)
	require.Equal(t, deadline, d)
	require.Contains(t, ctx.(interface{ String() string }).String(), "agenttrace span "+s.ID().String())

	child, s2 := tr.Start(ctx, TypeLLM, nil)
	require.Same(t, s, s2.parent)
	derived, stop := context.WithCancel(child)
	defer stop()
	require.NoError(t, derived.Err())
	cancel(cause)
	<-derived.Done()
	require.ErrorIs(t, context.Cause(derived), cause)
	require.ErrorIs(t, child.Err(), context.Canceled)
	s2.End()
	s.End()
}

// Concurrent SetResult calls race for the inline buffer: exactly one may
// use it, and every result recorded stays intact (run with -race).
func TestInlineConcurrentResults(t *testing.T) {
	rec := &keepExporter{}
	tr, err := New(WithExporter(rec))
	require.NoError(t, err)
	ctx := context.Background()
	for range 200 {
		_, s := tr.Start(ctx, TypeTool, nil)
		var wg sync.WaitGroup
		for g := range 4 {
			wg.Go(func() {
				if g == 3 {
					s.SetResult(ToolOutput{Output: func() {}}) // an encoding error
					return
				}
				s.SetResult(ToolOutput{Output: strings.Repeat("r", g*60)})
			})
		}
		wg.Wait()
		s.End()
	}
	require.NoError(t, tr.Shutdown(ctx))
	distinct := map[string]bool{}
	for _, r := range rec.recs {
		if r.Span.Result != nil {
			require.True(t, json.Valid(r.Span.Result), "%s", r.Span.Result)
			distinct[string(r.Span.Result)] = true
		}
	}
	require.NotEmpty(t, distinct)
	require.LessOrEqual(t, len(distinct), 4, "only the four results set, never a mix: %v", distinct)
}

// keepExporter keeps every record.
type keepExporter struct {
	mu   sync.Mutex
	recs []Record
}

func (e *keepExporter) Export(_ context.Context, recs []Record) error {
	e.mu.Lock()
	e.recs = append(e.recs, recs...)
	e.mu.Unlock()
	return nil
}

func (e *keepExporter) Shutdown(context.Context) error { return nil }

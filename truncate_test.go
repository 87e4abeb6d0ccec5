package agenttrace_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"

	"github.com/agenttrace/agenttrace"
)

// bigPayload has small fields, a long string, a long array of objects and
// deep nesting, about size bytes in all.
func bigPayload(size int) map[string]any {
	var deep any = "bottom"
	for range 60 {
		deep = map[string]any{"d": deep}
	}
	items := make([]any, 0, size/200)
	for i := range size / 400 {
		items = append(items, map[string]any{"id": i, "text": strings.Repeat("é lorem ", 20)})
	}
	return map[string]any{
		"model":    "gpt-4o",
		"n":        3,
		"stream":   true,
		"document": strings.Repeat("the quick brown fox \"jumps\"\n", size/2/28),
		"items":    items,
		"deep":     deep,
	}
}

func TestTruncationKeepsStructure(t *testing.T) {
	const limit = 8192
	tr, _ := newTracer(t, agenttrace.WithPayloadLimit(limit))
	in := bigPayload(300_000)
	_, s := tr.Start(context.Background(), "chain", in)
	s.End()
	p := s.Data().Payload
	require.LessOrEqual(t, len(p), limit)
	require.Greater(t, len(p), limit*3/4, "the budget is used, not wasted")
	require.True(t, utf8.Valid(p))
	var m map[string]any
	require.NoError(t, json.Unmarshal(p, &m), "%s", p)
	require.NotContains(t, m, "preview", "structure kept, not a preview")
	require.Equal(t, "gpt-4o", m["model"], "small members stay whole")
	require.EqualValues(t, 3, m["n"])
	require.Equal(t, true, m["stream"])
	doc := m["document"].(string)
	require.True(t, strings.HasPrefix(doc, "the quick brown fox \"jumps\"\n"))
	require.True(t, strings.HasSuffix(doc, "…[truncated]"))
	items := m["items"].([]any)
	require.Greater(t, len(items), 2)
	require.Equal(t, map[string]any{"id": 0.0, "text": strings.Repeat("é lorem ", 20)}, items[0], "first elements whole")
	require.Regexp(t, `^…\[truncated\] \d+ more$`, items[len(items)-1])
	marker := m[agenttrace.MarkerKey].(map[string]any)
	require.Equal(t, true, marker["truncated"])
	require.Greater(t, marker["original_bytes"].(float64), 300_000.0)
	require.EqualValues(t, 1, tr.Stats().PayloadsTruncated)
}

func TestTruncationManyMembers(t *testing.T) {
	const limit = 2048
	tr, _ := newTracer(t, agenttrace.WithPayloadLimit(limit))
	obj := map[string]any{}
	for i := range 5000 {
		obj[fmt.Sprintf("key%05d", i)] = strings.Repeat("v", 50)
	}
	_, s := tr.Start(context.Background(), "chain", obj)
	s.End()
	p := s.Data().Payload
	require.LessOrEqual(t, len(p), limit)
	var m map[string]any
	require.NoError(t, json.Unmarshal(p, &m))
	require.Contains(t, m, "key00000")
	require.Regexp(t, `^\d+ more keys$`, m["…[truncated]"])
}

func FuzzTruncateRaw(f *testing.F) {
	f.Add([]byte(`{"a":"`+strings.Repeat("x", 3000)+`"}`), uint16(1024))
	f.Add([]byte(`{"a":[`+strings.Repeat(`{"b":"\u00e9\n"},`, 400)+`1]}`), uint16(1500))
	f.Add([]byte(`{"`+strings.Repeat("k", 2000)+`":1}`), uint16(1100))
	f.Fuzz(func(t *testing.T, raw []byte, lim uint16) {
		if !json.Valid(raw) || len(raw) == 0 || raw[0] != '{' {
			return
		}
		limit := 1024 + int(lim%4096)
		tr, err := agenttrace.New(agenttrace.WithPayloadLimit(limit))
		require.NoError(t, err)
		defer tr.Shutdown(context.Background())
		_, s := tr.Start(context.Background(), "chain", json.RawMessage(raw))
		p := s.Data().Payload
		s.End()
		require.LessOrEqual(t, len(p), limit)
		require.True(t, json.Valid(p), "%q", p)
		require.True(t, utf8.Valid(p))
	})
}

func BenchmarkTruncate(b *testing.B) {
	for _, size := range []int{300_000, 700_000, 5_000_000} {
		b.Run(fmt.Sprintf("%dKB", size/1000), func(b *testing.B) {
			tr, err := agenttrace.New(agenttrace.WithPayloadLimit(256 << 10))
			if err != nil {
				b.Fatal(err)
			}
			defer tr.Shutdown(context.Background())
			raw, _ := json.Marshal(bigPayload(size))
			b.SetBytes(int64(len(raw)))
			b.ReportAllocs()
			for b.Loop() {
				_, s := tr.Start(context.Background(), "chain", json.RawMessage(raw))
				s.End()
			}
		})
	}
}

package agenttrace_test

import (
	"context"
	"encoding/json"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/agenttrace/agenttrace"
)

// oversized returns builders of payloads of about n bytes of each shape
// whose recording cost is bounded by the cap.
func oversized(n int) map[string]func() any {
	text := func() string { return strings.Repeat("lorem ipsum ", n/12) }
	raw := func() []byte { return []byte(`{"items":[` + strings.Repeat(`"abcdefghij",`, n/13) + `"z"]}`) }
	return map[string]func() any{
		"string":         func() any { return text() },
		"bytes":          func() any { return raw() },
		"raw JSON":       func() any { return json.RawMessage(raw()) },
		"long slice":     func() any { return strings.Split(text(), " ") },
		"long int slice": func() any { return make([]int, n/2) },
		"many messages": func() any {
			msgs := make([]agenttrace.Message, n/1024)
			content := strings.Repeat("lorem ipsum ", 1000/12)
			for i := range msgs {
				msgs[i] = agenttrace.Message{Role: "user", Content: content}
			}
			return agenttrace.LLMRequest{Model: "m", Messages: msgs}
		},
		"one huge message": func() any {
			return agenttrace.LLMRequest{Model: "m", Messages: []agenttrace.Message{{Role: "user", Content: text()}}}
		},
		"huge response":     func() any { return agenttrace.LLMResponse{Model: "m", Text: text()} },
		"huge system field": func() any { return agenttrace.LLMRequest{Model: "m", System: text()} },
	}
}

// TestOversizedPayloadCostBoundedByCap: recording a 32 MiB payload of each
// shape allocates a bounded multiple of the cap (not of the payload), and
// records a valid, marked payload within the cap. Allocation, not time, is
// measured, so the test holds on a loaded machine.
func TestOversizedPayloadCostBoundedByCap(t *testing.T) {
	const limit = 64 << 10
	tr, _ := newTracer(t, agenttrace.WithPayloadLimit(limit))
	record := func(v any) (agenttrace.SpanData, uint64) {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		_, s := tr.Start(context.Background(), "chain", v)
		runtime.ReadMemStats(&after)
		s.End()
		return s.Data(), after.TotalAlloc - before.TotalAlloc
	}
	const small, large = 4 << 20, 32 << 20
	smaller := oversized(small)
	for name, build := range oversized(large) {
		t.Run(name, func(t *testing.T) {
			_, base := record(smaller[name]())
			d, alloc := record(build())
			t.Logf("allocated %d KiB for 4 MiB, %d KiB for 32 MiB", base>>10, alloc>>10)
			require.Less(t, alloc, uint64(128*limit), "allocation bounded by the cap")
			require.Less(t, alloc, 2*base+uint64(4*limit), "allocation does not grow with the payload")

			require.LessOrEqual(t, len(d.Payload), limit)
			var m map[string]any
			require.NoError(t, json.Unmarshal(d.Payload, &m))
			marker, ok := m[agenttrace.MarkerKey].(map[string]any)
			require.True(t, ok, string(d.Payload[:200]))
			require.Equal(t, true, marker["truncated"])
			require.Greater(t, marker["original_bytes"], float64(large/2))
		})
	}
}

// TestDeepValueIsRejected: a Go value nested deeper than decoders accept is
// recorded as an error marker, not as JSON no decoder reads back.
func TestDeepValueIsRejected(t *testing.T) {
	tr, _ := newTracer(t)
	deep := map[string]any{}
	cur := deep
	for range 20000 {
		next := map[string]any{}
		cur["a"] = next
		cur = next
	}
	for _, v := range []any{deep, agenttrace.ToolInput{Name: "x", Arguments: deep}} {
		d := payloadOf(t, tr, v)
		var m map[string]any
		require.NoError(t, json.Unmarshal(d.Payload, &m), "the payload decodes")
		require.Contains(t, m, agenttrace.MarkerKey)
		require.Contains(t, d.PayloadError, agenttrace.ErrTooDeep.Error())
	}
	// Raw JSON that deep was already refused: invalid JSON.
	raw := json.RawMessage(strings.Repeat("[", 20000) + strings.Repeat("]", 20000))
	d := payloadOf(t, tr, raw)
	require.Contains(t, d.PayloadError, agenttrace.ErrInvalidJSON.Error())
	// 5,000 levels are fine.
	ok := map[string]any{}
	cur = ok
	for range 5000 {
		next := map[string]any{}
		cur["a"] = next
		cur = next
	}
	d = payloadOf(t, tr, ok)
	require.Empty(t, d.PayloadError)
}

// TestOversizedMapCutWhileEncoded: a map of 200,000 entries (about 32 MiB
// of JSON) is recorded as a marked prefix of its entries in key order,
// within the cap, without encoding the entries past the cut: the
// allocation is bounded by a few words per key (the sorted keys), not by
// the map's encoded size.
func TestOversizedMapCutWhileEncoded(t *testing.T) {
	const limit = 64 << 10
	tr, _ := newTracer(t, agenttrace.WithPayloadLimit(limit))
	const entries = 200_000
	big := make(map[string]string, entries)
	value := strings.Repeat("v", 140)
	for i := range entries {
		big["key-"+strconv.Itoa(i)] = value
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, s := tr.Start(context.Background(), "chain", big)
	runtime.ReadMemStats(&after)
	s.End()
	alloc := after.TotalAlloc - before.TotalAlloc
	t.Logf("allocated %d KiB for a map of %d entries", alloc>>10, entries)
	require.Less(t, alloc, uint64(entries*64+128*limit), "the entries past the cut are not encoded")

	d := s.Data()
	require.LessOrEqual(t, len(d.Payload), limit)
	var m map[string]any
	require.NoError(t, json.Unmarshal(d.Payload, &m), string(d.Payload[:200]))
	marker, ok := m[agenttrace.MarkerKey].(map[string]any)
	require.True(t, ok, string(d.Payload[:200]))
	require.Equal(t, true, marker["truncated"])
	require.Greater(t, marker["original_bytes"], float64(entries*100))
	for _, k := range []string{"key-0", "key-1", "key-10", "key-100", "key-1000"} {
		require.Contains(t, m, k, "the smallest keys come first, as encoding/json orders them")
	}
	require.NotContains(t, m, "key-99999")

	// A map under the cap is recorded whole, as encoding/json writes it.
	small := map[string]int{}
	for i := range 1000 {
		small["k"+strconv.Itoa(i)] = i
	}
	want, err := json.Marshal(small)
	require.NoError(t, err)
	d = payloadOf(t, tr, small)
	require.JSONEq(t, string(want), string(d.Payload))
}

// BenchmarkOversizedPayload measures Start+End of a span whose payload is
// far over the default cap (256 KiB), by shape and size.
//
//	go test . -run '^$' -bench BenchmarkOversizedPayload -benchmem
func BenchmarkOversizedPayload(b *testing.B) {
	tr, err := agenttrace.New()
	if err != nil {
		b.Fatal(err)
	}
	defer tr.Shutdown(context.Background())
	for _, mib := range []int{1, 4, 16, 64} {
		builders := oversized(mib << 20)
		builders["long map"] = func() any { // entries of about 160 bytes
			m := make(map[string]string, (mib<<20)/160)
			for i := range (mib << 20) / 160 {
				m["key-"+strconv.Itoa(i)] = strings.Repeat("v", 140)
			}
			return m
		}
		for _, shape := range []string{"string", "raw JSON", "long slice", "long map", "many messages", "one huge message"} {
			v := builders[shape]()
			runtime.GC()
			b.Run(strings.ReplaceAll(shape, " ", "_")+"/"+strconv.Itoa(mib)+"MiB", func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					_, s := tr.Start(context.Background(), "chain", v)
					s.End()
				}
			})
		}
	}
}

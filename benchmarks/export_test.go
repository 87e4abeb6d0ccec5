package benchmarks

import (
	"context"
	"testing"
	"time"

	"github.com/agenttrace/agenttrace"
	"github.com/agenttrace/agenttrace/exporter/prefactor"
)

// BenchmarkExport measures spans per second delivered to prefactortest over
// loopback, through the bulk endpoint and through single requests. Each op
// is one LLM span (started and ended, with a small payload and result) in
// one of 8 instances; the clock stops when Shutdown has delivered
// everything. The server runs in a process of its own on the same
// machine: cpu-us/span is the CPU time per span of the benchmark's process
// (recording and exporting), server-cpu-us/span the server's, and
// B/op and allocs/op count the benchmark's process alone.
func BenchmarkExport(b *testing.B) { benchmarkExport(b, 0) }

// BenchmarkExportRTT is BenchmarkExport with 2 ms added to every answer,
// standing for a network round trip.
func BenchmarkExportRTT(b *testing.B) { benchmarkExport(b, 2*time.Millisecond) }

func benchmarkExport(b *testing.B, rtt time.Duration) {
	for _, mode := range []prefactor.Mode{prefactor.ModeBulk, prefactor.ModeSingle} {
		b.Run(mode.String(), func(b *testing.B) {
			srv := startServer(b, rtt)
			defer srv.close()
			exp, err := prefactor.New(prefactor.WithURL(srv.URL), prefactor.WithToken(srv.Token),
				prefactor.WithAgentID(srv.AgentID), prefactor.WithEnvironmentID(srv.EnvironmentID),
				prefactor.WithMode(mode), prefactor.WithPollInterval(-1))
			if err != nil {
				b.Fatal(err)
			}
			tr := newAgenttrace(b, exp, agenttrace.WithQueueLimits(1<<22, 1<<30),
				agenttrace.WithExportTimeout(10*time.Minute), agenttrace.WithFlushInterval(50*time.Millisecond))
			var ctxs []context.Context
			var runs []*agenttrace.Instance
			for range 8 {
				ctx, run := tr.StartInstance(context.Background())
				ctxs, runs = append(ctxs, ctx), append(runs, run)
			}
			resp := agenttrace.LLMResponse{Text: "ok", FinishReason: "stop", Usage: &agenttrace.Usage{PromptTokens: 10, CompletionTokens: 2}}
			b.ReportAllocs()
			srv0 := srv.stats(b)
			cpu0 := cpuTime()
			b.ResetTimer()
			start := time.Now()
			for i := range b.N {
				_, s := tr.Start(ctxs[i%len(ctxs)], "llm", llmPayload)
				s.SetResult(resp)
				s.End()
			}
			for _, r := range runs {
				r.End()
			}
			if err := tr.Shutdown(context.Background()); err != nil {
				b.Fatal(err)
			}
			elapsed := time.Since(start)
			cpu := cpuTime() - cpu0
			b.StopTimer()
			srv1 := srv.stats(b)
			if got := srv1.Spans - srv0.Spans; got != b.N {
				b.Fatalf("delivered %d of %d spans; stats %+v", got, b.N, tr.Stats())
			}
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "spans/s")
			b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-us/span")
			b.ReportMetric(float64((srv1.CPU-srv0.CPU).Microseconds())/float64(b.N), "server-cpu-us/span")
		})
	}
}

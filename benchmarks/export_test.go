package benchmarks

import (
	"context"
	"syscall"
	"testing"
	"time"

	"github.com/agenttrace/agenttrace"
	"github.com/agenttrace/agenttrace/exporter/prefactor"
	"github.com/agenttrace/agenttrace/exporter/prefactor/prefactortest"
)

// cpuTime is the process's user + system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkExport measures spans per second delivered to prefactortest over
// loopback, through the bulk endpoint and through single requests. Each op
// is one LLM span (started and ended, with a small payload and result) in
// one of 8 instances; the clock stops when Shutdown has delivered
// everything. cpu-us/span is the whole process's CPU time per span, the
// fake server's included.
func BenchmarkExport(b *testing.B) { benchmarkExport(b, 0) }

// BenchmarkExportRTT is BenchmarkExport with 2 ms added to every answer,
// standing for a network round trip.
func BenchmarkExportRTT(b *testing.B) { benchmarkExport(b, 2*time.Millisecond) }

func benchmarkExport(b *testing.B, rtt time.Duration) {
	for _, mode := range []prefactor.Mode{prefactor.ModeBulk, prefactor.ModeSingle} {
		b.Run(mode.String(), func(b *testing.B) {
			srv := prefactortest.NewServer()
			defer srv.Close()
			srv.SetLatency(rtt)
			exp, err := prefactor.New(prefactor.WithURL(srv.URL), prefactor.WithToken(srv.Token()),
				prefactor.WithAgentID(srv.AgentID()), prefactor.WithEnvironmentID(srv.EnvironmentID()),
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
			got := len(srv.AllSpans())
			if got != b.N {
				b.Fatalf("delivered %d of %d spans; stats %+v", got, b.N, tr.Stats())
			}
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "spans/s")
			b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-us/span")
		})
	}
}

package main

import (
	"context"
	"database/sql"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/agenttrace/agenttrace"
	"github.com/agenttrace/agenttrace/cmd/agenttrace/internal/server"
	"github.com/agenttrace/agenttrace/cmd/agenttrace/internal/sqlitestore"
	"github.com/agenttrace/agenttrace/exporter/prefactor"
	"github.com/agenttrace/agenttrace/internal/prefactorapi"
)

// procCPU is a process's user+system CPU time, from /proc.
func procCPU(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * 10 * time.Millisecond // USER_HZ = 100
}

// BenchmarkExportToServer sends spans from our exporter (bulk mode) to the
// server, run in a process of its own over a SQLite file: spans/s from the
// first record to the last acknowledgement, and the server's CPU per span.
// AGENTTRACE_TEST_CPUPROFILE=<file> profiles the server.
func BenchmarkExportToServer(b *testing.B) {
	t := &testing.T{}
	db := filepath.Join(b.TempDir(), "bench.db")
	addr := freeAddr(t)
	cmd, out := child(t, "serve", "--db", db, "--addr", addr, "--token", testToken)
	waitServing(t, out)
	// Stopped with SIGINT, as a user would, so that a profile
	// (AGENTTRACE_TEST_CPUPROFILE) is written.
	defer func() { _ = cmd.Process.Signal(os.Interrupt); _ = cmd.Wait() }()
	exp, err := prefactor.New(prefactor.WithURL("http://"+addr), prefactor.WithToken(testToken), prefactor.WithBulkLimits(500, 4<<20))
	if err != nil {
		b.Fatal(err)
	}
	tr, err := agenttrace.New(agenttrace.WithExporter(exp), agenttrace.WithAgent("bench", "1"),
		agenttrace.WithQueueLimits(1<<22, 1<<30), agenttrace.WithFlushInterval(50*time.Millisecond))
	if err != nil {
		b.Fatal(err)
	}
	cpu0 := procCPU(cmd.Process.Pid)
	b.ResetTimer()
	start := time.Now()
	ctx, run := tr.StartInstance(context.Background())
	for i := 0; i < b.N; i++ {
		_, s := tr.Start(ctx, "llm", agenttrace.LLMRequest{Model: "m"})
		s.SetUsage(agenttrace.Usage{PromptTokens: 10, CompletionTokens: 2})
		s.End()
	}
	run.End()
	if err := tr.Shutdown(context.Background()); err != nil {
		b.Fatal(err)
	}
	el := time.Since(start)
	b.StopTimer()
	cpu := procCPU(cmd.Process.Pid) - cpu0
	peak := procPeakRSS(cmd.Process.Pid)
	if st := tr.Stats(); st.Failed+st.Dropped.Total() != 0 {
		b.Fatalf("lost spans: %+v", st)
	}
	b.ReportMetric(float64(b.N)/el.Seconds(), "spans/s")
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "server-cpu-us/span")
	b.ReportMetric(peak, "server-peak-rss-MiB")
}

// procPeakRSS returns the peak resident set size of process pid in MiB
// (VmHWM), 0 when unknown.
func procPeakRSS(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			return kb / 1024
		}
	}
	return 0
}

const (
	fixtureInstances = 50_000
	fixtureSpans     = 1_000_000
)

// listingFixture builds (once, kept in the temp directory) a database with
// 50,000 instances of one agent, 1,000,000 spans, with users, groups and
// names, by direct batched inserts.
func listingFixture(b *testing.B) string {
	path := filepath.Join(os.TempDir(), fmt.Sprintf("agenttrace-listing-fixture-s%d.db", sqlitestore.SchemaVersion))
	if _, err := os.Stat(path); err == nil {
		return path
	}
	tmp := path + ".building"
	_ = os.Remove(tmp)
	st, err := sqlitestore.Open(context.Background(), tmp, sqlitestore.Options{})
	if err != nil {
		b.Fatal(err)
	}
	agent, version := prefactorapi.NewPFID(123456789), prefactorapi.NewPFID(123456789)
	ctx := context.Background()
	err = st.Update(ctx, func(tx prefactorapi.Tx) error {
		now := time.Now().UTC()
		if err := tx.PutAgent(prefactorapi.AgentRecord{ID: agent, Name: "support", ExternalID: "support", Status: "active", InsertedAt: now, UpdatedAt: now}); err != nil {
			return err
		}
		return tx.PutAgentVersion(prefactorapi.AgentVersionRecord{ID: version, AgentID: agent, ExternalID: "v1", Number: 1, InsertedAt: now})
	})
	if err != nil {
		b.Fatal(err)
	}
	if err := st.Close(); err != nil {
		b.Fatal(err)
	}
	raw, err := sql.Open("sqlite", "file:"+tmp+"?_pragma=journal_mode(WAL)&_pragma=synchronous(OFF)")
	if err != nil {
		b.Fatal(err)
	}
	defer raw.Close()
	tx, err := raw.Begin()
	if err != nil {
		b.Fatal(err)
	}
	insI, err := tx.Prepare(`INSERT INTO instances(id, agent_id, environment_id, version_id, schema_version_id, deployment_id, purpose,
		status, termination_reason, started_at, finished_at, inserted_at, updated_at, start_key, spans_pending, spans_active,
		spans_complete, spans_failed, spans_cancelled, name, user_id, group_id, channel, session_id, ip_address, user_agent,
		version_number, prompt_tokens, completion_tokens, total_tokens, cost_prompt, cost_completion, cost_services, cost_total,
		currency, ttft_ms, ttft_from) VALUES (?,?,'',?, '','','live','complete','',?,?,?,?,?,0,0,20,0,0,?,?,?,'web','','192.0.2.1','ua',1,100,20,120,0.1,0.2,0,0.3,'USD',150,?)`)
	if err != nil {
		b.Fatal(err)
	}
	insS, err := tx.Prepare(`INSERT INTO spans(id, instance_id, agent_id, parent_id, schema_name, status, payload, result_payload,
		started_at, finished_at, inserted_at, updated_at, creates, finishes) VALUES (?,?,?,'','tool','complete','{"i":1}','{"ok":true}',?,?,?,?,1,1)`)
	if err != nil {
		b.Fatal(err)
	}
	words := []string{"refund", "shipping", "invoice", "password", "upgrade", "cancel", "billing", "login"}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	perInst := fixtureSpans / fixtureInstances
	for i := range fixtureInstances {
		id := prefactorapi.NewPFID(123456789)
		start := t0.Add(time.Duration(i) * time.Minute).UnixMicro()
		name := fmt.Sprintf("%s question %d", words[i%len(words)], i)
		if _, err := insI.Exec(id, agent, version, start, start+3_000_000, start, start, start, name, "user-"+strconv.Itoa(i%500),
			"group-"+strconv.Itoa(i%20), start); err != nil {
			b.Fatal(err)
		}
		for j := range perInst {
			if _, err := insS.Exec(prefactorapi.NewPFID(123456789), id, agent, start+int64(j), start+int64(j)+1000, start, start); err != nil {
				b.Fatal(err)
			}
		}
	}
	if err := tx.Commit(); err != nil {
		b.Fatal(err)
	}
	// Into the database file: a server's write-ahead log is checkpointed
	// every thousand pages, not read through at a third of a gigabyte.
	if _, err := raw.Exec("PRAGMA wal_checkpoint(TRUNCATE)"); err != nil {
		b.Fatal(err)
	}
	_ = raw.Close()
	if err := os.Rename(tmp, path); err != nil {
		b.Fatal(err)
	}
	_ = os.Rename(tmp+"-wal", path+"-wal")
	_ = os.Rename(tmp+"-shm", path+"-shm")
	return path
}

// BenchmarkListing asks the server for filtered listing pages over
// 50,000 instances and 1,000,000 spans and reports the 95th percentile.
func BenchmarkListing(b *testing.B) {
	path := listingFixture(b)
	st, err := sqlitestore.Open(context.Background(), path, sqlitestore.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	srv, err := server.New(server.Config{Store: st, Token: testToken})
	if err != nil {
		b.Fatal(err)
	}
	queries := []string{
		"/api/v2/AgentInstance/support?userIdentifier=user-42&page=2&pageSize=20",
		"/api/v2/AgentInstance/support/1?groupIdentifier=group-7&sort=asc&page=50",
		"/api/v2/AgentInstance/support?search=refund&page=3",
		"/api/v2/AgentInstance/support?search=invoice+question&userIdentifier=user-2",
		"/api/v2/AgentInstance/support?page=1200",
	}
	var lat []time.Duration
	per := make([][]time.Duration, len(queries))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		q := queries[i%len(queries)]
		req := httptest.NewRequest(http.MethodGet, q, nil)
		req.Header.Set("X-API-KEY", testToken)
		rec := httptest.NewRecorder()
		t0 := time.Now()
		srv.ServeHTTP(rec, req)
		d := time.Since(t0)
		lat = append(lat, d)
		per[i%len(queries)] = append(per[i%len(queries)], d)
		if rec.Code != 200 || !strings.Contains(rec.Body.String(), `"items":[{`) {
			b.Fatalf("%s: %d %.200s", q, rec.Code, rec.Body.String())
		}
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)*95/100].Microseconds())/1000, "p95-ms")
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	for i, l := range per {
		if len(l) > 0 {
			slices.Sort(l)
			b.Logf("query %d %s: p95 %v", i, queries[i], l[len(l)*95/100])
		}
	}
}

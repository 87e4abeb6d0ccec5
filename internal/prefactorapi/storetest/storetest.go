// Package storetest is the test suite every prefactorapi.Store passes:
// Run(t, newStore) with a constructor that returns a new, empty store.
package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agenttrace/agenttrace/internal/prefactorapi"
)

// NewStore returns a new, empty store; the suite closes it.
type NewStore func(t *testing.T) prefactorapi.Store

// Run runs the suite, each test on a store of its own.
func Run(t *testing.T, newStore NewStore) { RunWithCodec(t, newStore, prefactorapi.Codec{}) }

// RunWithCodec runs the suite with the protocol's requests decoded by
// codec (see prefactorapi.Config.Codec).
func RunWithCodec(t *testing.T, newStore NewStore, codec prefactorapi.Codec) {
	protocol := func(fn func(*testing.T, *prefactorapi.API)) func(*testing.T, prefactorapi.Store) {
		return func(t *testing.T, s prefactorapi.Store) { fn(t, newAPI(t, s, codec)) }
	}
	tests := []struct {
		name string
		fn   func(*testing.T, prefactorapi.Store)
	}{
		{"RoundTrip", testRoundTrip},
		{"Rollback", testRollback},
		{"BatchLookups", testBatchLookups},
		{"ManyWritesInOneUpdate", testManyWrites},
		{"ListInstances", testListInstances},
		{"Search", testSearch},
		{"Agents", testAgents},
		{"ConcurrentUpdates", testConcurrentUpdates},
		{"Protocol", protocol(testProtocol)},
		{"BulkStopsAtFirstError", protocol(testBulk)},
		{"BulkSeesItsOwnWrites", protocol(testBulkOwnWrites)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore(t)
			t.Cleanup(func() { _ = s.Close() })
			tc.fn(t, s)
		})
	}
	runEndpoints(t, newStore, codec)
}

var ctx = context.Background()

// ts is a time in UTC with microseconds, the precision stores keep.
func ts(sec int) time.Time {
	return time.Date(2026, 3, 4, 5, 6, 7, 123456000, time.UTC).Add(time.Duration(sec) * time.Second)
}

var partition uint32 = 123456789

func id() string { return prefactorapi.NewPFID(partition) }

func sampleInstance(agentID string, n int) prefactorapi.InstanceRecord {
	return prefactorapi.InstanceRecord{
		ID: id(), AgentID: agentID, EnvironmentID: id(), VersionID: id(), SchemaVersionID: id(), DeploymentID: id(),
		Purpose: "live", Status: "active", StartedAt: ts(n), InsertedAt: ts(n - 1), UpdatedAt: ts(n),
		Register:   json.RawMessage(`{"agent_id":"x"}`),
		SpanCounts: prefactorapi.StatusCounts{Active: 1, Complete: 2},
		Run: prefactorapi.RunFields{Name: fmt.Sprintf("run %d", n), UserID: "u", GroupID: "g", Channel: "web",
			SessionID: "s", IPAddress: "127.0.0.1", UserAgent: "ua/1", VersionNumber: 1, PromptTokens: 10,
			CompletionTokens: 5, TotalTokens: 15, CostPrompt: 0.5, CostCompletion: 0.25, CostServices: 0.125,
			CostTotal: 0.875, Currency: "USD", TTFTMillis: 42, TTFTFrom: ts(n)},
	}
}

func update(t *testing.T, s prefactorapi.Store, fn func(tx prefactorapi.Tx) error) {
	t.Helper()
	require.NoError(t, s.Update(ctx, fn))
}

func testRoundTrip(t *testing.T, s prefactorapi.Store) {
	agent := prefactorapi.AgentRecord{ID: id(), Name: "a", Description: "d", ExternalID: "ext", EnvironmentID: id(),
		Status: "active", CurrentVersionID: id(), CurrentSchemaVersion: id(), InsertedAt: ts(0), UpdatedAt: ts(1)}
	ver := prefactorapi.AgentVersionRecord{ID: id(), AgentID: agent.ID, ExternalID: "v1", Name: "n", Description: "d", Number: 1, SchemaVersionID: id(), InsertedAt: ts(0)}
	schema := prefactorapi.SchemaVersionRecord{ID: id(), AgentID: agent.ID, ExternalID: "s1",
		SpanTypes: map[string]prefactorapi.SpanTypeInfo{"llm": {Title: "LLM", Template: "{{ model }}"}},
		Body:      json.RawMessage(`{"external_identifier":"s1"}`), InsertedAt: ts(0)}
	dep := prefactorapi.DeploymentRecord{ID: id(), AgentID: agent.ID, EnvironmentID: agent.EnvironmentID}
	in := sampleInstance(agent.ID, 5)
	in.TerminationReason = "why"
	yes := true
	sp := prefactorapi.SpanRecord{ID: id(), InstanceID: in.ID, AgentID: agent.ID, ParentID: id(), SchemaName: "llm",
		Status: "complete", Payload: json.RawMessage(`{"a":1}`), ResultPayload: json.RawMessage(`{"b":[1,2]}`),
		StartedAt: ts(1), FinishedAt: ts(2), InsertedAt: ts(1), UpdatedAt: ts(2), SensitiveEncoding: &yes, Creates: 1, Finishes: 1}
	bare := prefactorapi.SpanRecord{ID: id(), InstanceID: in.ID, AgentID: agent.ID, SchemaName: "tool", Status: "pending",
		Payload: json.RawMessage(`{}`), InsertedAt: ts(3), UpdatedAt: ts(3), Creates: 1}
	idem := prefactorapi.IdempotencyRecord{Key: "key-1", Hash: "h", Status: 200, Body: []byte(`{"status":"success"}`)}
	update(t, s, func(tx prefactorapi.Tx) error {
		return errors.Join(tx.PutAgent(agent), tx.PutAgentVersion(ver), tx.PutSchemaVersion(schema), tx.PutDeployment(dep),
			tx.PutInstance(in), tx.PutSpan(sp), tx.PutSpan(bare), tx.PutIdempotency(idem))
	})
	require.NoError(t, s.View(ctx, func(tx prefactorapi.ReadTx) error {
		a, ok, err := tx.Agent(agent.ID)
		require.NoError(t, err)
		require.True(t, ok)
		assert.Equal(t, agent, a)
		a, ok, err = tx.AgentByExternalID("ext")
		require.NoError(t, err)
		require.True(t, ok)
		assert.Equal(t, agent.ID, a.ID)
		v, ok, err := tx.AgentVersion(ver.ID)
		require.NoError(t, err)
		require.True(t, ok)
		assert.Equal(t, ver, v)
		v, ok, err = tx.AgentVersionByExternalID(agent.ID, "v1")
		require.NoError(t, err)
		require.True(t, ok)
		assert.Equal(t, ver, v)
		v, ok, err = tx.AgentVersionByNumber(agent.ID, 1)
		require.NoError(t, err)
		require.True(t, ok)
		assert.Equal(t, ver.ID, v.ID)
		n, err := tx.CountAgentVersions(agent.ID)
		require.NoError(t, err)
		assert.Equal(t, 1, n)
		sv, ok, err := tx.SchemaVersion(schema.ID)
		require.NoError(t, err)
		require.True(t, ok)
		assert.Equal(t, schema.SpanTypes, sv.SpanTypes)
		assert.JSONEq(t, string(schema.Body), string(sv.Body))
		sv, ok, err = tx.SchemaVersionByExternalID(agent.ID, "s1")
		require.NoError(t, err)
		require.True(t, ok)
		assert.Equal(t, schema.ID, sv.ID)
		d, ok, err := tx.Deployment(agent.ID, agent.EnvironmentID)
		require.NoError(t, err)
		require.True(t, ok)
		assert.Equal(t, dep, d)
		got, ok, err := tx.Instance(in.ID)
		require.NoError(t, err)
		require.True(t, ok)
		assert.Equal(t, in, got)
		s1, ok, err := tx.Span(sp.ID)
		require.NoError(t, err)
		require.True(t, ok)
		assert.Equal(t, sp, s1)
		s2, ok, err := tx.Span(bare.ID)
		require.NoError(t, err)
		require.True(t, ok)
		assert.Equal(t, bare, s2)
		spans, err := tx.ListSpans(in.ID)
		require.NoError(t, err)
		require.Len(t, spans, 2)
		assert.Equal(t, []string{sp.ID, bare.ID}, []string{spans[0].ID, spans[1].ID}, "creation order")
		all, err := tx.ListSpans("")
		require.NoError(t, err)
		assert.Len(t, all, 2)
		r, ok, err := tx.Idempotency("key-1")
		require.NoError(t, err)
		require.True(t, ok)
		assert.Equal(t, idem, r)
		for _, miss := range []func() (bool, error){
			func() (bool, error) { _, ok, err := tx.Instance(id()); return ok, err },
			func() (bool, error) { _, ok, err := tx.Span(id()); return ok, err },
			func() (bool, error) { _, ok, err := tx.Agent(id()); return ok, err },
			func() (bool, error) { _, ok, err := tx.Idempotency("nope"); return ok, err },
			func() (bool, error) { _, ok, err := tx.AgentVersionByExternalID(agent.ID, "v9"); return ok, err },
			func() (bool, error) { _, ok, err := tx.Deployment(agent.ID, id()); return ok, err },
		} {
			ok, err := miss()
			require.NoError(t, err)
			assert.False(t, ok)
		}
		return nil
	}))
	// Put replaces.
	in.Status, in.SpanCounts.Active = "complete", 0
	sp.Status = "failed"
	update(t, s, func(tx prefactorapi.Tx) error { return errors.Join(tx.PutInstance(in), tx.PutSpan(sp)) })
	require.NoError(t, s.View(ctx, func(tx prefactorapi.ReadTx) error {
		got, _, err := tx.Instance(in.ID)
		assert.Equal(t, in, got)
		s1, _, _ := tx.Span(sp.ID)
		assert.Equal(t, "failed", s1.Status)
		spans, _ := tx.ListSpans(in.ID)
		assert.Len(t, spans, 2, "a replaced span keeps its place")
		assert.Equal(t, sp.ID, spans[0].ID)
		return err
	}))
}

func testRollback(t *testing.T, s prefactorapi.Store) {
	in := sampleInstance(id(), 1)
	boom := errors.New("boom")
	err := s.Update(ctx, func(tx prefactorapi.Tx) error {
		require.NoError(t, tx.PutInstance(in))
		require.NoError(t, tx.PutIdempotency(prefactorapi.IdempotencyRecord{Key: "k", Hash: "h", Status: 200, Body: []byte("{}")}))
		_, ok, err := tx.Instance(in.ID)
		require.NoError(t, err)
		require.True(t, ok, "a transaction sees its own writes")
		return boom
	})
	require.ErrorIs(t, err, boom)
	require.NoError(t, s.View(ctx, func(tx prefactorapi.ReadTx) error {
		_, ok, err := tx.Instance(in.ID)
		assert.False(t, ok, "rolled back")
		_, ok2, _ := tx.Idempotency("k")
		assert.False(t, ok2, "rolled back")
		return err
	}))
	// A replaced record comes back as it was.
	update(t, s, func(tx prefactorapi.Tx) error { return tx.PutInstance(in) })
	_ = s.Update(ctx, func(tx prefactorapi.Tx) error {
		changed := in
		changed.Status = "failed"
		require.NoError(t, tx.PutInstance(changed))
		return boom
	})
	require.NoError(t, s.View(ctx, func(tx prefactorapi.ReadTx) error {
		got, _, err := tx.Instance(in.ID)
		assert.Equal(t, "active", got.Status)
		return err
	}))
}

// Idempotencies and Spans find what is stored, committed or written in
// the transaction, and leave out what is not (a key asked twice is one
// entry).
func testBatchLookups(t *testing.T, s prefactorapi.Store) {
	in := sampleInstance(id(), 1)
	span := func() prefactorapi.SpanRecord {
		return prefactorapi.SpanRecord{ID: id(), InstanceID: in.ID, AgentID: in.AgentID, SchemaName: "llm", Status: "active",
			Payload: json.RawMessage(`{"a":1}`), StartedAt: ts(1), InsertedAt: ts(1), UpdatedAt: ts(1), Creates: 1}
	}
	committed, written, missing := span(), span(), id()
	rec := func(k string) prefactorapi.IdempotencyRecord {
		return prefactorapi.IdempotencyRecord{Key: k, Hash: "h-" + k, Status: 200, Body: []byte(`{"k":"` + k + `"}`)}
	}
	update(t, s, func(tx prefactorapi.Tx) error {
		require.NoError(t, tx.PutInstance(in))
		require.NoError(t, tx.PutSpan(committed))
		return tx.PutIdempotency(rec("key-committed"))
	})
	update(t, s, func(tx prefactorapi.Tx) error {
		require.NoError(t, tx.PutSpan(written))
		require.NoError(t, tx.PutIdempotency(rec("key-written")))
		recs, err := tx.Idempotencies([]string{"key-committed", "key-written", "key-missing", "key-committed"})
		require.NoError(t, err)
		assert.Equal(t, map[string]prefactorapi.IdempotencyRecord{"key-committed": rec("key-committed"), "key-written": rec("key-written")}, recs)
		spans, err := tx.Spans([]string{committed.ID, written.ID, missing, written.ID})
		require.NoError(t, err)
		assert.Equal(t, map[string]prefactorapi.SpanRecord{committed.ID: committed, written.ID: written}, spans)
		none, err := tx.Spans(nil)
		require.NoError(t, err)
		assert.Empty(t, none)
		noKeys, err := tx.Idempotencies([]string{})
		require.NoError(t, err)
		assert.Empty(t, noKeys)
		return nil
	})
	require.NoError(t, s.View(ctx, func(tx prefactorapi.ReadTx) error {
		spans, err := tx.Spans([]string{written.ID, missing})
		require.NoError(t, err)
		assert.Equal(t, map[string]prefactorapi.SpanRecord{written.ID: written}, spans)
		recs, err := tx.Idempotencies([]string{"key-written"})
		require.NoError(t, err)
		assert.Equal(t, map[string]prefactorapi.IdempotencyRecord{"key-written": rec("key-written")}, recs)
		return nil
	}))
}

func testListInstances(t *testing.T, s prefactorapi.Store) {
	agent, other := id(), id()
	var ins []prefactorapi.InstanceRecord
	update(t, s, func(tx prefactorapi.Tx) error {
		for i := range 30 {
			in := sampleInstance(agent, 100-i) // registered in order, started in reverse
			in.Run.UserID = []string{"alice", "bob", "carol"}[i%3]
			in.Run.GroupID = []string{"g1", "g2"}[i%2]
			if i%5 == 0 {
				in.VersionID = "v-five"
			}
			if i == 29 {
				in.StartedAt = time.Time{} // never started: sorts by its registration
				in.InsertedAt = ts(1000)
			}
			ins = append(ins, in)
			if err := tx.PutInstance(in); err != nil {
				return err
			}
		}
		return tx.PutInstance(sampleInstance(other, 5))
	})
	list := func(q prefactorapi.InstanceQuery) ([]prefactorapi.InstanceRecord, int) {
		var out []prefactorapi.InstanceRecord
		var total int
		require.NoError(t, s.View(ctx, func(tx prefactorapi.ReadTx) error {
			var err error
			out, total, err = tx.ListInstances(q)
			return err
		}))
		return out, total
	}
	all, total := list(prefactorapi.InstanceQuery{})
	require.Equal(t, 31, total)
	require.Len(t, all, 31)
	for i := range 30 {
		require.Equal(t, ins[i].ID, all[i].ID, "registration order")
	}
	got, total := list(prefactorapi.InstanceQuery{AgentID: agent, Order: prefactorapi.ByStartDesc, Limit: 5})
	require.Equal(t, 30, total)
	require.Len(t, got, 5)
	require.Equal(t, ins[29].ID, got[0].ID, "the never-started one sorts by registration (latest)")
	require.Equal(t, []string{ins[0].ID, ins[1].ID, ins[2].ID, ins[3].ID}, ids(got[1:]))
	got, _ = list(prefactorapi.InstanceQuery{AgentID: agent, Order: prefactorapi.ByStartAsc, Offset: 0, Limit: 3})
	require.Equal(t, []string{ins[28].ID, ins[27].ID, ins[26].ID}, ids(got))
	got, total = list(prefactorapi.InstanceQuery{AgentID: agent, Order: prefactorapi.ByStartAsc, Offset: 28, Limit: 5})
	require.Equal(t, 30, total)
	require.Equal(t, []string{ins[0].ID, ins[29].ID}, ids(got))
	got, total = list(prefactorapi.InstanceQuery{AgentID: agent, Offset: 1_000_000_000, Limit: 20})
	require.Equal(t, 30, total)
	require.Empty(t, got)
	_, total = list(prefactorapi.InstanceQuery{AgentID: agent, UserID: "bob"})
	require.Equal(t, 10, total)
	_, total = list(prefactorapi.InstanceQuery{AgentID: agent, UserID: "bob", GroupID: "g1"})
	require.Equal(t, 5, total)
	got, total = list(prefactorapi.InstanceQuery{AgentID: agent, VersionID: "v-five", Order: prefactorapi.ByStartDesc})
	require.Equal(t, 6, total)
	require.Equal(t, ins[0].ID, got[0].ID)
	_, total = list(prefactorapi.InstanceQuery{AgentID: agent, UserID: "nobody"})
	require.Equal(t, 0, total)
	require.NoError(t, s.View(ctx, func(tx prefactorapi.ReadTx) error {
		c, err := tx.InstanceCounts(agent)
		assert.Equal(t, prefactorapi.StatusCounts{Active: 30}, c)
		return err
	}))
}

func ids(ins []prefactorapi.InstanceRecord) []string {
	out := make([]string, len(ins))
	for i := range ins {
		out[i] = ins[i].ID
	}
	return out
}

func testSearch(t *testing.T, s prefactorapi.Store) {
	agent := id()
	names := []string{"Refund request for order 42", "refund denied", "Shipping question", "Order status (refund?)", ""}
	update(t, s, func(tx prefactorapi.Tx) error {
		for i, n := range names {
			in := sampleInstance(agent, i)
			in.Run.Name = n
			if err := tx.PutInstance(in); err != nil {
				return err
			}
		}
		return nil
	})
	count := func(q string) int {
		var total int
		require.NoError(t, s.View(ctx, func(tx prefactorapi.ReadTx) error {
			var err error
			_, total, err = tx.ListInstances(prefactorapi.InstanceQuery{AgentID: agent, Search: q})
			return err
		}))
		return total
	}
	assert.Equal(t, 3, count("refund"))
	assert.Equal(t, 3, count("REFUND"))
	assert.Equal(t, 2, count("order refund"))
	assert.Equal(t, 1, count("shipping"))
	assert.Equal(t, 0, count("nothing"))
	assert.Equal(t, 5, count(""))
	assert.Equal(t, 0, count(`"; DROP TABLE x; --`), "quotes and operators are plain text")
	assert.Equal(t, 0, count("*"), "no word: nothing")
	assert.Equal(t, 3, count("ref"), "words match name words by prefix")
	assert.Equal(t, 0, count("efund"), "not in the middle of a word")
}

func testAgents(t *testing.T, s prefactorapi.Store) {
	a1 := prefactorapi.AgentRecord{ID: id(), Name: "one", Status: "active", InsertedAt: ts(0), UpdatedAt: ts(0)}
	a2 := prefactorapi.AgentRecord{ID: id(), Name: "two", ExternalID: "two", Status: "pending", InsertedAt: ts(1), UpdatedAt: ts(1)}
	update(t, s, func(tx prefactorapi.Tx) error {
		return errors.Join(tx.PutAgent(a1), tx.PutAgent(a2),
			tx.PutAgentVersion(prefactorapi.AgentVersionRecord{ID: id(), AgentID: a1.ID, ExternalID: "v1", Number: 1, InsertedAt: ts(0)}),
			tx.PutAgentVersion(prefactorapi.AgentVersionRecord{ID: id(), AgentID: a1.ID, ExternalID: "v2", Number: 2, InsertedAt: ts(1)}))
	})
	require.NoError(t, s.View(ctx, func(tx prefactorapi.ReadTx) error {
		l, err := tx.ListAgents()
		require.NoError(t, err)
		assert.Equal(t, []prefactorapi.AgentRecord{a1, a2}, l)
		n, err := tx.CountAgentVersions(a1.ID)
		assert.Equal(t, 2, n)
		v, ok, _ := tx.AgentVersionByNumber(a1.ID, 2)
		assert.True(t, ok)
		assert.Equal(t, "v2", v.ExternalID)
		return err
	}))
	update(t, s, func(tx prefactorapi.Tx) error { return tx.DeleteAgent(a1.ID) })
	require.NoError(t, s.View(ctx, func(tx prefactorapi.ReadTx) error {
		l, err := tx.ListAgents()
		assert.Equal(t, []prefactorapi.AgentRecord{a2}, l)
		_, ok, _ := tx.Agent(a1.ID)
		assert.False(t, ok)
		return err
	}))
}

// Updates are serializable: concurrent read-modify-write cycles lose
// nothing.
func testConcurrentUpdates(t *testing.T, s prefactorapi.Store) {
	in := sampleInstance(id(), 1)
	in.SpanCounts = prefactorapi.StatusCounts{}
	update(t, s, func(tx prefactorapi.Tx) error { return tx.PutInstance(in) })
	const workers, each = 4, 25
	var wg sync.WaitGroup
	errs := make(chan error, workers*each)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				errs <- s.Update(ctx, func(tx prefactorapi.Tx) error {
					r, _, err := tx.Instance(in.ID)
					if err != nil {
						return err
					}
					r.SpanCounts.Complete++
					return tx.PutInstance(r)
				})
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	require.NoError(t, s.View(ctx, func(tx prefactorapi.ReadTx) error {
		r, _, err := tx.Instance(in.ID)
		assert.Equal(t, int64(workers*each), r.SpanCounts.Complete)
		return err
	}))
}

func newAPI(t *testing.T, s prefactorapi.Store, codec prefactorapi.Codec) *prefactorapi.API {
	api, err := prefactorapi.New(s, prefactorapi.Config{AccountID: id(), EnvironmentID: id(), Codec: codec})
	require.NoError(t, err)
	return api
}

func do(t *testing.T, api *prefactorapi.API, ep prefactorapi.Endpoint, pathID, body string) map[string]any {
	t.Helper()
	ans := api.Do(ctx, ep, pathID, []byte(body), nil)
	var m map[string]any
	require.NoError(t, json.Unmarshal(ans.Body, &m), string(ans.Body))
	m["http_status"] = float64(ans.Status)
	return m
}

func detailsID(m map[string]any) string {
	d, _ := m["details"].(map[string]any)
	s, _ := d["id"].(string)
	return s
}

// The protocol over the store: a run lands with its rollups, an identical
// retry replays, another body under the key is refused.
func testProtocol(t *testing.T, api *prefactorapi.API) {
	s := api.Store()
	reg := do(t, api, prefactorapi.EndpointRegister, "", `{"agent_version":{"external_identifier":"v1","name":"support"},
		"agent_schema_version":{"external_identifier":"s1","span_type_schemas":[{"name":"agent","params_schema":{}},
		{"name":"llm","title":"LLM call","params_schema":{},"template":"{{ model }} said {{ text | default: \"nothing\" }}"}]},
		"idempotency_key":"reg-1"}`)
	require.Equal(t, 200.0, reg["http_status"], reg)
	inst := detailsID(reg)
	again := do(t, api, prefactorapi.EndpointRegister, "", `{"agent_version":{"external_identifier":"v1","name":"support"},
		"agent_schema_version":{"external_identifier":"s1","span_type_schemas":[{"name":"agent","params_schema":{}},
		{"name":"llm","title":"LLM call","params_schema":{},"template":"{{ model }} said {{ text | default: \"nothing\" }}"}]},
		"idempotency_key":"reg-1"}`)
	require.Equal(t, inst, detailsID(again), "replayed")
	other := do(t, api, prefactorapi.EndpointRegister, "", `{"idempotency_key":"reg-1"}`)
	require.Equal(t, 409.0, other["http_status"])
	require.Equal(t, "idempotency_key_already_used", other["code"])
	require.Equal(t, 200.0, do(t, api, prefactorapi.EndpointStart, inst, `{"idempotency_key":"start-1","timestamp":"2026-03-04T05:06:07Z"}`)["http_status"])
	root := do(t, api, prefactorapi.EndpointCreateSpan, "", `{"details":{"agent_instance_id":"`+inst+`","schema_name":"agent","status":"active",
		"payload":{"instance":{"name":"Refund for order 7","user_id":"u-1","group_id":"g-1","channel":"web","ip_address":"10.0.0.1","user_agent":"curl/8"}}},
		"idempotency_key":"span-1"}`)
	require.Equal(t, 200.0, root["http_status"], root)
	llm := do(t, api, prefactorapi.EndpointCreateSpan, "", `{"details":{"agent_instance_id":"`+inst+`","schema_name":"llm","status":"complete",
		"parent_span_id":"`+detailsID(root)+`","payload":{"model":"m1"},"started_at":"2026-03-04T05:06:08Z","finished_at":"2026-03-04T05:06:09Z",
		"result_payload":{"text":"hi","token_usage":{"prompt_tokens":7,"completion_tokens":3},"cost":{"prompt":0.01,"completion":0.02,"currency":"USD"},"ttft_ms":120}},
		"idempotency_key":"span-2"}`)
	require.Equal(t, 200.0, llm["http_status"], llm)
	d := llm["details"].(map[string]any)
	require.Equal(t, "LLM call", d["schema_title"])
	require.Equal(t, "m1 said hi", d["summary"])
	bad := do(t, api, prefactorapi.EndpointCreateSpan, "", `{"details":{"agent_instance_id":"`+inst+`","schema_name":"nope","status":"active","payload":{}},"idempotency_key":"span-3"}`)
	require.Equal(t, 422.0, bad["http_status"])
	require.Equal(t, 200.0, do(t, api, prefactorapi.EndpointFinishSpan, detailsID(root), `{"idempotency_key":"fin-1","status":"complete"}`)["http_status"])
	twice := do(t, api, prefactorapi.EndpointFinishSpan, detailsID(root), `{"idempotency_key":"fin-2","status":"complete"}`)
	require.Equal(t, 409.0, twice["http_status"])
	require.Equal(t, "invalid_action", twice["code"])
	fin := do(t, api, prefactorapi.EndpointFinishInstance, inst, `{"idempotency_key":"fin-i","status":"complete"}`)
	require.Equal(t, 200.0, fin["http_status"])
	counts := fin["details"].(map[string]any)["span_counts"].(map[string]any)
	require.Equal(t, map[string]any{"total": 2.0, "pending": 0.0, "active": 0.0, "complete": 2.0, "failed": 0.0, "cancelled": 0.0, "finished": 2.0}, counts)
	require.NoError(t, s.View(ctx, func(tx prefactorapi.ReadTx) error {
		in, ok, err := tx.Instance(inst)
		require.True(t, ok)
		r := in.Run
		assert.Equal(t, "Refund for order 7", r.Name)
		assert.Equal(t, []string{"u-1", "g-1", "web", "10.0.0.1", "curl/8"}, []string{r.UserID, r.GroupID, r.Channel, r.IPAddress, r.UserAgent})
		assert.Equal(t, [3]int64{7, 3, 10}, [3]int64{r.PromptTokens, r.CompletionTokens, r.TotalTokens})
		assert.InDelta(t, 0.03, r.CostTotal, 1e-12)
		assert.Equal(t, "USD", r.Currency)
		assert.Equal(t, int64(120), r.TTFTMillis)
		assert.Equal(t, 1, r.VersionNumber)
		spans, err2 := tx.ListSpans(inst)
		assert.Len(t, spans, 2, "the refused span is not stored")
		a, ok, _ := tx.Agent(in.AgentID)
		assert.True(t, ok)
		assert.Equal(t, "support", a.Name)
		assert.Equal(t, in.VersionID, a.CurrentVersionID)
		return errors.Join(err, err2)
	}))
}

// A bulk request runs its items in order up to the first failure, which is
// its last output; the items before it stay applied, none after it runs.
func testBulk(t *testing.T, api *prefactorapi.API) {
	s := api.Store()
	inst := detailsID(do(t, api, prefactorapi.EndpointRegister, "", `{"idempotency_key":"reg-0001"}`))
	require.NotEmpty(t, inst)
	item := func(k, status string) string {
		return `{"_type":"agent_spans/create","idempotency_key":"` + k + `","details":{"agent_instance_id":"` + inst +
			`","schema_name":"llm","status":"` + status + `","payload":{}}}`
	}
	body := `{"items":[` + strings.Join([]string{item("item-0001", "active"), item("item-0002", "cancelled"), item("item-0003", "active")}, ",") + `]}`
	ans := api.Do(ctx, prefactorapi.EndpointBulk, "", []byte(body), nil)
	require.Equal(t, http.StatusOK, ans.Status)
	var out struct {
		Outputs map[string]map[string]any `json:"outputs"`
	}
	require.NoError(t, json.Unmarshal(ans.Body, &out))
	require.Len(t, out.Outputs, 2)
	require.Equal(t, "success", out.Outputs["item-0001"]["status"])
	require.Equal(t, "validation_errors", out.Outputs["item-0002"]["code"])
	require.NoError(t, s.View(ctx, func(tx prefactorapi.ReadTx) error {
		spans, err := tx.ListSpans(inst)
		assert.Len(t, spans, 1)
		return err
	}))
	// The whole request replayed: the first item is a replay, the failure
	// answers the same.
	ans = api.Do(ctx, prefactorapi.EndpointBulk, "", []byte(body), nil)
	require.True(t, ans.Replayed)
	require.NoError(t, s.View(ctx, func(tx prefactorapi.ReadTx) error {
		spans, err := tx.ListSpans(inst)
		assert.Len(t, spans, 1)
		return err
	}))
}

// The items of a bulk request see what the items before them wrote: a
// child of a span created earlier in the request, the finish of such a
// span, and a second create of its ID, which fails and stops the request.
func testBulkOwnWrites(t *testing.T, api *prefactorapi.API) {
	s := api.Store()
	inst := detailsID(do(t, api, prefactorapi.EndpointRegister, "", `{"idempotency_key":"reg-0001"}`))
	require.NotEmpty(t, inst)
	parent, child := prefactorapi.NewPFID(partition), prefactorapi.NewPFID(partition)
	create := func(k, sid, parentID string) string {
		p := "null"
		if parentID != "" {
			p = `"` + parentID + `"`
		}
		return `{"_type":"agent_spans/create","idempotency_key":"` + k + `","details":{"id":"` + sid + `","agent_instance_id":"` + inst +
			`","parent_span_id":` + p + `,"schema_name":"llm","status":"active","payload":{}}}`
	}
	items := []string{
		create("item-0001", parent, ""),
		create("item-0002", child, parent),
		`{"_type":"agent_spans/finish","idempotency_key":"item-0003","agent_span_id":"` + parent + `","status":"complete"}`,
		create("item-0004", parent, ""),
		create("item-0005", prefactorapi.NewPFID(partition), ""),
	}
	ans := api.Do(ctx, prefactorapi.EndpointBulk, "", []byte(`{"items":[`+strings.Join(items, ",")+`]}`), nil)
	require.Equal(t, http.StatusOK, ans.Status)
	var out struct {
		Outputs map[string]struct {
			Status, Code string
			Details      struct{ Status string }
		} `json:"outputs"`
	}
	require.NoError(t, json.Unmarshal(ans.Body, &out))
	require.Len(t, out.Outputs, 4)
	assert.Equal(t, "success", out.Outputs["item-0002"].Status, "the parent, created by an earlier item, is found")
	assert.Equal(t, "complete", out.Outputs["item-0003"].Details.Status)
	assert.Equal(t, "invalid_action", out.Outputs["item-0004"].Code)
	require.NoError(t, s.View(ctx, func(tx prefactorapi.ReadTx) error {
		spans, err := tx.ListSpans(inst)
		require.Len(t, spans, 2)
		assert.Equal(t, []string{parent, child}, []string{spans[0].ID, spans[1].ID})
		assert.Equal(t, "complete", spans[0].Status)
		in, _, _ := tx.Instance(inst)
		assert.Equal(t, prefactorapi.StatusCounts{Pending: 0, Active: 1, Complete: 1}, in.SpanCounts)
		return err
	}))
}

// An update writing hundreds of spans and idempotency records (as a bulk
// request does), some of them twice, keeps them all, the last write of
// each, spans in the order first written, in the transaction and after.
func testManyWrites(t *testing.T, s prefactorapi.Store) {
	in := sampleInstance(id(), 1)
	const n = 150
	spans := make([]prefactorapi.SpanRecord, n)
	for i := range spans {
		spans[i] = prefactorapi.SpanRecord{ID: id(), InstanceID: in.ID, AgentID: in.AgentID, SchemaName: "llm", Status: "active",
			Payload: json.RawMessage(fmt.Sprintf(`{"i":%d}`, i)), StartedAt: ts(i), InsertedAt: ts(i), UpdatedAt: ts(i), Creates: 1}
	}
	key := func(i int) string { return fmt.Sprintf("key-%04d", i) }
	check := func(tx prefactorapi.ReadTx) {
		got, err := tx.ListSpans(in.ID)
		require.NoError(t, err)
		require.Equal(t, spans, got)
		keys := make([]string, n)
		for i := range keys {
			keys[i] = key(i)
		}
		recs, err := tx.Idempotencies(keys)
		require.NoError(t, err)
		require.Len(t, recs, n)
		for i := range n {
			want := 200
			if i%10 == 0 {
				want = 409
			}
			assert.Equal(t, want, recs[key(i)].Status, key(i))
		}
	}
	update(t, s, func(tx prefactorapi.Tx) error {
		require.NoError(t, tx.PutInstance(in))
		for i, sp := range spans {
			require.NoError(t, tx.PutSpan(sp))
			require.NoError(t, tx.PutIdempotency(prefactorapi.IdempotencyRecord{Key: key(i), Hash: "h", Status: 200, Body: []byte("{}")}))
		}
		for i := 0; i < n; i += 10 {
			spans[i].Status, spans[i].Finishes, spans[i].FinishedAt = "complete", 1, ts(i+1)
			require.NoError(t, tx.PutSpan(spans[i]))
			require.NoError(t, tx.PutIdempotency(prefactorapi.IdempotencyRecord{Key: key(i), Hash: "h", Status: 409, Body: []byte("{}")}))
		}
		check(tx)
		return nil
	})
	require.NoError(t, s.View(ctx, func(tx prefactorapi.ReadTx) error { check(tx); return nil }))
}

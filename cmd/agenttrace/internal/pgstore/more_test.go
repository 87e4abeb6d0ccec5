package pgstore_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agenttrace/agenttrace/cmd/agenttrace/internal/pgstore"
	"github.com/agenttrace/agenttrace/cmd/agenttrace/internal/pgtest"
	"github.com/agenttrace/agenttrace/internal/prefactorapi"
)

func TestMigrations(t *testing.T) {
	dsn := pgtest.NewSchema(t)
	// Several processes opening a new database at once: one migrates, the
	// others find it done.
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := pgstore.Open(context.Background(), dsn)
			if err == nil {
				err = s.Close()
			}
			errs[i] = err
		}()
	}
	wg.Wait()
	for _, err := range errs {
		require.NoError(t, err)
	}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	require.NoError(t, err)
	defer conn.Close(ctx)
	var v, rows int
	require.NoError(t, conn.QueryRow(ctx, "SELECT max(version), count(*) FROM agenttrace_schema").Scan(&v, &rows))
	assert.Equal(t, pgstore.SchemaVersion, v)
	assert.Equal(t, 1, rows)

	// Data survives reopening.
	s := open(t, dsn)
	in := prefactorapi.InstanceRecord{ID: prefactorapi.NewPFID(7), AgentID: "a", Status: "active", Purpose: "live",
		InsertedAt: time.Date(2026, 1, 2, 3, 4, 5, 678901000, time.UTC)}
	require.NoError(t, s.Update(ctx, func(tx prefactorapi.Tx) error { return tx.PutInstance(in) }))
	require.NoError(t, s.Close())
	s = open(t, dsn)
	require.NoError(t, s.View(ctx, func(tx prefactorapi.ReadTx) error {
		got, ok, err := tx.Instance(in.ID)
		assert.True(t, ok)
		assert.Equal(t, in, got)
		return err
	}))
	require.NoError(t, s.Close())

	// A database of a newer schema is refused, and left as it is.
	_, err = conn.Exec(ctx, "UPDATE agenttrace_schema SET version = $1", pgstore.SchemaVersion+1)
	require.NoError(t, err)
	_, err = pgstore.Open(ctx, dsn)
	require.ErrorIs(t, err, pgstore.ErrNewerSchema)
	require.NoError(t, conn.QueryRow(ctx, "SELECT version FROM agenttrace_schema").Scan(&v))
	assert.Equal(t, pgstore.SchemaVersion+1, v)
}

func TestOpenErrorsKeepThePassword(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	port, err := pgtest.FreePort() // nothing listens there
	require.NoError(t, err)
	for _, dsn := range []string{
		fmt.Sprintf("postgres://agent:s3cret-pw@127.0.0.1:%d/db?sslmode=disable&connect_timeout=5", port),
		fmt.Sprintf("host=127.0.0.1 port=%d user=agent password=s3cret-pw dbname=db sslmode=disable connect_timeout=5", port),
		"postgres://agent:s3cret-pw@127.0.0.1:notaport/db",
	} {
		_, err := pgstore.Open(ctx, dsn)
		require.Error(t, err)
		assert.NotContains(t, err.Error(), "s3cret-pw")
	}
}

// childEnv names the environment variables of an ingesting child process.
const (
	childDSN      = "AGENTTRACE_PGSTORE_CHILD_DSN"
	childAccount  = "AGENTTRACE_PGSTORE_CHILD_ACCOUNT"
	childInstance = "AGENTTRACE_PGSTORE_CHILD_INSTANCE"
	childName     = "AGENTTRACE_PGSTORE_CHILD_NAME"
	childSpans    = 150
)

// TestChildIngest is the ingesting child process of
// TestSeveralProcesses; it does nothing in a normal run.
func TestChildIngest(t *testing.T) {
	dsn := os.Getenv(childDSN)
	if dsn == "" {
		t.Skip("run by TestSeveralProcesses only")
	}
	s := open(t, dsn)
	defer s.Close()
	api, err := prefactorapi.New(s, prefactorapi.Config{AccountID: os.Getenv(childAccount), EnvironmentID: os.Getenv(childAccount)})
	require.NoError(t, err)
	inst, name := os.Getenv(childInstance), os.Getenv(childName)
	for i := range childSpans {
		body := fmt.Sprintf(`{"details":{"agent_instance_id":%q,"schema_name":"llm","status":"complete","payload":{"n":%d},
			"result_payload":{"token_usage":{"prompt_tokens":2,"completion_tokens":1}}},"idempotency_key":"%s-%d"}`, inst, i, name, i)
		ans := api.Do(context.Background(), prefactorapi.EndpointCreateSpan, "", []byte(body), nil)
		require.Equal(t, 200, ans.Status, string(ans.Body))
	}
}

// TestSeveralProcesses: processes ingesting spans into one instance of one
// database at once lose nothing, and the instance's rollups add up.
func TestSeveralProcesses(t *testing.T) {
	if os.Getenv(childDSN) != "" {
		t.Skip("in a child")
	}
	dsn := pgtest.NewSchema(t)
	s := open(t, dsn)
	defer s.Close()
	account := prefactorapi.NewPFID(424242)
	api, err := prefactorapi.New(s, prefactorapi.Config{AccountID: account, EnvironmentID: account})
	require.NoError(t, err)
	ctx := context.Background()
	reg := api.Do(ctx, prefactorapi.EndpointRegister, "", []byte(`{"agent_version":{"external_identifier":"v1","name":"bot"},"idempotency_key":"reg-00001"}`), nil)
	require.Equal(t, 200, reg.Status, string(reg.Body))
	var r struct {
		Details struct{ ID string } `json:"details"`
	}
	require.NoError(t, json.Unmarshal(reg.Body, &r))
	inst := r.Details.ID
	require.Equal(t, 200, api.Do(ctx, prefactorapi.EndpointStart, inst, []byte(`{"idempotency_key":"start-0001"}`), nil).Status)

	const procs = 3
	var wg sync.WaitGroup
	outs := make([]string, procs)
	errs := make([]error, procs)
	for p := range procs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cmd := exec.Command(os.Args[0], "-test.run=^TestChildIngest$", "-test.count=1")
			cmd.Env = append(os.Environ(), childDSN+"="+dsn, childAccount+"="+account, childInstance+"="+inst,
				childName+"=proc"+strconv.Itoa(p))
			out, err := cmd.CombinedOutput()
			outs[p], errs[p] = string(out), err
		}()
	}
	wg.Wait()
	for p := range procs {
		require.NoError(t, errs[p], outs[p])
		require.True(t, strings.Contains(outs[p], "PASS"), outs[p])
	}
	require.NoError(t, s.View(ctx, func(tx prefactorapi.ReadTx) error {
		in, ok, err := tx.Instance(inst)
		require.NoError(t, err)
		require.True(t, ok)
		assert.Equal(t, int64(procs*childSpans), in.SpanCounts.Complete)
		assert.Equal(t, int64(procs*childSpans*2), in.Run.PromptTokens)
		assert.Equal(t, int64(procs*childSpans), in.Run.CompletionTokens)
		spans, err := tx.ListSpans(inst)
		assert.Len(t, spans, procs*childSpans)
		for _, sp := range spans {
			assert.Equal(t, 1, sp.Creates)
		}
		return err
	}))
}

// TestUpdateRollsBackOnCancel: a cancelled context fails the update and
// keeps nothing of it.
func TestUpdateRollsBackOnCancel(t *testing.T) {
	s := open(t, pgtest.NewSchema(t))
	defer s.Close()
	ctx, cancel := context.WithCancel(context.Background())
	in := prefactorapi.InstanceRecord{ID: prefactorapi.NewPFID(7), Status: "active"}
	err := s.Update(ctx, func(tx prefactorapi.Tx) error {
		if err := tx.PutSpan(prefactorapi.SpanRecord{ID: prefactorapi.NewPFID(7), InstanceID: in.ID, Status: "active"}); err != nil {
			return err
		}
		cancel()
		return tx.PutInstance(in)
	})
	require.Error(t, err)
	require.True(t, errors.Is(err, context.Canceled), err)
	require.NoError(t, s.View(context.Background(), func(tx prefactorapi.ReadTx) error {
		spans, err := tx.ListSpans("")
		assert.Empty(t, spans)
		_, ok, err2 := tx.Instance(in.ID)
		assert.False(t, ok)
		return errors.Join(err, err2)
	}))
}

func TestRetain(t *testing.T) {
	dsn := pgtest.NewSchema(t)
	s := open(t, dsn)
	defer s.Close()
	ctx := context.Background()
	now := time.Now().UTC()
	old := prefactorapi.InstanceRecord{ID: prefactorapi.NewPFID(7), Status: "complete", FinishedAt: now.Add(-3 * time.Hour)}
	fresh := prefactorapi.InstanceRecord{ID: prefactorapi.NewPFID(7), Status: "complete", FinishedAt: now.Add(-time.Minute)}
	running := prefactorapi.InstanceRecord{ID: prefactorapi.NewPFID(7), Status: "active", StartedAt: now.Add(-5 * time.Hour)}
	require.NoError(t, s.Update(ctx, func(tx prefactorapi.Tx) error {
		return errors.Join(tx.PutInstance(old), tx.PutInstance(fresh), tx.PutInstance(running),
			tx.PutSpan(prefactorapi.SpanRecord{ID: prefactorapi.NewPFID(7), InstanceID: old.ID, Status: "complete"}),
			tx.PutSpan(prefactorapi.SpanRecord{ID: prefactorapi.NewPFID(7), InstanceID: fresh.ID, Status: "complete"}),
			tx.PutIdempotency(prefactorapi.IdempotencyRecord{Key: "fresh-key", Hash: "h", Status: 200, Body: []byte("{}")}))
	}))
	conn, err := pgx.Connect(ctx, dsn)
	require.NoError(t, err)
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, `INSERT INTO idempotency (key, hash, status, body, inserted_at) VALUES ('old-key', 'h', 200, '\x7b7d', now() - interval '3 hours')`)
	require.NoError(t, err)

	_, err = s.Retain(ctx, time.Hour, 1<<20)
	require.ErrorIs(t, err, pgstore.ErrRetainSize)
	n, err := s.Retain(ctx, time.Hour, 0)
	require.NoError(t, err)
	assert.Equal(t, 1, n)
	require.NoError(t, s.View(ctx, func(tx prefactorapi.ReadTx) error {
		_, ok, _ := tx.Instance(old.ID)
		assert.False(t, ok, "finished before the cut")
		for _, id := range []string{fresh.ID, running.ID} {
			_, ok, _ := tx.Instance(id)
			assert.True(t, ok, "finished after the cut, or not finished")
		}
		spans, err := tx.ListSpans("")
		assert.Len(t, spans, 1)
		_, ok, _ = tx.Idempotency("old-key")
		assert.False(t, ok)
		_, ok, _ = tx.Idempotency("fresh-key")
		assert.True(t, ok)
		return err
	}))
}

// A database of the previous schema (no quality column) is migrated, its
// instances kept, and takes quality payloads.
func TestMigrateFromPreviousSchema(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.NewSchema(t)
	s := open(t, dsn)
	in := prefactorapi.InstanceRecord{ID: prefactorapi.NewPFID(7), AgentID: "a", Status: "pending", Purpose: "live",
		InsertedAt: time.Date(2026, 1, 2, 3, 4, 5, 678901000, time.UTC)}
	require.NoError(t, s.Update(ctx, func(tx prefactorapi.Tx) error { return tx.PutInstance(in) }))
	require.NoError(t, s.Close())
	conn, err := pgx.Connect(ctx, dsn)
	require.NoError(t, err)
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, "ALTER TABLE instances DROP COLUMN quality; ALTER TABLE agent_versions DROP COLUMN schema_version_id")
	require.NoError(t, err)
	_, err = conn.Exec(ctx, "UPDATE agenttrace_schema SET version = $1", pgstore.SchemaVersion-1)
	require.NoError(t, err)

	s = open(t, dsn)
	defer s.Close()
	var v int
	require.NoError(t, conn.QueryRow(ctx, "SELECT version FROM agenttrace_schema").Scan(&v))
	assert.Equal(t, pgstore.SchemaVersion, v)
	api, err := prefactorapi.New(s, prefactorapi.Config{AccountID: prefactorapi.NewPFID(7), EnvironmentID: prefactorapi.NewPFID(7)})
	require.NoError(t, err)
	ans := api.Do(ctx, prefactorapi.EndpointRecordQuality, in.ID, []byte(`{"name":"q","payload":{"x":1}}`), nil)
	require.Equal(t, 200, ans.Status, string(ans.Body))
	require.NoError(t, s.View(ctx, func(tx prefactorapi.ReadTx) error {
		got, ok, err := tx.Instance(in.ID)
		assert.True(t, ok)
		assert.Equal(t, in.InsertedAt, got.InsertedAt)
		assert.Equal(t, `{"x":1}`, string(got.Quality["q"].Payload))
		return err
	}))
}

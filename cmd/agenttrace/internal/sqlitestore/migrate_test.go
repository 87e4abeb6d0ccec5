package sqlitestore_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/agenttrace/agenttrace/cmd/agenttrace/internal/sqlitestore"
	"github.com/agenttrace/agenttrace/internal/prefactorapi"
)

func userVersion(t *testing.T, path string) int {
	db, err := sql.Open("sqlite", "file:"+path)
	require.NoError(t, err)
	defer db.Close()
	var v int
	require.NoError(t, db.QueryRow("PRAGMA user_version").Scan(&v))
	return v
}

// A database of the previous schema is migrated, its data kept.
func TestMigrateFromPreviousSchema(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "old.db")
	old, err := sqlitestore.OpenVersion(ctx, path, sqlitestore.SchemaVersion-1)
	require.NoError(t, err)
	require.NoError(t, old.Close())
	require.Equal(t, sqlitestore.SchemaVersion-1, userVersion(t, path))
	// An instance and an idempotency record as the previous program wrote
	// them (its columns: no quality).
	instID := prefactorapi.NewPFID(1)
	raw, err := sql.Open("sqlite", "file:"+path)
	require.NoError(t, err)
	_, err = raw.Exec(`INSERT INTO instances(id, agent_id, environment_id, version_id, schema_version_id, deployment_id,
		purpose, status, termination_reason, inserted_at, updated_at, start_key, register, spans_pending, spans_active,
		spans_complete, spans_failed, spans_cancelled, name, user_id, group_id, channel, session_id, ip_address,
		user_agent, version_number, prompt_tokens, completion_tokens, total_tokens, cost_prompt, cost_completion,
		cost_services, cost_total, currency, ttft_ms)
		VALUES (?, 'a', 'e', 'v', '', 'd', 'live', 'pending', '', 1, 1, 1, '{}', 0, 0, 0, 0, 0, 'run', '', '', '', '', '', '', 1,
		0, 0, 0, 0, 0, 0, 0, '', 0)`, instID)
	require.NoError(t, err)
	_, err = raw.Exec(`INSERT INTO idempotency(key, hash, status, body, inserted_at) VALUES ('k1', 'h', 200, '{}', 1)`)
	require.NoError(t, err)
	require.NoError(t, raw.Close())

	s := open(t, path)
	defer s.Close()
	require.Equal(t, sqlitestore.SchemaVersion, userVersion(t, path))
	require.NoError(t, s.View(ctx, func(tx prefactorapi.ReadTx) error {
		ins, total, err := tx.ListInstances(prefactorapi.InstanceQuery{})
		require.Equal(t, 1, total)
		require.Equal(t, "pending", ins[0].Status)
		r, ok, _ := tx.Idempotency("k1")
		require.True(t, ok)
		require.Equal(t, 200, r.Status)
		return err
	}))
	db, err := sql.Open("sqlite", "file:"+path)
	require.NoError(t, err)
	defer db.Close()
	var n int
	require.NoError(t, db.QueryRow("SELECT count(*) FROM sqlite_master WHERE type='index' AND name='instances_session'").Scan(&n))
	require.Equal(t, 1, n, "migration 2 ran")
	for _, idx := range []string{"instances_user", "instances_group"} {
		require.NoError(t, db.QueryRow("SELECT count(*) FROM pragma_index_info(?) WHERE name = 'version_id'", idx).Scan(&n))
		require.Equal(t, 1, n, "migration 4 ran: %s holds the version", idx)
	}
	require.NoError(t, db.QueryRow("SELECT count(*) FROM pragma_table_info('agent_versions') WHERE name = 'schema_version_id'").Scan(&n))
	require.Equal(t, 1, n, "migration 5 ran: agent versions name their schema version")
	// Migration 5: the migrated instance takes quality payloads.
	api, err := prefactorapi.New(s, prefactorapi.Config{AccountID: prefactorapi.NewPFID(1), EnvironmentID: prefactorapi.NewPFID(1)})
	require.NoError(t, err)
	ans := api.Do(ctx, prefactorapi.EndpointRecordQuality, instID, []byte(`{"name":"q","payload":{"x":1},"idempotency_key":"k2"}`), nil)
	require.Equal(t, 200, ans.Status, string(ans.Body))
	require.NoError(t, s.View(ctx, func(tx prefactorapi.ReadTx) error {
		in, _, err := tx.Instance(instID)
		require.Equal(t, `{"x":1}`, string(in.Quality["q"].Payload))
		return err
	}))
	// Opening again changes nothing.
	require.NoError(t, s.Close())
	s2 := open(t, path)
	require.NoError(t, s2.Close())
	require.Equal(t, sqlitestore.SchemaVersion, userVersion(t, path))
}

// A database written by a newer program is refused, untouched.
func TestRefuseNewerSchema(t *testing.T) {
	path := filepath.Join(t.TempDir(), "new.db")
	s := open(t, path)
	require.NoError(t, s.Close())
	db, err := sql.Open("sqlite", "file:"+path)
	require.NoError(t, err)
	_, err = db.Exec("PRAGMA user_version = 99")
	require.NoError(t, err)
	require.NoError(t, db.Close())
	_, err = sqlitestore.Open(context.Background(), path, sqlitestore.Options{})
	require.ErrorIs(t, err, sqlitestore.ErrNewerSchema)
	require.Equal(t, 99, userVersion(t, path))
}

func TestRetain(t *testing.T) {
	ctx := context.Background()
	s := open(t, filepath.Join(t.TempDir(), "r.db"))
	defer s.Close()
	api, err := prefactorapi.New(s, prefactorapi.Config{AccountID: prefactorapi.NewPFID(1), EnvironmentID: prefactorapi.NewPFID(1)})
	require.NoError(t, err)
	var ids []string
	for i := range 30 {
		ans := api.Do(ctx, prefactorapi.EndpointRegister, "", []byte(`{"idempotency_key":"reg-`+string(rune('a'+i))+`"}`), nil)
		require.Equal(t, 200, ans.Status)
		var r struct{ Details struct{ ID string } }
		require.NoError(t, jsonUnmarshal(ans.Body, &r))
		ids = append(ids, r.Details.ID)
		big := `{"details":{"agent_instance_id":"` + r.Details.ID + `","schema_name":"llm","status":"active","payload":{"x":"` + string(make([]byte, 0)) + pad(20000) + `"}},"idempotency_key":"span-` + r.Details.ID + `"}`
		require.Equal(t, 200, api.Do(ctx, prefactorapi.EndpointCreateSpan, "", []byte(big), nil).Status)
	}
	used, err := s.UsedBytes(ctx)
	require.NoError(t, err)
	n, err := s.Retain(ctx, 0, used/2)
	require.NoError(t, err)
	require.Greater(t, n, 0)
	after, err := s.UsedBytes(ctx)
	require.NoError(t, err)
	require.LessOrEqual(t, after, used/2)
	require.NoError(t, s.View(ctx, func(tx prefactorapi.ReadTx) error {
		_, ok, _ := tx.Instance(ids[0])
		require.False(t, ok, "the oldest went first")
		_, ok, _ = tx.Instance(ids[29])
		require.True(t, ok, "the newest stays")
		spans, err := tx.ListSpans(ids[0])
		require.Empty(t, spans, "with its spans")
		return err
	}))
	// By age: nothing finished, nothing deleted.
	n, err = s.Retain(ctx, 1, 0)
	require.NoError(t, err)
	require.Zero(t, n)
}

// Package pgstore is the PostgreSQL prefactorapi.Store, for teams that run
// several servers on one database (agenttrace serve --db postgres://...).
//
// It keeps the same records as the SQLite store in tables of the schema
// the connection's search_path names first (set search_path in the DSN to
// give agenttrace a schema of its own), brought up to date by versioned
// migrations when a store opens; a database of a newer schema is refused
// (ErrNewerSchema). Several processes may open one database at once:
// migrations run under an advisory lock.
//
// Updates are serializable across every process sharing the database: each
// runs in a transaction that first takes a transaction-scoped advisory lock
// of its schema, so writers take turns, as SQLite's do, and an Update
// returns only once its transaction committed (durably, with the server's
// default synchronous_commit). Views run in read-only REPEATABLE READ
// transactions, one consistent snapshot each, beside the writers.
//
// Name search (InstanceQuery.Search) matches, for every word of the query,
// a word of the name starting with it (prefactorapi.SearchWords; case
// folding is the database's: ASCII under the C locale); when the pg_trgm extension can be had (it is a trusted extension
// of PostgreSQL's contrib modules, which Debian's postgresql package ships)
// a trigram index serves it, otherwise it scans the agent's instances.
package pgstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/agenttrace/agenttrace/internal/prefactorapi"
)

// SchemaVersion is the schema version this package writes.
var SchemaVersion = len(migrations)

// ErrNewerSchema is returned by Open for a database written by a newer
// version of the program.
var ErrNewerSchema = errors.New("pgstore: the database has a newer schema than this program knows")

// lockClass is the first key of the advisory locks; the second is a hash
// of the schema the store's tables are in.
const lockClass = 0x61677472 // "agtr"

// Store is the PostgreSQL store. It is safe for concurrent use.
type Store struct {
	pool   *pgxpool.Pool
	schema string
	lockID int32
	trgm   bool
}

var _ prefactorapi.Store = (*Store)(nil)

// Open connects to the database of dsn (a postgres:// URL or a key=value
// string, as libpq reads them), creates or migrates the schema, and returns
// the store. The DSN's password never appears in errors.
func Open(ctx context.Context, dsn string) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, errors.New("pgstore: the DSN cannot be parsed") // its text may hold a password
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("pgstore: %w", err)
	}
	s := &Store{pool: pool}
	if err := s.migrate(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	return s, nil
}

// Schema returns the PostgreSQL schema the store's tables are in.
func (s *Store) Schema() string { return s.schema }

// Close implements prefactorapi.Store: it closes the connections.
func (s *Store) Close() error {
	s.pool.Close()
	return nil
}

// migrate applies the missing migrations in one transaction under the
// migration lock, and sets up the trigram index when it can.
func (s *Store) migrate(ctx context.Context) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if err := tx.QueryRow(ctx, "SELECT current_schema(), hashtext(current_schema())").Scan(&s.schema, &s.lockID); err != nil {
			return fmt.Errorf("pgstore: connect: %w", err)
		}
		if s.schema == "" {
			return errors.New("pgstore: the search_path names no schema that exists")
		}
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1, $2)", lockClass+1, s.lockID); err != nil {
			return fmt.Errorf("pgstore: lock for migration: %w", err)
		}
		if _, err := tx.Exec(ctx, "CREATE TABLE IF NOT EXISTS agenttrace_schema (version integer NOT NULL)"); err != nil {
			return fmt.Errorf("pgstore: create the schema table: %w", err)
		}
		var v int
		err := tx.QueryRow(ctx, "SELECT version FROM agenttrace_schema").Scan(&v)
		if errors.Is(err, pgx.ErrNoRows) {
			_, err = tx.Exec(ctx, "INSERT INTO agenttrace_schema (version) VALUES (0)")
		}
		if err != nil {
			return fmt.Errorf("pgstore: read the schema version: %w", err)
		}
		if v > len(migrations) {
			return fmt.Errorf("%w (database %d, program %d)", ErrNewerSchema, v, len(migrations))
		}
		for ; v < len(migrations); v++ {
			if _, err := tx.Exec(ctx, migrations[v]); err != nil {
				return fmt.Errorf("pgstore: migrate to schema %d: %w", v+1, err)
			}
			if _, err := tx.Exec(ctx, "UPDATE agenttrace_schema SET version = $1", v+1); err != nil {
				return fmt.Errorf("pgstore: record schema %d: %w", v+1, err)
			}
		}
		s.trgm = trigramIndex(ctx, tx)
		return nil
	})
	return err
}

// trigramIndex creates the trigram index of instance names, if the
// pg_trgm extension is there or may be created, in a savepoint whose
// failure leaves the migration alone. It reports whether the index exists.
func trigramIndex(ctx context.Context, tx pgx.Tx) bool {
	sp, err := tx.Begin(ctx)
	if err != nil {
		return false
	}
	_, err = sp.Exec(ctx, "CREATE EXTENSION IF NOT EXISTS pg_trgm")
	var nsp string
	if err == nil {
		err = sp.QueryRow(ctx, `SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
			WHERE e.extname = 'pg_trgm'`).Scan(&nsp)
	}
	if err == nil {
		_, err = sp.Exec(ctx, "CREATE INDEX IF NOT EXISTS instances_name_trgm ON instances USING gin (name "+
			pgx.Identifier{nsp, "gin_trgm_ops"}.Sanitize()+")")
	}
	if err != nil {
		_ = sp.Rollback(ctx)
		return false
	}
	return sp.Commit(ctx) == nil
}

// Trigram reports whether name search is served by a trigram index.
func (s *Store) Trigram() bool { return s.trgm }

// conflict maps PostgreSQL's serialization failures to
// prefactorapi.ErrConflict.
func conflict(err error) error {
	var pe *pgconn.PgError
	if errors.As(err, &pe) && (pe.Code == "40001" || pe.Code == "40P01") {
		return fmt.Errorf("%w: %w", prefactorapi.ErrConflict, err)
	}
	return err
}

// Update implements prefactorapi.Store.
func (s *Store) Update(ctx context.Context, fn func(prefactorapi.Tx) error) error {
	tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.ReadCommitted})
	if err != nil {
		return fmt.Errorf("pgstore: begin: %w", conflict(err))
	}
	rollback := func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }
	// Writers take turns: once the lock is held, every earlier writer has
	// committed, and each statement (READ COMMITTED) sees its writes.
	if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1, $2)", lockClass, s.lockID); err != nil {
		rollback()
		return fmt.Errorf("pgstore: lock: %w", conflict(err))
	}
	t := &pgTx{ctx: ctx, q: tx, write: true}
	if err := fn(t); err != nil {
		rollback()
		return err
	}
	if err := t.flush(); err != nil {
		rollback()
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("pgstore: commit: %w", conflict(err))
	}
	return nil
}

// View implements prefactorapi.Store.
func (s *Store) View(ctx context.Context, fn func(prefactorapi.ReadTx) error) error {
	tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return fmt.Errorf("pgstore: begin: %w", err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	return fn(&pgTx{ctx: ctx, q: tx})
}

// pgTx is a transaction. A read-write one saves round trips: it caches
// the instances it reads and writes them once, at its end (or before a
// listing), since a bulk request updates its instance many times; it
// queues its other writes and sends them ahead of its next query, in the
// same round trip, keeping the spans and idempotency records it wrote (and
// the schema versions it read, which never change) to answer lookups of
// them without one.
type pgTx struct {
	ctx     context.Context
	q       pgx.Tx
	write   bool
	inst    map[string]*cachedInstance
	order   []string
	pending *pgx.Batch
	spans   map[string]prefactorapi.SpanRecord
	idem    map[string]prefactorapi.IdempotencyRecord
	schemas map[string]prefactorapi.SchemaVersionRecord
}

type cachedInstance struct {
	rec   prefactorapi.InstanceRecord
	ok    bool
	dirty bool
}

// exec queues a write, sent ahead of the next query or at commit; its
// error, if any, fails that query or the commit, and so the transaction.
func (t *pgTx) exec(query string, args ...any) error {
	if t.pending == nil {
		t.pending = &pgx.Batch{}
	}
	t.pending.Queue(query, args...)
	return nil
}

// send sends the queued writes.
func (t *pgTx) send() error {
	if t.pending == nil || t.pending.Len() == 0 {
		return nil
	}
	b := t.pending
	t.pending = nil
	if err := t.q.SendBatch(t.ctx, b).Close(); err != nil {
		return fmt.Errorf("pgstore: %w", conflict(err))
	}
	return nil
}

// queryRow runs a one-row query after the queued writes, in one round
// trip, and scans its row with scan (which sees pgx.ErrNoRows for none).
func (t *pgTx) queryRow(scan func(pgx.Row) error, query string, args ...any) error {
	if t.pending == nil || t.pending.Len() == 0 {
		return scan(t.q.QueryRow(t.ctx, query, args...))
	}
	b := t.pending
	t.pending = nil
	var scanErr error
	b.Queue(query, args...).QueryRow(func(row pgx.Row) error {
		scanErr = scan(row)
		return nil
	})
	if err := t.q.SendBatch(t.ctx, b).Close(); err != nil {
		return conflict(err) // the caller wraps it
	}
	return scanErr
}

// tstamp is a time as stored: microseconds, NULL for the zero time.
func tstamp(tm time.Time) any {
	if tm.IsZero() {
		return nil
	}
	return tm.Truncate(time.Microsecond)
}

func fromTstamp(v pgtype.Timestamptz) time.Time {
	if !v.Valid {
		return time.Time{}
	}
	return v.Time.UTC()
}

func blob(b []byte) any {
	if b == nil {
		return nil
	}
	return []byte(b)
}

func nilIfEmpty(b []byte) json.RawMessage {
	if len(b) == 0 {
		return nil
	}
	return json.RawMessage(b)
}

// found turns a lookup's error into (found, error).
func found(err error) (bool, error) {
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("pgstore: %w", conflict(err))
	}
	return true, nil
}

// Idempotency implements prefactorapi.ReadTx.
func (t *pgTx) Idempotency(key string) (prefactorapi.IdempotencyRecord, bool, error) {
	if r, ok := t.idem[key]; ok {
		return r, true, nil
	}
	r := prefactorapi.IdempotencyRecord{Key: key}
	err := t.queryRow(func(row pgx.Row) error { return row.Scan(&r.Hash, &r.Status, &r.Body) },
		"SELECT hash, status, body FROM idempotency WHERE key = $1", key)
	ok, err := found(err)
	if !ok {
		return prefactorapi.IdempotencyRecord{}, false, err
	}
	return r, true, nil
}

// Idempotencies implements prefactorapi.ReadTx: one query for all the keys.
func (t *pgTx) Idempotencies(keys []string) (map[string]prefactorapi.IdempotencyRecord, error) {
	out := make(map[string]prefactorapi.IdempotencyRecord, len(keys))
	var ask []string
	for _, k := range keys {
		if r, ok := t.idem[k]; ok {
			out[k] = r
		} else {
			ask = append(ask, k)
		}
	}
	if len(ask) == 0 {
		return out, nil
	}
	recs, err := collect(t, "SELECT key, hash, status, body FROM idempotency WHERE key = ANY($1)", []any{ask},
		func(row pgx.Row) (r prefactorapi.IdempotencyRecord, err error) {
			err = row.Scan(&r.Key, &r.Hash, &r.Status, &r.Body)
			return r, err
		})
	if err != nil {
		return nil, err
	}
	for _, r := range recs {
		out[r.Key] = r
	}
	return out, nil
}

// PutIdempotency implements prefactorapi.Tx.
func (t *pgTx) PutIdempotency(r prefactorapi.IdempotencyRecord) error {
	body := r.Body
	if body == nil {
		body = []byte{}
	}
	if t.idem == nil {
		t.idem = map[string]prefactorapi.IdempotencyRecord{}
	}
	t.idem[r.Key] = r
	return t.exec(`INSERT INTO idempotency (key, hash, status, body) VALUES ($1, $2, $3, $4)
		ON CONFLICT (key) DO UPDATE SET hash = excluded.hash, status = excluded.status, body = excluded.body,
		inserted_at = excluded.inserted_at`, r.Key, r.Hash, r.Status, body)
}

const instanceCols = `id, agent_id, environment_id, version_id, schema_version_id, deployment_id, purpose, status,
	termination_reason, started_at, finished_at, inserted_at, updated_at, register, spans_pending, spans_active,
	spans_complete, spans_failed, spans_cancelled, spans_terminated, name, user_id, group_id, channel, session_id,
	ip_address, user_agent, version_number, prompt_tokens, completion_tokens, total_tokens, cost_prompt,
	cost_completion, cost_services, cost_total, currency, ttft_ms, ttft_from, quality`

func scanInstance(row pgx.Row) (prefactorapi.InstanceRecord, error) {
	var r prefactorapi.InstanceRecord
	var started, finished, inserted, updated, ttftFrom pgtype.Timestamptz
	var register, quality []byte
	c, run := &r.SpanCounts, &r.Run
	err := row.Scan(&r.ID, &r.AgentID, &r.EnvironmentID, &r.VersionID, &r.SchemaVersionID, &r.DeploymentID, &r.Purpose,
		&r.Status, &r.TerminationReason, &started, &finished, &inserted, &updated, &register, &c.Pending, &c.Active,
		&c.Complete, &c.Failed, &c.Cancelled, &c.Terminated, &run.Name, &run.UserID, &run.GroupID, &run.Channel,
		&run.SessionID, &run.IPAddress, &run.UserAgent, &run.VersionNumber, &run.PromptTokens, &run.CompletionTokens,
		&run.TotalTokens, &run.CostPrompt, &run.CostCompletion, &run.CostServices, &run.CostTotal, &run.Currency,
		&run.TTFTMillis, &ttftFrom, &quality)
	if err == nil && len(quality) > 0 {
		if err = json.Unmarshal(quality, &r.Quality); err != nil {
			err = fmt.Errorf("pgstore: quality of instance %s: %w", r.ID, err)
		}
	}
	r.StartedAt, r.FinishedAt = fromTstamp(started), fromTstamp(finished)
	r.InsertedAt, r.UpdatedAt = fromTstamp(inserted), fromTstamp(updated)
	run.TTFTFrom = fromTstamp(ttftFrom)
	r.Register = nilIfEmpty(register)
	return r, err
}

// Instance implements prefactorapi.ReadTx.
func (t *pgTx) Instance(id string) (prefactorapi.InstanceRecord, bool, error) {
	if c, ok := t.inst[id]; ok {
		return c.rec, c.ok, nil
	}
	var r prefactorapi.InstanceRecord
	err := t.queryRow(func(row pgx.Row) (err error) { r, err = scanInstance(row); return err },
		"SELECT "+instanceCols+" FROM instances WHERE id = $1", id)
	ok, err := found(err)
	if err != nil {
		return prefactorapi.InstanceRecord{}, false, err
	}
	if t.write {
		t.cache(id, r, ok, false)
	}
	return r, ok, nil
}

func (t *pgTx) cache(id string, r prefactorapi.InstanceRecord, ok, dirty bool) {
	if t.inst == nil {
		t.inst = map[string]*cachedInstance{}
	}
	c, had := t.inst[id]
	if !had {
		c = &cachedInstance{}
		t.inst[id] = c
	}
	if dirty && !c.dirty {
		t.order = append(t.order, id)
	}
	c.rec, c.ok, c.dirty = r, ok, c.dirty || dirty
}

// PutInstance implements prefactorapi.Tx.
func (t *pgTx) PutInstance(r prefactorapi.InstanceRecord) error {
	t.cache(r.ID, r, true, true)
	return nil
}

// flush writes the instances changed in the transaction, in the order they
// were first changed (registration order for new ones), in one round trip.
func (t *pgTx) flush() error {
	for _, id := range t.order {
		c := t.inst[id]
		if t.pending == nil {
			t.pending = &pgx.Batch{}
		}
		queueInstance(t.pending, &c.rec)
		c.dirty = false
	}
	t.order = t.order[:0]
	return t.send()
}

// flushed makes listings see the transaction's own writes.
func (t *pgTx) flushed() error {
	if !t.write {
		return nil
	}
	return t.flush()
}

var instanceUpsert = func() string {
	cols := strings.Split(strings.Join(strings.Fields(instanceCols), ""), ",")
	cols = append(cols, "start_key")
	var ph, set []string
	for i, c := range cols {
		ph = append(ph, fmt.Sprintf("$%d", i+1))
		if c != "id" {
			set = append(set, c+" = excluded."+c)
		}
	}
	return "INSERT INTO instances (" + strings.Join(cols, ", ") + ") VALUES (" + strings.Join(ph, ", ") +
		") ON CONFLICT (id) DO UPDATE SET " + strings.Join(set, ", ")
}()

func queueInstance(b *pgx.Batch, r *prefactorapi.InstanceRecord) {
	c, run := &r.SpanCounts, &r.Run
	b.Queue(instanceUpsert,
		r.ID, r.AgentID, r.EnvironmentID, r.VersionID, r.SchemaVersionID, r.DeploymentID, r.Purpose, r.Status,
		r.TerminationReason, tstamp(r.StartedAt), tstamp(r.FinishedAt), tstamp(r.InsertedAt), tstamp(r.UpdatedAt),
		blob(r.Register), c.Pending, c.Active, c.Complete, c.Failed, c.Cancelled, c.Terminated, run.Name, run.UserID,
		run.GroupID, run.Channel, run.SessionID, run.IPAddress, run.UserAgent, run.VersionNumber, run.PromptTokens,
		run.CompletionTokens, run.TotalTokens, run.CostPrompt, run.CostCompletion, run.CostServices, run.CostTotal,
		run.Currency, run.TTFTMillis, tstamp(run.TTFTFrom), qualityBlob(r.Quality), tstamp(r.StartKey()))
}

const spanCols = `id, instance_id, agent_id, parent_id, schema_name, status, payload, result_payload, started_at,
	finished_at, inserted_at, updated_at, sensitive, creates, finishes`

func scanSpan(row pgx.Row) (prefactorapi.SpanRecord, error) {
	var r prefactorapi.SpanRecord
	var started, finished, inserted, updated pgtype.Timestamptz
	var payload, result []byte
	var sensitive pgtype.Bool
	err := row.Scan(&r.ID, &r.InstanceID, &r.AgentID, &r.ParentID, &r.SchemaName, &r.Status, &payload, &result, &started,
		&finished, &inserted, &updated, &sensitive, &r.Creates, &r.Finishes)
	r.StartedAt, r.FinishedAt = fromTstamp(started), fromTstamp(finished)
	r.InsertedAt, r.UpdatedAt = fromTstamp(inserted), fromTstamp(updated)
	r.Payload, r.ResultPayload = nilIfEmpty(payload), nilIfEmpty(result)
	if sensitive.Valid {
		b := sensitive.Bool
		r.SensitiveEncoding = &b
	}
	return r, err
}

// Span implements prefactorapi.ReadTx.
func (t *pgTx) Span(id string) (prefactorapi.SpanRecord, bool, error) {
	if r, ok := t.spans[id]; ok {
		return r, true, nil
	}
	var r prefactorapi.SpanRecord
	err := t.queryRow(func(row pgx.Row) (err error) { r, err = scanSpan(row); return err },
		"SELECT "+spanCols+" FROM spans WHERE id = $1", id)
	ok, err := found(err)
	if !ok {
		return prefactorapi.SpanRecord{}, false, err
	}
	return r, true, nil
}

// Spans implements prefactorapi.ReadTx: one query for all the IDs.
func (t *pgTx) Spans(ids []string) (map[string]prefactorapi.SpanRecord, error) {
	out := make(map[string]prefactorapi.SpanRecord, len(ids))
	var ask []string
	for _, id := range ids {
		if r, ok := t.spans[id]; ok {
			out[id] = r
		} else {
			ask = append(ask, id)
		}
	}
	if len(ask) == 0 {
		return out, nil
	}
	spans, err := collect(t, "SELECT "+spanCols+" FROM spans WHERE id = ANY($1)", []any{ask}, scanSpan)
	if err != nil {
		return nil, err
	}
	for _, r := range spans {
		out[r.ID] = r
	}
	return out, nil
}

// PutSpan implements prefactorapi.Tx; a replaced span keeps its place in
// creation order.
func (t *pgTx) PutSpan(r prefactorapi.SpanRecord) error {
	var sensitive any
	if r.SensitiveEncoding != nil {
		sensitive = *r.SensitiveEncoding
	}
	if t.spans == nil {
		t.spans = map[string]prefactorapi.SpanRecord{}
	}
	t.spans[r.ID] = r
	return t.exec(`INSERT INTO spans (`+spanCols+`) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15)
		ON CONFLICT (id) DO UPDATE SET instance_id = excluded.instance_id, agent_id = excluded.agent_id,
		parent_id = excluded.parent_id, schema_name = excluded.schema_name, status = excluded.status,
		payload = excluded.payload, result_payload = excluded.result_payload, started_at = excluded.started_at,
		finished_at = excluded.finished_at, inserted_at = excluded.inserted_at, updated_at = excluded.updated_at,
		sensitive = excluded.sensitive, creates = excluded.creates, finishes = excluded.finishes`,
		r.ID, r.InstanceID, r.AgentID, r.ParentID, r.SchemaName, r.Status, blob(r.Payload), blob(r.ResultPayload),
		tstamp(r.StartedAt), tstamp(r.FinishedAt), tstamp(r.InsertedAt), tstamp(r.UpdatedAt), sensitive, r.Creates, r.Finishes)
}

// ListSpans implements prefactorapi.ReadTx.
func (t *pgTx) ListSpans(instanceID string) ([]prefactorapi.SpanRecord, error) {
	q, args := "SELECT "+spanCols+" FROM spans ORDER BY seq", []any{}
	if instanceID != "" {
		q, args = "SELECT "+spanCols+" FROM spans WHERE instance_id = $1 ORDER BY seq", []any{instanceID}
	}
	return collect(t, q, args, scanSpan)
}

// collect runs a query and scans every row.
func collect[T any](t *pgTx, q string, args []any, scan func(pgx.Row) (T, error)) ([]T, error) {
	if err := t.flushed(); err != nil {
		return nil, err
	}
	rows, err := t.q.Query(t.ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("pgstore: %w", conflict(err))
	}
	defer rows.Close()
	out := []T{}
	for rows.Next() {
		r, err := scan(rows)
		if err != nil {
			return nil, fmt.Errorf("pgstore: %w", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("pgstore: %w", conflict(err))
	}
	return out, nil
}

const agentCols = `id, name, description, external_id, environment_id, status, current_version_id,
	current_schema_version_id, inserted_at, updated_at`

func scanAgent(row pgx.Row) (prefactorapi.AgentRecord, error) {
	var r prefactorapi.AgentRecord
	var inserted, updated pgtype.Timestamptz
	err := row.Scan(&r.ID, &r.Name, &r.Description, &r.ExternalID, &r.EnvironmentID, &r.Status, &r.CurrentVersionID,
		&r.CurrentSchemaVersion, &inserted, &updated)
	r.InsertedAt, r.UpdatedAt = fromTstamp(inserted), fromTstamp(updated)
	return r, err
}

func (t *pgTx) agent(where string, args ...any) (prefactorapi.AgentRecord, bool, error) {
	var r prefactorapi.AgentRecord
	err := t.queryRow(func(row pgx.Row) (err error) { r, err = scanAgent(row); return err },
		"SELECT "+agentCols+" FROM agents WHERE "+where+" ORDER BY seq LIMIT 1", args...)
	ok, err := found(err)
	if !ok {
		return prefactorapi.AgentRecord{}, false, err
	}
	return r, true, nil
}

// Agent implements prefactorapi.ReadTx.
func (t *pgTx) Agent(id string) (prefactorapi.AgentRecord, bool, error) {
	return t.agent("id = $1", id)
}

// AgentByExternalID implements prefactorapi.ReadTx: the first agent
// registered with that external identifier.
func (t *pgTx) AgentByExternalID(ext string) (prefactorapi.AgentRecord, bool, error) {
	return t.agent("external_id = $1", ext)
}

// PutAgent implements prefactorapi.Tx.
func (t *pgTx) PutAgent(r prefactorapi.AgentRecord) error {
	return t.exec(`INSERT INTO agents (`+agentCols+`) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10)
		ON CONFLICT (id) DO UPDATE SET name = excluded.name, description = excluded.description,
		external_id = excluded.external_id, environment_id = excluded.environment_id, status = excluded.status,
		current_version_id = excluded.current_version_id, current_schema_version_id = excluded.current_schema_version_id,
		inserted_at = excluded.inserted_at, updated_at = excluded.updated_at`,
		r.ID, r.Name, r.Description, r.ExternalID, r.EnvironmentID, r.Status, r.CurrentVersionID, r.CurrentSchemaVersion,
		tstamp(r.InsertedAt), tstamp(r.UpdatedAt))
}

// DeleteAgent implements prefactorapi.Tx.
func (t *pgTx) DeleteAgent(id string) error { return t.exec("DELETE FROM agents WHERE id = $1", id) }

// ListAgents implements prefactorapi.ReadTx.
func (t *pgTx) ListAgents() ([]prefactorapi.AgentRecord, error) {
	return collect(t, "SELECT "+agentCols+" FROM agents ORDER BY seq", nil, scanAgent)
}

const versionCols = "id, agent_id, external_id, name, description, number, inserted_at, schema_version_id"

func scanVersion(row pgx.Row) (prefactorapi.AgentVersionRecord, error) {
	var r prefactorapi.AgentVersionRecord
	var inserted pgtype.Timestamptz
	err := row.Scan(&r.ID, &r.AgentID, &r.ExternalID, &r.Name, &r.Description, &r.Number, &inserted, &r.SchemaVersionID)
	r.InsertedAt = fromTstamp(inserted)
	return r, err
}

func (t *pgTx) version(where string, args ...any) (prefactorapi.AgentVersionRecord, bool, error) {
	var r prefactorapi.AgentVersionRecord
	err := t.queryRow(func(row pgx.Row) (err error) { r, err = scanVersion(row); return err },
		"SELECT "+versionCols+" FROM agent_versions WHERE "+where+" ORDER BY seq LIMIT 1", args...)
	ok, err := found(err)
	if !ok {
		return prefactorapi.AgentVersionRecord{}, false, err
	}
	return r, true, nil
}

// AgentVersion implements prefactorapi.ReadTx.
func (t *pgTx) AgentVersion(id string) (prefactorapi.AgentVersionRecord, bool, error) {
	return t.version("id = $1", id)
}

// AgentVersionByExternalID implements prefactorapi.ReadTx.
func (t *pgTx) AgentVersionByExternalID(agentID, ext string) (prefactorapi.AgentVersionRecord, bool, error) {
	return t.version("agent_id = $1 AND external_id = $2", agentID, ext)
}

// AgentVersionByNumber implements prefactorapi.ReadTx.
func (t *pgTx) AgentVersionByNumber(agentID string, n int) (prefactorapi.AgentVersionRecord, bool, error) {
	return t.version("agent_id = $1 AND number = $2", agentID, n)
}

// CountAgentVersions implements prefactorapi.ReadTx.
func (t *pgTx) CountAgentVersions(agentID string) (int, error) {
	var n int
	if err := t.queryRow(func(row pgx.Row) error { return row.Scan(&n) },
		"SELECT count(*) FROM agent_versions WHERE agent_id = $1", agentID); err != nil {
		return 0, fmt.Errorf("pgstore: %w", conflict(err))
	}
	return n, nil
}

// PutAgentVersion implements prefactorapi.Tx.
func (t *pgTx) PutAgentVersion(r prefactorapi.AgentVersionRecord) error {
	return t.exec(`INSERT INTO agent_versions (`+versionCols+`) VALUES ($1,$2,$3,$4,$5,$6,$7,$8)
		ON CONFLICT (id) DO UPDATE SET agent_id = excluded.agent_id, external_id = excluded.external_id,
		name = excluded.name, description = excluded.description, number = excluded.number,
		inserted_at = excluded.inserted_at, schema_version_id = excluded.schema_version_id`,
		r.ID, r.AgentID, r.ExternalID, r.Name, r.Description, r.Number, tstamp(r.InsertedAt), r.SchemaVersionID)
}

func (t *pgTx) schemaVersion(where string, args ...any) (prefactorapi.SchemaVersionRecord, bool, error) {
	var r prefactorapi.SchemaVersionRecord
	var types string
	var body []byte
	var inserted pgtype.Timestamptz
	err := t.queryRow(func(row pgx.Row) error {
		return row.Scan(&r.ID, &r.AgentID, &r.ExternalID, &types, &body, &inserted)
	}, "SELECT id, agent_id, external_id, span_types, body, inserted_at FROM schema_versions WHERE "+
		where+" ORDER BY seq LIMIT 1", args...)
	ok, err := found(err)
	if !ok || err != nil {
		return prefactorapi.SchemaVersionRecord{}, ok, err
	}
	r.InsertedAt, r.Body = fromTstamp(inserted), nilIfEmpty(body)
	if err := json.Unmarshal([]byte(types), &r.SpanTypes); err != nil {
		return prefactorapi.SchemaVersionRecord{}, false, fmt.Errorf("pgstore: schema version %s: %w", r.ID, err)
	}
	return r, true, nil
}

// SchemaVersion implements prefactorapi.ReadTx.
func (t *pgTx) SchemaVersion(id string) (prefactorapi.SchemaVersionRecord, bool, error) {
	if r, ok := t.schemas[id]; ok {
		return r, true, nil
	}
	r, ok, err := t.schemaVersion("id = $1", id)
	if ok {
		t.keepSchema(r)
	}
	return r, ok, err
}

func (t *pgTx) keepSchema(r prefactorapi.SchemaVersionRecord) {
	if t.schemas == nil {
		t.schemas = map[string]prefactorapi.SchemaVersionRecord{}
	}
	t.schemas[r.ID] = r
}

// SchemaVersionByExternalID implements prefactorapi.ReadTx.
func (t *pgTx) SchemaVersionByExternalID(agentID, ext string) (prefactorapi.SchemaVersionRecord, bool, error) {
	return t.schemaVersion("agent_id = $1 AND external_id = $2", agentID, ext)
}

// PutSchemaVersion implements prefactorapi.Tx.
func (t *pgTx) PutSchemaVersion(r prefactorapi.SchemaVersionRecord) error {
	types := []byte("{}")
	if r.SpanTypes != nil {
		var err error
		if types, err = json.Marshal(r.SpanTypes); err != nil {
			return fmt.Errorf("pgstore: schema version %s: %w", r.ID, err)
		}
	}
	t.keepSchema(r)
	return t.exec(`INSERT INTO schema_versions (id, agent_id, external_id, span_types, body, inserted_at)
		VALUES ($1,$2,$3,$4,$5,$6) ON CONFLICT (id) DO UPDATE SET agent_id = excluded.agent_id,
		external_id = excluded.external_id, span_types = excluded.span_types, body = excluded.body,
		inserted_at = excluded.inserted_at`,
		r.ID, r.AgentID, r.ExternalID, string(types), blob(r.Body), tstamp(r.InsertedAt))
}

// Deployment implements prefactorapi.ReadTx.
func (t *pgTx) Deployment(agentID, envID string) (prefactorapi.DeploymentRecord, bool, error) {
	r := prefactorapi.DeploymentRecord{AgentID: agentID, EnvironmentID: envID}
	err := t.queryRow(func(row pgx.Row) error { return row.Scan(&r.ID) },
		"SELECT id FROM deployments WHERE agent_id = $1 AND environment_id = $2 ORDER BY seq LIMIT 1", agentID, envID)
	ok, err := found(err)
	return r, ok, err
}

// PutDeployment implements prefactorapi.Tx.
func (t *pgTx) PutDeployment(r prefactorapi.DeploymentRecord) error {
	return t.exec(`INSERT INTO deployments (id, agent_id, environment_id) VALUES ($1,$2,$3)
		ON CONFLICT (id) DO UPDATE SET agent_id = excluded.agent_id, environment_id = excluded.environment_id`,
		r.ID, r.AgentID, r.EnvironmentID)
}

// InstanceCounts implements prefactorapi.ReadTx.
func (t *pgTx) InstanceCounts(agentID string) (prefactorapi.StatusCounts, error) {
	var c prefactorapi.StatusCounts
	if err := t.flushed(); err != nil {
		return c, err
	}
	rows, err := t.q.Query(t.ctx, "SELECT status, count(*) FROM instances WHERE agent_id = $1 GROUP BY status", agentID)
	if err != nil {
		return c, fmt.Errorf("pgstore: %w", conflict(err))
	}
	defer rows.Close()
	for rows.Next() {
		var s string
		var n int64
		if err := rows.Scan(&s, &n); err != nil {
			return c, fmt.Errorf("pgstore: %w", err)
		}
		c.Add(s, n)
	}
	if err := rows.Err(); err != nil {
		return c, fmt.Errorf("pgstore: %w", conflict(err))
	}
	return c, nil
}

// likePattern matches s anywhere, as plain text.
func likePattern(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)
	return "%" + r.Replace(s) + "%"
}

// ListInstances implements prefactorapi.ReadTx.
func (t *pgTx) ListInstances(q prefactorapi.InstanceQuery) ([]prefactorapi.InstanceRecord, int, error) {
	if err := t.flushed(); err != nil {
		return nil, 0, err
	}
	var where []string
	var args []any
	add := func(cond string, v any) {
		args = append(args, v)
		where = append(where, fmt.Sprintf(cond, len(args)))
	}
	if q.AgentID != "" {
		add("agent_id = $%d", q.AgentID)
	}
	if q.VersionID != "" {
		add("version_id = $%d", q.VersionID)
	}
	if q.UserID != "" {
		add("user_id = $%d", q.UserID)
	}
	if q.GroupID != "" {
		add("group_id = $%d", q.GroupID)
	}
	if q.Search != "" {
		words := prefactorapi.SearchWords(q.Search)
		if len(words) == 0 {
			where = append(where, "false") // no word: nothing matches
		}
		for _, w := range words {
			// The substring test can use the trigram index; the regular
			// expression keeps only matches at the start of a name word.
			// Words are letters and digits only: nothing to escape.
			add(`name ILIKE $%d ESCAPE '\'`, likePattern(w))
			add(`name ~* $%d`, `(^|[^[:alnum:]])`+w)
		}
	}
	cond := ""
	if len(where) > 0 {
		cond = " WHERE " + strings.Join(where, " AND ")
	}
	var total int
	if err := t.queryRow(func(row pgx.Row) error { return row.Scan(&total) }, "SELECT count(*) FROM instances"+cond, args...); err != nil {
		return nil, 0, fmt.Errorf("pgstore: %w", conflict(err))
	}
	order := " ORDER BY seq"
	switch q.Order {
	case prefactorapi.ByStartDesc:
		order = " ORDER BY start_key DESC, id DESC"
	case prefactorapi.ByStartAsc:
		order = " ORDER BY start_key, id"
	}
	var limit any // NULL: no limit
	if q.Limit > 0 {
		limit = q.Limit
	}
	args = append(args, limit, max(q.Offset, 0))
	out, err := collect(t, fmt.Sprintf("SELECT %s FROM instances%s%s LIMIT $%d OFFSET $%d", instanceCols, cond, order,
		len(args)-1, len(args)), args, scanInstance)
	if err != nil {
		return nil, 0, err
	}
	return out, total, nil
}

// qualityBlob encodes an instance's quality payloads (NULL for none).
func qualityBlob(q map[string]prefactorapi.QualityRecord) []byte {
	if len(q) == 0 {
		return nil
	}
	b, _ := json.Marshal(q) // payloads are compact JSON, summaries strings
	return b
}

// ListAgentVersions implements prefactorapi.ReadTx.
func (t *pgTx) ListAgentVersions(agentID string) ([]prefactorapi.AgentVersionRecord, error) {
	return collect(t, "SELECT "+versionCols+" FROM agent_versions WHERE agent_id = $1 ORDER BY number, seq", []any{agentID}, scanVersion)
}

// ListSchemaVersions implements prefactorapi.ReadTx.
func (t *pgTx) ListSchemaVersions(agentID string) ([]prefactorapi.SchemaVersionRecord, error) {
	ids, err := collect(t, "SELECT id FROM schema_versions WHERE agent_id = $1 ORDER BY seq", []any{agentID},
		func(row pgx.Row) (string, error) { var id string; return id, row.Scan(&id) })
	if err != nil {
		return nil, err
	}
	out := make([]prefactorapi.SchemaVersionRecord, 0, len(ids))
	for _, id := range ids {
		sv, ok, err := t.SchemaVersion(id)
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, sv)
		}
	}
	return out, nil
}

// Package sqlitestore is the SQLite prefactorapi.Store: one file in WAL
// mode, versioned migrations, an index for every listing filter, FTS5 for
// name search, and retention by age and size. Updates run in BEGIN
// IMMEDIATE transactions on one connection, so they are serializable in a
// process and across processes (which wait on the file lock for up to
// the busy timeout).
package sqlitestore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"time"

	_ "modernc.org/sqlite" // the database/sql driver "sqlite"

	"github.com/agenttrace/agenttrace/internal/prefactorapi"
)

// SchemaVersion is the schema version this package writes.
var SchemaVersion = len(migrations)

// ErrNewerSchema is returned by Open for a database written by a newer
// version of the program.
var ErrNewerSchema = errors.New("sqlitestore: the database has a newer schema than this program knows")

// Options configure Open.
type Options struct {
	// Synchronous is SQLite's synchronous setting: "NORMAL" (default:
	// a commit survives the process being killed; the last commits may be
	// lost if the machine loses power) or "FULL" (a commit survives that
	// too, at one fsync per commit).
	Synchronous string
	// BusyTimeout is how long a writer waits for another process's write
	// to finish (default 30 s).
	BusyTimeout time.Duration
}

// Store is the SQLite store.
type Store struct {
	path  string
	write *sql.DB // one connection: BEGIN IMMEDIATE transactions
	read  *sql.DB // read-only connections for View
	// schemas caches schema versions, which are immutable, by ID.
	schemas sync.Map
}

func dsn(path string, o Options, readOnly bool) string {
	q := url.Values{}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", o.BusyTimeout.Milliseconds()))
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous("+o.Synchronous+")")
	if readOnly {
		q.Add("_pragma", "query_only(1)")
	} else {
		q.Set("_txlock", "immediate")
	}
	return "file:" + path + "?" + q.Encode()
}

// Open opens (creating it if needed) the database at path and brings its
// schema up to date. It refuses a database of a newer schema.
func Open(ctx context.Context, path string, o Options) (*Store, error) {
	if o.Synchronous == "" {
		o.Synchronous = "NORMAL"
	}
	switch strings.ToUpper(o.Synchronous) {
	case "NORMAL", "FULL", "EXTRA", "OFF":
	default:
		return nil, fmt.Errorf("sqlitestore: synchronous %q: want NORMAL or FULL", o.Synchronous)
	}
	if o.BusyTimeout <= 0 {
		o.BusyTimeout = 30 * time.Second
	}
	w, err := sql.Open("sqlite", dsn(path, o, false))
	if err != nil {
		return nil, err
	}
	w.SetMaxOpenConns(1)
	w.SetConnMaxIdleTime(0)
	s := &Store{path: path, write: w}
	if err := s.migrate(ctx); err != nil {
		_ = w.Close()
		return nil, err
	}
	r, err := sql.Open("sqlite", dsn(path, o, true))
	if err != nil {
		_ = w.Close()
		return nil, err
	}
	r.SetMaxOpenConns(4)
	s.read = r
	return s, nil
}

// migrate applies the missing migrations, each in its own transaction.
func (s *Store) migrate(ctx context.Context) error {
	for {
		tx, err := s.write.BeginTx(ctx, nil)
		if err != nil {
			return fmt.Errorf("sqlitestore: open %s: %w", s.path, err)
		}
		var v int
		if err := tx.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v); err != nil {
			_ = tx.Rollback()
			return fmt.Errorf("sqlitestore: read the schema version: %w", err)
		}
		if v > len(migrations) {
			_ = tx.Rollback()
			return fmt.Errorf("%w (database %d, program %d)", ErrNewerSchema, v, len(migrations))
		}
		if v == len(migrations) {
			return tx.Commit()
		}
		if _, err := tx.ExecContext(ctx, migrations[v]); err != nil {
			_ = tx.Rollback()
			return fmt.Errorf("sqlitestore: migrate to schema %d: %w", v+1, err)
		}
		if _, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", v+1)); err != nil {
			_ = tx.Rollback()
			return err
		}
		if err := tx.Commit(); err != nil {
			return err
		}
	}
}

// Path returns the database file's path.
func (s *Store) Path() string { return s.path }

// Close implements prefactorapi.Store.
func (s *Store) Close() error {
	return errors.Join(s.read.Close(), s.write.Close())
}

// Update implements prefactorapi.Store.
func (s *Store) Update(ctx context.Context, fn func(prefactorapi.Tx) error) error {
	tx, err := s.write.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlitestore: begin: %w", err)
	}
	t := &sqlTx{s: s, q: tx, ctx: ctx, write: true}
	if err := fn(t); err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := t.flush(); err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlitestore: commit: %w", err)
	}
	return nil
}

// View implements prefactorapi.Store.
func (s *Store) View(ctx context.Context, fn func(prefactorapi.ReadTx) error) error {
	tx, err := s.read.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return fmt.Errorf("sqlitestore: begin: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	return fn(&sqlTx{s: s, q: tx, ctx: ctx})
}

// sqlTx is a transaction. Instances are cached for the transaction and
// written once at its end: a bulk request updates its instance many times.
// Spans and idempotency records are written at its end too, many rows a
// statement. Listings first write what is waiting, so they see it.
type sqlTx struct {
	s     *Store
	q     *sql.Tx
	ctx   context.Context
	write bool
	inst  map[string]*cachedInstance
	order []string
	// prepared are the statements prepared in the transaction (closed with
	// it).
	prepared map[string]*sql.Stmt
	// putSchemas are the schema versions written in the transaction: not
	// to be cached for others before it commits.
	putSchemas map[string]bool
	// Spans and idempotency records written are kept, in the order first
	// written, and inserted at the end, many rows a statement (a bulk
	// request writes hundreds); lookups of them are answered from here.
	spans pending[prefactorapi.SpanRecord]
	idem  pending[prefactorapi.IdempotencyRecord]
}

// pending are records written in a transaction and not yet inserted, by
// key, in the order first written.
type pending[R any] struct {
	recs []R
	at   map[string]int
}

func (p *pending[R]) put(key string, r R) {
	if i, ok := p.at[key]; ok {
		p.recs[i] = r
		return
	}
	if p.at == nil {
		p.at = map[string]int{}
	}
	p.at[key] = len(p.recs)
	p.recs = append(p.recs, r)
}

func (p *pending[R]) get(key string) (R, bool) {
	if i, ok := p.at[key]; ok {
		return p.recs[i], true
	}
	var zero R
	return zero, false
}

func (p *pending[R]) reset() {
	p.recs = p.recs[:0]
	clear(p.at)
}

// insertChunks are the row counts of the multi-row inserts: a run of
// records goes in the largest that fit, so that a few statements, each
// prepared once per transaction, take any number.
var insertChunks = []int{64, 8, 1}

// insertRows inserts the rows of n records, cols values each, with the
// statement head (INSERT ... VALUES) and tail (ON CONFLICT ...); args
// appends record i's values.
func (t *sqlTx) insertRows(n, cols int, head, tail string, args func(dst []any, i int) []any) error {
	row := "(" + strings.TrimSuffix(strings.Repeat("?,", cols), ",") + ")"
	var vals []any
	for i := 0; i < n; {
		k := 1
		for _, c := range insertChunks {
			if n-i >= c {
				k = c
				break
			}
		}
		vals = vals[:0]
		for j := i; j < i+k; j++ {
			vals = args(vals, j)
		}
		if err := t.exec(head+strings.TrimSuffix(strings.Repeat(row+",", k), ",")+tail, vals...); err != nil {
			return err
		}
		i += k
	}
	return nil
}

type cachedInstance struct {
	rec   prefactorapi.InstanceRecord
	ok    bool
	dirty bool
}

func (t *sqlTx) exec(query string, args ...any) error {
	_, err := t.stmt(query).ExecContext(t.ctx, args...)
	if err != nil {
		return fmt.Errorf("sqlitestore: %w", err)
	}
	return nil
}

// querier runs a statement of a transaction.
type querier interface {
	QueryRowContext(ctx context.Context, args ...any) *sql.Row
	QueryContext(ctx context.Context, args ...any) (*sql.Rows, error)
	ExecContext(ctx context.Context, args ...any) (sql.Result, error)
}

// unprepared runs a query text on a transaction (for read transactions,
// whose connections vary).
type unprepared struct {
	tx    *sql.Tx
	query string
}

func (u unprepared) QueryRowContext(ctx context.Context, args ...any) *sql.Row {
	return u.tx.QueryRowContext(ctx, u.query, args...)
}

func (u unprepared) QueryContext(ctx context.Context, args ...any) (*sql.Rows, error) {
	return u.tx.QueryContext(ctx, u.query, args...)
}

func (u unprepared) ExecContext(ctx context.Context, args ...any) (sql.Result, error) {
	return u.tx.ExecContext(ctx, u.query, args...)
}

// stmt returns query as a statement of the transaction: in a write
// transaction prepared once for the transaction (a bulk request runs the
// same few statements hundreds of times), in a read one parsed each time.
func (t *sqlTx) stmt(query string) querier {
	if !t.write {
		return unprepared{t.q, query}
	}
	if st, ok := t.prepared[query]; ok {
		return st
	}
	st, err := t.q.PrepareContext(t.ctx, query)
	if err != nil {
		return unprepared{t.q, query} // the error surfaces when it runs
	}
	if t.prepared == nil {
		t.prepared = map[string]*sql.Stmt{}
	}
	t.prepared[query] = st
	return st
}

// micro stores a time as Unix microseconds; the zero time is NULL.
func micro(tm time.Time) any {
	if tm.IsZero() {
		return nil
	}
	return tm.UnixMicro()
}

func fromMicro(v sql.NullInt64) time.Time {
	if !v.Valid {
		return time.Time{}
	}
	return time.UnixMicro(v.Int64).UTC()
}

func blob(b []byte) any {
	if b == nil {
		return nil
	}
	return b
}

func nilIfEmpty(b []byte) json.RawMessage {
	if len(b) == 0 {
		return nil
	}
	return json.RawMessage(b)
}

func found(err error) (bool, error) {
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("sqlitestore: %w", err)
	}
	return true, nil
}

func (t *sqlTx) Idempotency(key string) (prefactorapi.IdempotencyRecord, bool, error) {
	if r, ok := t.idem.get(key); ok {
		return r, true, nil
	}
	r := prefactorapi.IdempotencyRecord{Key: key}
	err := t.stmt("SELECT hash, status, body FROM idempotency WHERE key = ?").QueryRowContext(t.ctx, key).Scan(&r.Hash, &r.Status, &r.Body)
	ok, err := found(err)
	return r, ok, err
}

// jsonArray is the JSON array of strings ss, which a statement reads with
// json_each: one statement, prepared once, for any number of keys.
func jsonArray(ss []string) string {
	b, _ := json.Marshal(ss)
	return string(b)
}

func (t *sqlTx) Idempotencies(keys []string) (map[string]prefactorapi.IdempotencyRecord, error) {
	out := make(map[string]prefactorapi.IdempotencyRecord, len(keys))
	var ask []string
	for _, k := range keys {
		if r, ok := t.idem.get(k); ok {
			out[k] = r
		} else {
			ask = append(ask, k)
		}
	}
	if len(ask) == 0 {
		return out, nil
	}
	rows, err := t.stmt("SELECT key, hash, status, body FROM idempotency WHERE key IN (SELECT value FROM json_each(?))").QueryContext(t.ctx, jsonArray(ask))
	if err != nil {
		return nil, fmt.Errorf("sqlitestore: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var r prefactorapi.IdempotencyRecord
		if err := rows.Scan(&r.Key, &r.Hash, &r.Status, &r.Body); err != nil {
			return nil, fmt.Errorf("sqlitestore: %w", err)
		}
		out[r.Key] = r
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlitestore: %w", err)
	}
	return out, nil
}

func (t *sqlTx) PutIdempotency(r prefactorapi.IdempotencyRecord) error {
	t.idem.put(r.Key, r)
	return nil
}

const instanceCols = `id, agent_id, environment_id, version_id, schema_version_id, deployment_id, purpose, status,
	termination_reason, started_at, finished_at, inserted_at, updated_at, register, spans_pending, spans_active,
	spans_complete, spans_failed, spans_cancelled, name, user_id, group_id, channel, session_id, ip_address, user_agent,
	version_number, prompt_tokens, completion_tokens, total_tokens, cost_prompt, cost_completion, cost_services,
	cost_total, currency, ttft_ms, ttft_from, quality`

type scanner interface{ Scan(dest ...any) error }

func scanInstance(sc scanner) (prefactorapi.InstanceRecord, error) {
	var r prefactorapi.InstanceRecord
	var started, finished, inserted, updated, ttftFrom sql.NullInt64
	var register, quality []byte
	c, run := &r.SpanCounts, &r.Run
	err := sc.Scan(&r.ID, &r.AgentID, &r.EnvironmentID, &r.VersionID, &r.SchemaVersionID, &r.DeploymentID, &r.Purpose,
		&r.Status, &r.TerminationReason, &started, &finished, &inserted, &updated, &register, &c.Pending, &c.Active,
		&c.Complete, &c.Failed, &c.Cancelled, &run.Name, &run.UserID, &run.GroupID, &run.Channel, &run.SessionID,
		&run.IPAddress, &run.UserAgent, &run.VersionNumber, &run.PromptTokens, &run.CompletionTokens, &run.TotalTokens,
		&run.CostPrompt, &run.CostCompletion, &run.CostServices, &run.CostTotal, &run.Currency, &run.TTFTMillis, &ttftFrom, &quality)
	if err == nil && len(quality) > 0 {
		if err = json.Unmarshal(quality, &r.Quality); err != nil {
			err = fmt.Errorf("sqlitestore: quality of instance %s: %w", r.ID, err)
		}
	}
	r.StartedAt, r.FinishedAt, r.InsertedAt, r.UpdatedAt = fromMicro(started), fromMicro(finished), fromMicro(inserted), fromMicro(updated)
	run.TTFTFrom = fromMicro(ttftFrom)
	r.Register = nilIfEmpty(register)
	return r, err
}

func (t *sqlTx) Instance(id string) (prefactorapi.InstanceRecord, bool, error) {
	if c, ok := t.inst[id]; ok {
		return c.rec, c.ok, nil
	}
	r, err := scanInstance(t.stmt("SELECT "+instanceCols+" FROM instances WHERE id = ?").QueryRowContext(t.ctx, id))
	ok, err := found(err)
	if err != nil {
		return r, false, err
	}
	if t.write {
		t.cache(id, r, ok, false)
	}
	return r, ok, nil
}

func (t *sqlTx) cache(id string, r prefactorapi.InstanceRecord, ok, dirty bool) {
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

func (t *sqlTx) PutInstance(r prefactorapi.InstanceRecord) error {
	t.cache(r.ID, r, true, true)
	return nil
}

// flush writes the instances changed in the transaction, in the order
// they were first changed (registration order for new ones).
func (t *sqlTx) flush() error {
	for _, id := range t.order {
		if err := t.writeInstance(&t.inst[id].rec); err != nil {
			return err
		}
	}
	t.order = t.order[:0]
	if err := t.insertRows(len(t.spans.recs), 15, "INSERT INTO spans("+spanCols+") VALUES ", spanUpsert, func(dst []any, i int) []any {
		return spanArgs(dst, &t.spans.recs[i])
	}); err != nil {
		return err
	}
	t.spans.reset()
	now := time.Now().UnixMicro()
	if err := t.insertRows(len(t.idem.recs), 5, "INSERT OR REPLACE INTO idempotency(key, hash, status, body, inserted_at) VALUES ", "", func(dst []any, i int) []any {
		r := &t.idem.recs[i]
		return append(dst, r.Key, r.Hash, r.Status, r.Body, now)
	}); err != nil {
		return err
	}
	t.idem.reset()
	return nil
}

// flushed makes listings see the transaction's own instance changes.
func (t *sqlTx) flushed() error {
	if !t.write {
		return nil
	}
	return t.flush()
}

func (t *sqlTx) writeInstance(r *prefactorapi.InstanceRecord) error {
	c, run := &r.SpanCounts, &r.Run
	return t.exec(`INSERT INTO instances(`+instanceCols+`, start_key) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)
		ON CONFLICT(id) DO UPDATE SET agent_id=excluded.agent_id, environment_id=excluded.environment_id,
		version_id=excluded.version_id, schema_version_id=excluded.schema_version_id, deployment_id=excluded.deployment_id,
		purpose=excluded.purpose, status=excluded.status, termination_reason=excluded.termination_reason,
		started_at=excluded.started_at, finished_at=excluded.finished_at, inserted_at=excluded.inserted_at,
		updated_at=excluded.updated_at, register=excluded.register, spans_pending=excluded.spans_pending,
		spans_active=excluded.spans_active, spans_complete=excluded.spans_complete, spans_failed=excluded.spans_failed,
		spans_cancelled=excluded.spans_cancelled, name=excluded.name, user_id=excluded.user_id, group_id=excluded.group_id,
		channel=excluded.channel, session_id=excluded.session_id, ip_address=excluded.ip_address,
		user_agent=excluded.user_agent, version_number=excluded.version_number, prompt_tokens=excluded.prompt_tokens,
		completion_tokens=excluded.completion_tokens, total_tokens=excluded.total_tokens, cost_prompt=excluded.cost_prompt,
		cost_completion=excluded.cost_completion, cost_services=excluded.cost_services, cost_total=excluded.cost_total,
		currency=excluded.currency, ttft_ms=excluded.ttft_ms, ttft_from=excluded.ttft_from, quality=excluded.quality, start_key=excluded.start_key`,
		r.ID, r.AgentID, r.EnvironmentID, r.VersionID, r.SchemaVersionID, r.DeploymentID, r.Purpose, r.Status,
		r.TerminationReason, micro(r.StartedAt), micro(r.FinishedAt), micro(r.InsertedAt), micro(r.UpdatedAt), blob(r.Register),
		c.Pending, c.Active, c.Complete, c.Failed, c.Cancelled, run.Name, run.UserID, run.GroupID, run.Channel, run.SessionID,
		run.IPAddress, run.UserAgent, run.VersionNumber, run.PromptTokens, run.CompletionTokens, run.TotalTokens,
		run.CostPrompt, run.CostCompletion, run.CostServices, run.CostTotal, run.Currency, run.TTFTMillis, micro(run.TTFTFrom),
		qualityBlob(r.Quality), r.StartKey().UnixMicro())
}

const spanCols = `id, instance_id, agent_id, parent_id, schema_name, status, payload, result_payload, started_at,
	finished_at, inserted_at, updated_at, sensitive, creates, finishes`

func scanSpan(sc scanner) (prefactorapi.SpanRecord, error) {
	var r prefactorapi.SpanRecord
	var started, finished, inserted, updated, sensitive sql.NullInt64
	var payload, result []byte
	err := sc.Scan(&r.ID, &r.InstanceID, &r.AgentID, &r.ParentID, &r.SchemaName, &r.Status, &payload, &result, &started,
		&finished, &inserted, &updated, &sensitive, &r.Creates, &r.Finishes)
	r.StartedAt, r.FinishedAt, r.InsertedAt, r.UpdatedAt = fromMicro(started), fromMicro(finished), fromMicro(inserted), fromMicro(updated)
	r.Payload, r.ResultPayload = nilIfEmpty(payload), nilIfEmpty(result)
	if sensitive.Valid {
		b := sensitive.Int64 != 0
		r.SensitiveEncoding = &b
	}
	return r, err
}

func (t *sqlTx) Span(id string) (prefactorapi.SpanRecord, bool, error) {
	if r, ok := t.spans.get(id); ok {
		return r, true, nil
	}
	r, err := scanSpan(t.stmt("SELECT "+spanCols+" FROM spans WHERE id = ?").QueryRowContext(t.ctx, id))
	ok, err := found(err)
	return r, ok, err
}

func (t *sqlTx) Spans(ids []string) (map[string]prefactorapi.SpanRecord, error) {
	out := make(map[string]prefactorapi.SpanRecord, len(ids))
	var ask []string
	for _, id := range ids {
		if r, ok := t.spans.get(id); ok {
			out[id] = r
		} else {
			ask = append(ask, id)
		}
	}
	if len(ask) == 0 {
		return out, nil
	}
	rows, err := t.stmt("SELECT "+spanCols+" FROM spans WHERE id IN (SELECT value FROM json_each(?))").QueryContext(t.ctx, jsonArray(ask))
	if err != nil {
		return nil, fmt.Errorf("sqlitestore: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		r, err := scanSpan(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlitestore: %w", err)
		}
		out[r.ID] = r
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlitestore: %w", err)
	}
	return out, nil
}

func (t *sqlTx) PutSpan(r prefactorapi.SpanRecord) error {
	t.spans.put(r.ID, r)
	return nil
}

// spanUpsert ends the spans insert: a replaced span keeps its seq, its
// place in creation order.
const spanUpsert = ` ON CONFLICT(id) DO UPDATE SET instance_id=excluded.instance_id, agent_id=excluded.agent_id,
	parent_id=excluded.parent_id, schema_name=excluded.schema_name, status=excluded.status, payload=excluded.payload,
	result_payload=excluded.result_payload, started_at=excluded.started_at, finished_at=excluded.finished_at,
	inserted_at=excluded.inserted_at, updated_at=excluded.updated_at, sensitive=excluded.sensitive,
	creates=excluded.creates, finishes=excluded.finishes`

// spanArgs appends a span's values in spanCols order.
func spanArgs(dst []any, r *prefactorapi.SpanRecord) []any {
	var sensitive any
	if r.SensitiveEncoding != nil {
		sensitive = 0
		if *r.SensitiveEncoding {
			sensitive = 1
		}
	}
	return append(dst, r.ID, r.InstanceID, r.AgentID, r.ParentID, r.SchemaName, r.Status, blob(r.Payload), blob(r.ResultPayload),
		micro(r.StartedAt), micro(r.FinishedAt), micro(r.InsertedAt), micro(r.UpdatedAt), sensitive, r.Creates, r.Finishes)
}

func (t *sqlTx) ListSpans(instanceID string) ([]prefactorapi.SpanRecord, error) {
	if err := t.flushed(); err != nil {
		return nil, err
	}
	q, args := "SELECT "+spanCols+" FROM spans ORDER BY seq", []any{}
	if instanceID != "" {
		q, args = "SELECT "+spanCols+" FROM spans WHERE instance_id = ? ORDER BY seq", []any{instanceID}
	}
	rows, err := t.stmt(q).QueryContext(t.ctx, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlitestore: %w", err)
	}
	defer rows.Close()
	out := []prefactorapi.SpanRecord{}
	for rows.Next() {
		r, err := scanSpan(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlitestore: %w", err)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

const agentCols = `id, name, description, external_id, environment_id, status, current_version_id, current_schema_version_id, inserted_at, updated_at`

func scanAgent(sc scanner) (prefactorapi.AgentRecord, error) {
	var r prefactorapi.AgentRecord
	var inserted, updated sql.NullInt64
	err := sc.Scan(&r.ID, &r.Name, &r.Description, &r.ExternalID, &r.EnvironmentID, &r.Status, &r.CurrentVersionID,
		&r.CurrentSchemaVersion, &inserted, &updated)
	r.InsertedAt, r.UpdatedAt = fromMicro(inserted), fromMicro(updated)
	return r, err
}

func (t *sqlTx) Agent(id string) (prefactorapi.AgentRecord, bool, error) {
	r, err := scanAgent(t.stmt("SELECT "+agentCols+" FROM agents WHERE id = ?").QueryRowContext(t.ctx, id))
	ok, err := found(err)
	return r, ok, err
}

func (t *sqlTx) AgentByExternalID(ext string) (prefactorapi.AgentRecord, bool, error) {
	r, err := scanAgent(t.stmt("SELECT "+agentCols+" FROM agents WHERE external_id = ? ORDER BY seq LIMIT 1").QueryRowContext(t.ctx, ext))
	ok, err := found(err)
	return r, ok, err
}

func (t *sqlTx) PutAgent(r prefactorapi.AgentRecord) error {
	return t.exec(`INSERT INTO agents(`+agentCols+`) VALUES (?,?,?,?,?,?,?,?,?,?)
		ON CONFLICT(id) DO UPDATE SET name=excluded.name, description=excluded.description, external_id=excluded.external_id,
		environment_id=excluded.environment_id, status=excluded.status, current_version_id=excluded.current_version_id,
		current_schema_version_id=excluded.current_schema_version_id, inserted_at=excluded.inserted_at, updated_at=excluded.updated_at`,
		r.ID, r.Name, r.Description, r.ExternalID, r.EnvironmentID, r.Status, r.CurrentVersionID, r.CurrentSchemaVersion,
		micro(r.InsertedAt), micro(r.UpdatedAt))
}

func (t *sqlTx) DeleteAgent(id string) error { return t.exec("DELETE FROM agents WHERE id = ?", id) }

func (t *sqlTx) ListAgents() ([]prefactorapi.AgentRecord, error) {
	rows, err := t.stmt("SELECT " + agentCols + " FROM agents ORDER BY seq").QueryContext(t.ctx)
	if err != nil {
		return nil, fmt.Errorf("sqlitestore: %w", err)
	}
	defer rows.Close()
	out := []prefactorapi.AgentRecord{}
	for rows.Next() {
		r, err := scanAgent(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlitestore: %w", err)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

const versionCols = "id, agent_id, external_id, name, description, number, inserted_at, schema_version_id"

func scanVersion(sc scanner) (prefactorapi.AgentVersionRecord, error) {
	var r prefactorapi.AgentVersionRecord
	var inserted sql.NullInt64
	err := sc.Scan(&r.ID, &r.AgentID, &r.ExternalID, &r.Name, &r.Description, &r.Number, &inserted, &r.SchemaVersionID)
	r.InsertedAt = fromMicro(inserted)
	return r, err
}

func (t *sqlTx) version(where string, args ...any) (prefactorapi.AgentVersionRecord, bool, error) {
	r, err := scanVersion(t.stmt("SELECT "+versionCols+" FROM agent_versions WHERE "+where).QueryRowContext(t.ctx, args...))
	ok, err := found(err)
	return r, ok, err
}

func (t *sqlTx) AgentVersion(id string) (prefactorapi.AgentVersionRecord, bool, error) {
	return t.version("id = ?", id)
}

func (t *sqlTx) AgentVersionByExternalID(agentID, ext string) (prefactorapi.AgentVersionRecord, bool, error) {
	return t.version("agent_id = ? AND external_id = ?", agentID, ext)
}

func (t *sqlTx) AgentVersionByNumber(agentID string, n int) (prefactorapi.AgentVersionRecord, bool, error) {
	return t.version("agent_id = ? AND number = ?", agentID, n)
}

func (t *sqlTx) CountAgentVersions(agentID string) (int, error) {
	var n int
	err := t.stmt("SELECT count(*) FROM agent_versions WHERE agent_id = ?").QueryRowContext(t.ctx, agentID).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("sqlitestore: %w", err)
	}
	return n, nil
}

func (t *sqlTx) PutAgentVersion(r prefactorapi.AgentVersionRecord) error {
	return t.exec("INSERT OR REPLACE INTO agent_versions("+versionCols+") VALUES (?,?,?,?,?,?,?,?)",
		r.ID, r.AgentID, r.ExternalID, r.Name, r.Description, r.Number, micro(r.InsertedAt), r.SchemaVersionID)
}

func (t *sqlTx) schema(where string, args ...any) (prefactorapi.SchemaVersionRecord, bool, error) {
	var r prefactorapi.SchemaVersionRecord
	var types string
	var body []byte
	var inserted sql.NullInt64
	err := t.stmt("SELECT id, agent_id, external_id, span_types, body, inserted_at FROM schema_versions WHERE "+where).QueryRowContext(t.ctx,
		args...).Scan(&r.ID, &r.AgentID, &r.ExternalID, &types, &body, &inserted)
	ok, err := found(err)
	if !ok || err != nil {
		return r, ok, err
	}
	r.InsertedAt, r.Body = fromMicro(inserted), nilIfEmpty(body)
	if err := json.Unmarshal([]byte(types), &r.SpanTypes); err != nil {
		return r, false, fmt.Errorf("sqlitestore: schema version %s: %w", r.ID, err)
	}
	return r, true, nil
}

func (t *sqlTx) SchemaVersion(id string) (prefactorapi.SchemaVersionRecord, bool, error) {
	if v, ok := t.s.schemas.Load(id); ok {
		return v.(prefactorapi.SchemaVersionRecord), true, nil
	}
	r, ok, err := t.schema("id = ?", id)
	if ok && err == nil && !t.putSchemas[id] {
		// Immutable, and committed: a read transaction saw it, or a write
		// transaction that did not write it (writers take turns).
		t.s.schemas.Store(id, r)
	}
	return r, ok, err
}

func (t *sqlTx) SchemaVersionByExternalID(agentID, ext string) (prefactorapi.SchemaVersionRecord, bool, error) {
	return t.schema("agent_id = ? AND external_id = ?", agentID, ext)
}

func (t *sqlTx) PutSchemaVersion(r prefactorapi.SchemaVersionRecord) error {
	types, err := json.Marshal(r.SpanTypes)
	if err != nil {
		return err
	}
	if r.SpanTypes == nil {
		types = []byte("{}")
	}
	if t.putSchemas == nil {
		t.putSchemas = map[string]bool{}
	}
	t.putSchemas[r.ID] = true
	return t.exec("INSERT OR REPLACE INTO schema_versions(id, agent_id, external_id, span_types, body, inserted_at) VALUES (?,?,?,?,?,?)",
		r.ID, r.AgentID, r.ExternalID, string(types), blob(r.Body), micro(r.InsertedAt))
}

func (t *sqlTx) Deployment(agentID, envID string) (prefactorapi.DeploymentRecord, bool, error) {
	r := prefactorapi.DeploymentRecord{AgentID: agentID, EnvironmentID: envID}
	err := t.stmt("SELECT id FROM deployments WHERE agent_id = ? AND environment_id = ?").QueryRowContext(t.ctx, agentID, envID).Scan(&r.ID)
	ok, err := found(err)
	return r, ok, err
}

func (t *sqlTx) PutDeployment(r prefactorapi.DeploymentRecord) error {
	return t.exec("INSERT OR REPLACE INTO deployments(id, agent_id, environment_id) VALUES (?,?,?)", r.ID, r.AgentID, r.EnvironmentID)
}

func (t *sqlTx) InstanceCounts(agentID string) (prefactorapi.StatusCounts, error) {
	var c prefactorapi.StatusCounts
	if err := t.flushed(); err != nil {
		return c, err
	}
	rows, err := t.stmt("SELECT status, count(*) FROM instances WHERE agent_id = ? GROUP BY status").QueryContext(t.ctx, agentID)
	if err != nil {
		return c, fmt.Errorf("sqlitestore: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var s string
		var n int64
		if err := rows.Scan(&s, &n); err != nil {
			return c, fmt.Errorf("sqlitestore: %w", err)
		}
		c.Add(s, n)
	}
	return c, rows.Err()
}

// ftsQuery makes an FTS5 query of the search words (prefix queries, all
// required); ok is false when the search has no word at all.
func ftsQuery(search string) (match string, ok bool) {
	words := prefactorapi.SearchWords(search)
	if len(words) == 0 {
		return "", false
	}
	parts := make([]string, len(words))
	for i, w := range words {
		parts[i] = `"` + strings.ReplaceAll(w, `"`, `""`) + `"*`
	}
	return strings.Join(parts, " AND "), true
}

func (t *sqlTx) ListInstances(q prefactorapi.InstanceQuery) ([]prefactorapi.InstanceRecord, int, error) {
	if err := t.flushed(); err != nil {
		return nil, 0, err
	}
	match := ""
	if strings.TrimSpace(q.Search) != "" {
		m, ok := ftsQuery(q.Search)
		if !ok {
			return []prefactorapi.InstanceRecord{}, 0, nil
		}
		match = m
	}
	// where is the condition; with plus, a unary + keeps the agent and
	// version indexes out of it, so that a search without a user or group
	// is counted from the names it matches rather than by visiting every
	// instance of the agent.
	where := func(plus string) (string, []any) {
		var conds []string
		var args []any
		add := func(cond string, v any) { conds, args = append(conds, cond), append(args, v) }
		if q.AgentID != "" {
			add(plus+"agent_id = ?", q.AgentID)
		}
		if q.VersionID != "" {
			add(plus+"version_id = ?", q.VersionID)
		}
		if q.UserID != "" {
			add("user_id = ?", q.UserID)
		}
		if q.GroupID != "" {
			add("group_id = ?", q.GroupID)
		}
		if match != "" {
			add("seq IN (SELECT rowid FROM instance_names WHERE instance_names MATCH ?)", match)
		}
		if len(conds) == 0 {
			return "", nil
		}
		return " WHERE " + strings.Join(conds, " AND "), args
	}
	countPlus := ""
	if match != "" && q.UserID == "" && q.GroupID == "" {
		countPlus = "+"
	}
	cond, args := where(countPlus)
	var total int
	if err := t.stmt("SELECT count(*) FROM instances"+cond).QueryRowContext(t.ctx, args...).Scan(&total); err != nil {
		return nil, 0, fmt.Errorf("sqlitestore: %w", err)
	}
	order := " ORDER BY seq"
	switch q.Order {
	case prefactorapi.ByStartDesc:
		order = " ORDER BY start_key DESC, id DESC"
	case prefactorapi.ByStartAsc:
		order = " ORDER BY start_key, id"
	}
	limit := -1
	if q.Limit > 0 {
		limit = q.Limit
	}
	// The page's rows are chosen on the index alone, in its order (a deep
	// offset skips index entries, not rows), then read.
	cond, args = where("")
	rows, err := t.stmt("SELECT "+instanceCols+" FROM instances WHERE seq IN (SELECT seq FROM instances"+cond+order+
		" LIMIT ? OFFSET ?)"+order).QueryContext(t.ctx, append(args, limit, max(q.Offset, 0))...)
	if err != nil {
		return nil, 0, fmt.Errorf("sqlitestore: %w", err)
	}
	out, err := scanInstances(rows)
	return out, total, err
}

// scanInstances reads every instance row of rows and closes it.
func scanInstances(rows *sql.Rows) ([]prefactorapi.InstanceRecord, error) {
	defer rows.Close()
	out := []prefactorapi.InstanceRecord{}
	for rows.Next() {
		r, err := scanInstance(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlitestore: %w", err)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// qualityBlob encodes an instance's quality payloads (NULL for none).
func qualityBlob(q map[string]prefactorapi.QualityRecord) any {
	if len(q) == 0 {
		return nil
	}
	b, _ := json.Marshal(q) // payloads are compact JSON, summaries strings
	return b
}

// ListAgentVersions implements prefactorapi.ReadTx.
func (t *sqlTx) ListAgentVersions(agentID string) ([]prefactorapi.AgentVersionRecord, error) {
	rows, err := t.stmt("SELECT "+versionCols+" FROM agent_versions WHERE agent_id = ? ORDER BY number").QueryContext(t.ctx, agentID)
	if err != nil {
		return nil, fmt.Errorf("sqlitestore: %w", err)
	}
	defer rows.Close()
	out := []prefactorapi.AgentVersionRecord{}
	for rows.Next() {
		v, err := scanVersion(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlitestore: %w", err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlitestore: %w", err)
	}
	return out, nil
}

// ListSchemaVersions implements prefactorapi.ReadTx.
func (t *sqlTx) ListSchemaVersions(agentID string) ([]prefactorapi.SchemaVersionRecord, error) {
	rows, err := t.stmt("SELECT id FROM schema_versions WHERE agent_id = ? ORDER BY rowid").QueryContext(t.ctx, agentID)
	if err != nil {
		return nil, fmt.Errorf("sqlitestore: %w", err)
	}
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return nil, fmt.Errorf("sqlitestore: %w", err)
		}
		ids = append(ids, id)
	}
	err = rows.Err()
	rows.Close()
	if err != nil {
		return nil, fmt.Errorf("sqlitestore: %w", err)
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

package sqlitestore

import (
	"context"
	"fmt"
	"time"
)

// Retain deletes old runs: with maxAge > 0, the instances that finished
// more than maxAge ago (with their spans) and idempotency records older
// than maxAge; with maxBytes > 0, then the oldest instances, a batch at a
// time, while the pages in use take more than maxBytes (a fiftieth of the instances per batch). It returns the
// number of instances deleted. Freed pages are reused by later writes.
// The size limit also deletes the oldest idempotency records (a retry that
// comes after its record was deleted is applied again).
func (s *Store) Retain(ctx context.Context, maxAge time.Duration, maxBytes int64) (int, error) {
	deleted := 0
	if maxAge > 0 {
		cut := time.Now().Add(-maxAge).UnixMicro()
		n, err := s.deleteRuns(ctx, "finished_at IS NOT NULL AND finished_at < ?", cut)
		if err != nil {
			return deleted, fmt.Errorf("sqlitestore: retention by age: %w", err)
		}
		deleted += n
		if _, err := s.write.ExecContext(ctx, "DELETE FROM idempotency WHERE inserted_at < ?", cut); err != nil {
			return deleted, fmt.Errorf("sqlitestore: retention by age: %w", err)
		}
	}
	if maxBytes > 0 {
		n, err := s.retainBytes(ctx, maxBytes)
		deleted += n
		if err != nil {
			return deleted, err
		}
	}
	return deleted, nil
}

// retainBytes deletes the oldest runs, a fiftieth of them at a time, and
// the oldest idempotency keys while the database is larger than maxBytes.
func (s *Store) retainBytes(ctx context.Context, maxBytes int64) (int, error) {
	var count int
	if err := s.write.QueryRowContext(ctx, "SELECT count(*) FROM instances").Scan(&count); err != nil {
		return 0, fmt.Errorf("sqlitestore: %w", err)
	}
	batch := max(1, count/50)
	deleted := 0
	for {
		used, err := s.UsedBytes(ctx)
		if err != nil || used <= maxBytes {
			return deleted, err
		}
		n, err := s.deleteRuns(ctx, "seq IN (SELECT seq FROM instances ORDER BY seq LIMIT ?)", batch)
		if err != nil {
			return deleted, fmt.Errorf("sqlitestore: retention by size: %w", err)
		}
		res, err := s.write.ExecContext(ctx, "DELETE FROM idempotency WHERE key IN (SELECT key FROM idempotency ORDER BY inserted_at LIMIT ?)", 5*batch)
		if err != nil {
			return deleted, fmt.Errorf("sqlitestore: retention by size: %w", err)
		}
		k, _ := res.RowsAffected()
		if n == 0 && k == 0 {
			return deleted, nil
		}
		deleted += n
	}
}

// deleteRuns deletes, in one transaction, the runs that match cond and
// their spans, and returns how many runs it deleted.
func (s *Store) deleteRuns(ctx context.Context, cond string, args ...any) (int, error) {
	tx, err := s.write.BeginTx(ctx, nil)
	if err != nil {
		return 0, err
	}
	defer func() { _ = tx.Rollback() }()
	if _, err := tx.ExecContext(ctx, "CREATE TEMP TABLE IF NOT EXISTS doomed(id TEXT PRIMARY KEY)"); err != nil {
		return 0, err
	}
	if _, err := tx.ExecContext(ctx, "DELETE FROM doomed"); err != nil {
		return 0, err
	}
	res, err := tx.ExecContext(ctx, "INSERT INTO doomed SELECT id FROM instances WHERE "+cond, args...)
	if err != nil {
		return 0, err
	}
	k, _ := res.RowsAffected()
	for _, q := range []string{
		"DELETE FROM spans WHERE instance_id IN (SELECT id FROM doomed)",
		"DELETE FROM instances WHERE id IN (SELECT id FROM doomed)",
	} {
		if _, err := tx.ExecContext(ctx, q); err != nil {
			return 0, err
		}
	}
	return int(k), tx.Commit()
}

// UsedBytes is the size of the database pages in use.
func (s *Store) UsedBytes(ctx context.Context) (int64, error) {
	var pages, free, size int64
	for q, dst := range map[string]*int64{"PRAGMA page_count": &pages, "PRAGMA freelist_count": &free, "PRAGMA page_size": &size} {
		if err := s.write.QueryRowContext(ctx, q).Scan(dst); err != nil {
			return 0, fmt.Errorf("sqlitestore: %w", err)
		}
	}
	return (pages - free) * size, nil
}

package pgstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// ErrRetainSize is returned by Retain for a size limit: PostgreSQL's files
// do not shrink when rows are deleted (VACUUM makes the space reusable, not
// smaller), so "delete until the database is small enough" would never
// end. Retain by age, or size the database's disk with the server's tools.
var ErrRetainSize = errors.New("pgstore: retention by size is not supported on PostgreSQL; retain by age")

// Retain deletes old runs: with maxAge > 0, the instances that finished
// more than maxAge ago, with their spans, and the idempotency records older
// than maxAge (a retry that comes after its record was deleted is applied
// again), in one transaction among the writers. It returns the number of
// instances deleted. maxBytes > 0 is refused with ErrRetainSize, before
// anything is deleted.
func (s *Store) Retain(ctx context.Context, maxAge time.Duration, maxBytes int64) (int, error) {
	if maxBytes > 0 {
		return 0, ErrRetainSize
	}
	if maxAge <= 0 {
		return 0, nil
	}
	cut := time.Now().Add(-maxAge)
	n := 0
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1, $2)", lockClass, s.lockID); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM spans WHERE instance_id IN
			(SELECT id FROM instances WHERE finished_at IS NOT NULL AND finished_at < $1)`, cut); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, "DELETE FROM instances WHERE finished_at IS NOT NULL AND finished_at < $1", cut)
		if err != nil {
			return err
		}
		n = int(tag.RowsAffected())
		_, err = tx.Exec(ctx, "DELETE FROM idempotency WHERE inserted_at < $1", cut)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("pgstore: retention by age: %w", conflict(err))
	}
	return n, nil
}

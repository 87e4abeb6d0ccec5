package sqlitestore

import "context"

// OpenVersion opens path migrated to schema version n only, as an older
// program would.
func OpenVersion(ctx context.Context, path string, n int) (*Store, error) {
	all := migrations
	migrations = migrations[:n]
	defer func() { migrations = all }()
	return Open(ctx, path, Options{})
}

package sqlitestore_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/agenttrace/agenttrace/cmd/agenttrace/internal/fastjson"
	"github.com/agenttrace/agenttrace/cmd/agenttrace/internal/sqlitestore"
	"github.com/agenttrace/agenttrace/internal/prefactorapi"
	"github.com/agenttrace/agenttrace/internal/prefactorapi/storetest"
)

func open(t *testing.T, path string) *sqlitestore.Store {
	t.Helper()
	s, err := sqlitestore.Open(context.Background(), path, sqlitestore.Options{})
	require.NoError(t, err)
	return s
}

func TestSuite(t *testing.T) {
	storetest.Run(t, func(t *testing.T) prefactorapi.Store { return open(t, filepath.Join(t.TempDir(), "test.db")) })
}

// The suite's protocol tests with the server's codec.
func TestSuiteFastJSON(t *testing.T) {
	storetest.RunWithCodec(t, func(t *testing.T) prefactorapi.Store { return open(t, filepath.Join(t.TempDir(), "test.db")) }, fastjson.Codec())
}

package pgstore_test

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/agenttrace/agenttrace/cmd/agenttrace/internal/fastjson"
	"github.com/agenttrace/agenttrace/cmd/agenttrace/internal/pgstore"
	"github.com/agenttrace/agenttrace/cmd/agenttrace/internal/pgtest"
	"github.com/agenttrace/agenttrace/internal/prefactorapi"
	"github.com/agenttrace/agenttrace/internal/prefactorapi/storetest"
)

// TestMain stops the test cluster after the tests and fails them if any
// goroutine outlives them.
func TestMain(m *testing.M) {
	code := m.Run()
	pgtest.Stop()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

func open(t testing.TB, dsn string) *pgstore.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := pgstore.Open(ctx, dsn)
	require.NoError(t, err)
	return s
}

func TestSuite(t *testing.T) {
	storetest.Run(t, func(t *testing.T) prefactorapi.Store {
		s := open(t, pgtest.NewSchema(t))
		assert.True(t, s.Trigram(), "the test server has pg_trgm")
		return s
	})
}

// The suite's protocol tests with the server's codec.
func TestSuiteFastJSON(t *testing.T) {
	storetest.RunWithCodec(t, func(t *testing.T) prefactorapi.Store { return open(t, pgtest.NewSchema(t)) }, fastjson.Codec())
}

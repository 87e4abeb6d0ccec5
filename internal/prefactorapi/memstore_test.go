package prefactorapi_test

import (
	"testing"

	"github.com/agenttrace/agenttrace/internal/prefactorapi"
	"github.com/agenttrace/agenttrace/internal/prefactorapi/storetest"
)

func TestMemoryStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) prefactorapi.Store { return prefactorapi.NewMemoryStore() })
}

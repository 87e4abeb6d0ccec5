package prefactortest

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestValidateFindsProblems(t *testing.T) {
	id := func(n int) string { return fmt.Sprintf("013xrzp12g3nqk8n%016d", n) }
	instances := map[string]Instance{id(1): {ID: id(1), Status: "active"}, id(2): {ID: id(2), Status: "active"},
		id(3): {ID: id(3), Status: "complete"}}
	spans := []Span{{ID: id(10), InstanceID: id(1), Creates: 1, Finishes: 1}}
	require.NoError(t, validate(instances, spans))
	spans = append(spans,
		Span{ID: id(11), InstanceID: id(1), ParentID: id(12), Creates: 1}, // parent created after it
		Span{ID: id(12), InstanceID: id(1), Creates: 1},
		Span{ID: id(13), InstanceID: id(2), ParentID: id(10), Creates: 1}, // parent elsewhere
		Span{ID: id(14), InstanceID: id(1), ParentID: id(99), Creates: 1}, // unknown parent
		Span{ID: id(15), InstanceID: id(4), Creates: 1},                   // unknown instance
		Span{ID: id(16), InstanceID: id(1), Creates: 2, Finishes: 2},      // twice
		Span{ID: id(17), InstanceID: id(3), Status: "active", Creates: 1}, // active under a finished instance
		Span{ID: id(18), InstanceID: id(3), Status: "complete", Creates: 1, Finishes: 1},
	)
	err := validate(instances, spans)
	require.Error(t, err)
	msg := err.Error()
	for _, want := range []string{"created before its parent", "in another instance", "unknown parent", "unknown instance",
		"created 2 times", "finished 2 times", "still active under instance " + id(3) + ", which is complete"} {
		require.Contains(t, msg, want)
	}
	require.Len(t, err.(interface{ Unwrap() []error }).Unwrap(), 7)
}

// The log keeps the bodies of the last 10,000 requests only.
func TestRequestBodiesCapped(t *testing.T) {
	s := NewServer()
	defer s.Close()
	for i := range maxBodies + 5 {
		req := httptest.NewRequest(http.MethodPost, "/api/v1/bulk", strings.NewReader(fmt.Sprintf(`{"n":%d}`, i)))
		s.serve(httptest.NewRecorder(), req)
	}
	reqs := s.Requests()
	require.Len(t, reqs, maxBodies+5)
	for i := range 5 {
		require.Nil(t, reqs[i].Body, i)
	}
	require.Equal(t, `{"n":5}`, string(reqs[5].Body))
	require.Equal(t, fmt.Sprintf(`{"n":%d}`, maxBodies+4), string(reqs[maxBodies+4].Body))
	require.Equal(t, maxBodies+5, s.Counts().Rejected["not_authenticated"])
}

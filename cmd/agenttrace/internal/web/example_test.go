package web_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/agenttrace/agenttrace/cmd/agenttrace/internal/web"
	"github.com/agenttrace/agenttrace/internal/prefactorapi"
)

// Mount serves the viewer beside an API handler on one address; a person
// who is not signed in is sent to the login form.
func ExampleMount() {
	api, err := prefactorapi.New(prefactorapi.NewMemoryStore(), prefactorapi.Config{AccountID: prefactorapi.NewPFID(1)})
	if err != nil {
		fmt.Println(err)
		return
	}
	apiHandler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "api") })
	srv := httptest.NewServer(web.Mount(apiHandler, web.Config{API: api, Token: "secret"}))
	defer srv.Close()

	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for _, p := range []string{"/api/v1/ping", "/runs"} {
		res, err := c.Get(srv.URL + p)
		if err != nil {
			fmt.Println(err)
			return
		}
		res.Body.Close()
		if loc := res.Header.Get("Location"); loc != "" {
			fmt.Println(p, res.StatusCode, "->", loc)
		} else {
			fmt.Println(p, res.StatusCode)
		}
	}
	// Output:
	// /api/v1/ping 200
	// /runs 303 -> /login?next=%2Fruns
}

// Package web is agenttrace's trace viewer: HTML, CSS and JavaScript
// embedded in the binary, served by `agenttrace serve` at / on the API's
// address. The pages read the runs, a run's spans and the agents as JSON
// from the server's store (the reads under /viewer/api/), behind the API's
// token, which a person types once at /login and then travels in an
// HttpOnly, SameSite=Strict cookie.
package web

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"embed"
	"encoding/hex"
	"errors"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/agenttrace/agenttrace/internal/prefactorapi"
)

//go:embed assets
var assets embed.FS

// CookieName is the name of the viewer's session cookie.
const CookieName = "agenttrace_session"

// Config configures a Handler.
type Config struct {
	// API is the server's protocol over its store.
	API *prefactorapi.API
	// Token is the API token; the login step asks for it.
	Token string
	// Secure marks the cookie Secure (set it when serving over TLS).
	Secure bool
	// SessionTTL is how long a login lasts (default 30 days).
	SessionTTL time.Duration
}

// Handler serves the viewer: the pages at /, /runs, /runs/{id} and
// /agents, their assets under /assets/, /login and /logout, and the
// viewer's reads under /viewer/api/.
type Handler struct {
	cfg    Config
	static http.Handler
	index  []byte
	login  *template.Template
	mux    *http.ServeMux
}

// New returns the viewer's handler.
func New(cfg Config) (*Handler, error) {
	if cfg.API == nil {
		return nil, errors.New("web: Config.API is required")
	}
	if cfg.Token == "" {
		return nil, errors.New("web: Config.Token is required")
	}
	if cfg.SessionTTL <= 0 {
		cfg.SessionTTL = 30 * 24 * time.Hour
	}
	sub, err := fs.Sub(assets, "assets")
	if err != nil {
		return nil, err
	}
	index, err := fs.ReadFile(sub, "index.html")
	if err != nil {
		return nil, err
	}
	lt, err := template.ParseFS(sub, "login.html")
	if err != nil {
		return nil, err
	}
	h := &Handler{cfg: cfg, static: http.StripPrefix("/assets/", http.FileServerFS(sub)), index: index, login: lt}
	m := http.NewServeMux()
	m.HandleFunc("GET /{$}", h.page)
	m.HandleFunc("GET /runs", h.page)
	m.HandleFunc("GET /runs/{id}", h.page)
	m.HandleFunc("GET /agents", h.page)
	m.HandleFunc("GET /assets/", h.asset)
	m.HandleFunc("GET /login", h.loginForm)
	m.HandleFunc("POST /login", h.loginPost)
	m.HandleFunc("POST /logout", h.logout)
	m.HandleFunc("GET /viewer/api/runs", h.authed(h.runs))
	m.HandleFunc("GET /viewer/api/runs/{id}", h.authed(h.run))
	m.HandleFunc("GET /viewer/api/agents", h.authed(h.agents))
	h.mux = m
	return h, nil
}

// ServeHTTP serves the viewer.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Referrer-Policy", "no-referrer")
	h.mux.ServeHTTP(w, r)
}

// session is the cookie's value: a MAC of the expiry under the token, so
// the cookie is not the token and stops working when the token changes.
func (h *Handler) session(exp int64) string {
	m := hmac.New(sha256.New, []byte(h.cfg.Token))
	m.Write([]byte("agenttrace-viewer-session\x00"))
	e := []byte(time.Unix(exp, 0).UTC().Format(time.RFC3339))
	m.Write(e)
	return string(e) + "." + hex.EncodeToString(m.Sum(nil))
}

// signedIn reports whether r carries a valid session cookie or the API
// token as a bearer or X-API-KEY header.
func (h *Handler) signedIn(r *http.Request) bool {
	if a := r.Header.Get("Authorization"); a != "" {
		t, ok := strings.CutPrefix(a, "Bearer ")
		return ok && subtle.ConstantTimeCompare([]byte(t), []byte(h.cfg.Token)) == 1
	}
	if k := r.Header.Get("X-API-KEY"); k != "" {
		return subtle.ConstantTimeCompare([]byte(k), []byte(h.cfg.Token)) == 1
	}
	c, err := r.Cookie(CookieName)
	if err != nil {
		return false
	}
	es, _, ok := strings.Cut(c.Value, ".")
	if !ok {
		return false
	}
	exp, err := time.Parse(time.RFC3339, es)
	if err != nil || time.Now().After(exp) {
		return false
	}
	return hmac.Equal([]byte(c.Value), []byte(h.session(exp.Unix())))
}

func (h *Handler) authed(f http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !h.signedIn(r) {
			writeError(w, http.StatusUnauthorized, "not_authenticated", "sign in at /login")
			return
		}
		f(w, r)
	}
}

func (h *Handler) page(w http.ResponseWriter, r *http.Request) {
	if !h.signedIn(r) {
		http.Redirect(w, r, "/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'")
	_, _ = w.Write(h.index)
}

func (h *Handler) asset(w http.ResponseWriter, r *http.Request) {
	if strings.HasSuffix(r.URL.Path, ".html") {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Cache-Control", "no-cache")
	h.static.ServeHTTP(w, r)
}

// safeNext keeps a post-login redirect on this site.
func safeNext(next string) string {
	if !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.HasPrefix(next, "/\\") {
		return "/"
	}
	return next
}

func (h *Handler) renderLogin(w http.ResponseWriter, status int, next, msg string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Security-Policy", "default-src 'self'; style-src 'self'; frame-ancestors 'none'")
	w.WriteHeader(status)
	_ = h.login.Execute(w, struct{ Next, Error string }{next, msg})
}

func (h *Handler) loginForm(w http.ResponseWriter, r *http.Request) {
	h.renderLogin(w, http.StatusOK, safeNext(r.URL.Query().Get("next")), "")
}

func (h *Handler) loginPost(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 8<<10)
	if err := r.ParseForm(); err != nil {
		h.renderLogin(w, http.StatusBadRequest, "/", "The form could not be read.")
		return
	}
	next := safeNext(r.PostForm.Get("next"))
	if subtle.ConstantTimeCompare([]byte(r.PostForm.Get("token")), []byte(h.cfg.Token)) != 1 {
		h.renderLogin(w, http.StatusUnauthorized, next, "That token is not this server's.")
		return
	}
	exp := time.Now().Add(h.cfg.SessionTTL).Unix()
	http.SetCookie(w, &http.Cookie{Name: CookieName, Value: h.session(exp), Path: "/", HttpOnly: true,
		SameSite: http.SameSiteStrictMode, Secure: h.cfg.Secure, Expires: time.Unix(exp, 0)})
	http.Redirect(w, r, next, http.StatusSeeOther)
}

func (h *Handler) logout(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{Name: CookieName, Value: "", Path: "/", HttpOnly: true,
		SameSite: http.SameSiteStrictMode, Secure: h.cfg.Secure, MaxAge: -1})
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}

func (h *Handler) runs(w http.ResponseWriter, r *http.Request) {
	q, err := parseRunQuery(r.URL.Query())
	if err != nil {
		writeError(w, http.StatusBadRequest, "invalid_value", err.Error())
		return
	}
	page, err := listRuns(r.Context(), h.cfg.API.Store(), q)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "unexpected", "the store could not be read")
		return
	}
	writeJSON(w, http.StatusOK, page)
}

func (h *Handler) run(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if !prefactorapi.ValidPFID(id) {
		writeError(w, http.StatusNotFound, "not_found", "no such run")
		return
	}
	d, ok, err := getRun(r.Context(), h.cfg.API, id)
	switch {
	case err != nil:
		writeError(w, http.StatusInternalServerError, "unexpected", "the store could not be read")
	case !ok:
		writeError(w, http.StatusNotFound, "not_found", "no such run")
	default:
		writeJSON(w, http.StatusOK, d)
	}
}

func (h *Handler) agents(w http.ResponseWriter, r *http.Request) {
	a, err := listAgents(r.Context(), h.cfg.API.Store(), r.URL.Query().Get("stats") != "false")
	if err != nil {
		writeError(w, http.StatusInternalServerError, "unexpected", "the store could not be read")
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"agents": a})
}

// Mount returns a handler serving the viewer on the address of the server
// api: requests under /api/, /healthz and /v1/traces (OTLP) go to api, the rest to the
// viewer. If the viewer cannot be made (no token), the API is still
// served and the viewer's paths answer 503 saying why.
func Mount(api http.Handler, cfg Config) http.Handler {
	viewer, err := New(cfg)
	var v http.Handler = viewer
	if err != nil {
		msg := "the viewer is unavailable: " + err.Error()
		v = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, msg, http.StatusServiceUnavailable)
		})
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := r.URL.Path
		if strings.HasPrefix(p, "/api/") || p == "/api" || p == "/healthz" || p == "/v1/traces" {
			api.ServeHTTP(w, r)
			return
		}
		v.ServeHTTP(w, r)
	})
}

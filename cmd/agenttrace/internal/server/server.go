// Package server is the agenttrace HTTP server: the Prefactor v1 ingest and
// agents APIs of prefactorapi, and the run listing of seed document 003
// (GET /api/v2/AgentInstance/{agentCode}[/{agentVersion}]), over a
// prefactorapi.Store.
package server

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/agenttrace/agenttrace/cmd/agenttrace/internal/fastjson"
	"github.com/agenttrace/agenttrace/internal/prefactorapi"
)

// The local server has one account and one default environment, with
// these IDs (the API documentation's example IDs).
const (
	AccountID     = "013xrzp12g3nqk8ngskn1wtxgka5b0nf"
	EnvironmentID = "013xrzp12g3nqk8nzxvq7jm2arsfg5h1"
)

// DefaultMaxBody is the default cap on request bodies: larger ones are
// answered 413.
const DefaultMaxBody = 16 << 20

// Config configures New.
type Config struct {
	// Store holds the data.
	Store prefactorapi.Store
	// Token gives every right. It is required.
	Token string
	// IngestTokens may only send runs (the ingest endpoints of /api/v1:
	// ping, register, start, finish, get instance, span create and finish,
	// bulk); anything else answers 403.
	IngestTokens []string
	// MaxBody caps request bodies (default DefaultMaxBody).
	MaxBody int64
	// Logger logs failures (default: discard). Tokens are never logged.
	Logger *slog.Logger
	// OTLP, when set, receives OTLP/HTTP traces at POST /v1/traces (for
	// example an otlpreceiver whose tracer exports back into this server),
	// behind the same tokens as ingest; without it that path answers 404.
	OTLP http.Handler
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Server serves the APIs.
type Server struct {
	cfg Config
	api *prefactorapi.API
	log *slog.Logger
}

// New returns a server over cfg.Store.
func New(cfg Config) (*Server, error) {
	if cfg.Store == nil {
		return nil, errors.New("server: Config.Store is required")
	}
	if cfg.Token == "" {
		return nil, errors.New("server: Config.Token is required")
	}
	if cfg.MaxBody <= 0 {
		cfg.MaxBody = DefaultMaxBody
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	api, err := prefactorapi.New(cfg.Store, prefactorapi.Config{AccountID: AccountID, EnvironmentID: EnvironmentID, Now: cfg.Now, Codec: fastjson.Codec()})
	if err != nil {
		return nil, err
	}
	return &Server{cfg: cfg, api: api, log: cfg.Logger}, nil
}

// API returns the protocol implementation the server runs.
func (s *Server) API() *prefactorapi.API { return s.api }

type scope uint8

const (
	scopeNone scope = iota
	scopeIngest
	scopeAll
)

// auth returns the scope of the request's credentials (Authorization:
// Bearer, or X-API-KEY), and whether any were given.
func (s *Server) auth(r *http.Request) (scope, bool) {
	tok := ""
	if h := r.Header.Get("Authorization"); h != "" {
		t, ok := strings.CutPrefix(h, "Bearer ")
		if !ok {
			return scopeNone, true
		}
		tok = t
	} else if h := r.Header.Get("X-API-KEY"); h != "" {
		tok = h
	} else {
		return scopeNone, false
	}
	if subtle.ConstantTimeCompare([]byte(tok), []byte(s.cfg.Token)) == 1 {
		return scopeAll, true
	}
	for _, t := range s.cfg.IngestTokens {
		if t != "" && subtle.ConstantTimeCompare([]byte(tok), []byte(t)) == 1 {
			return scopeIngest, true
		}
	}
	return scopeNone, true
}

func ingestEndpoint(ep prefactorapi.Endpoint) bool {
	switch ep {
	case prefactorapi.EndpointPing, prefactorapi.EndpointRegister, prefactorapi.EndpointStart,
		prefactorapi.EndpointFinishInstance, prefactorapi.EndpointGetInstance, prefactorapi.EndpointCreateSpan,
		prefactorapi.EndpointFinishSpan, prefactorapi.EndpointBulk, prefactorapi.EndpointRecordQuality:
		return true
	}
	return false
}

func writeJSON(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

func v1Error(w http.ResponseWriter, status int, code, msg string) {
	b, _ := json.Marshal(map[string]string{"status": "error", "code": code, "message": msg})
	writeJSON(w, status, b)
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	defer func() {
		if p := recover(); p != nil {
			if p == http.ErrAbortHandler {
				panic(p)
			}
			s.log.Error("agenttrace server: handler panic", "path", r.URL.Path, "panic", fmt.Sprint(p))
			v1Error(w, http.StatusInternalServerError, prefactorapi.CodeUnexpected, "internal error")
		}
	}()
	path := r.URL.Path
	switch {
	case path == "/healthz":
		writeJSON(w, http.StatusOK, []byte(`{"status":"ok"}`))
		return
	case strings.HasPrefix(path, "/api/v2/AgentInstance/") || path == "/api/v2/AgentInstance":
		s.serveListing(w, r)
		return
	case path == "/v1/traces":
		s.serveOTLP(w, r)
		return
	case !strings.HasPrefix(path, "/api/v1/"):
		v1Error(w, http.StatusNotFound, prefactorapi.CodeNotFound, "not found")
		return
	}
	sc, given := s.auth(r)
	switch {
	case !given:
		v1Error(w, http.StatusUnauthorized, prefactorapi.CodeNotAuthenticated, "missing bearer token")
		return
	case sc == scopeNone:
		v1Error(w, http.StatusUnauthorized, prefactorapi.CodeBadAuthToken, "Token invalid or expired")
		return
	}
	ep, id := prefactorapi.Route(r.Method, path)
	agents := false
	if ep == prefactorapi.EndpointOther {
		if ep, id = prefactorapi.RouteAgents(r.Method, path); ep != prefactorapi.EndpointOther {
			agents = true
		}
	}
	if ep == prefactorapi.EndpointOther {
		v1Error(w, http.StatusNotFound, prefactorapi.CodeNotFound, "endpoint not found")
		return
	}
	if sc == scopeIngest && !ingestEndpoint(ep) {
		v1Error(w, http.StatusForbidden, prefactorapi.CodeNotPermitted, "this token may only send runs")
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.MaxBody))
	if err != nil {
		var mb *http.MaxBytesError
		if errors.As(err, &mb) {
			v1Error(w, http.StatusRequestEntityTooLarge, prefactorapi.CodeBadRequest,
				fmt.Sprintf("the body is over the server's limit of %d bytes", s.cfg.MaxBody))
			return
		}
		v1Error(w, http.StatusBadRequest, prefactorapi.CodeBadRequest, "the body could not be read")
		return
	}
	var ans prefactorapi.Answer
	if agents {
		ans = s.api.DoAgents(r.Context(), ep, id, body, r.URL.Query())
	} else {
		ans = s.api.Do(r.Context(), ep, id, body, r.URL.Query())
	}
	if ans.Status >= 500 {
		s.log.Error("agenttrace server: request failed", "endpoint", string(ep), "status", ans.Status)
	}
	writeJSON(w, ans.Status, ans.Body)
}

// Ping checks the store answers.
func (s *Server) Ping(ctx context.Context) error {
	return s.cfg.Store.View(ctx, func(tx prefactorapi.ReadTx) error {
		_, _, err := tx.Instance("00000000000000000000000000000000")
		return err
	})
}

// serveOTLP hands an authenticated OTLP/HTTP request to Config.OTLP.
func (s *Server) serveOTLP(w http.ResponseWriter, r *http.Request) {
	if s.cfg.OTLP == nil {
		v1Error(w, http.StatusNotFound, prefactorapi.CodeNotFound, "OTLP ingest is not enabled")
		return
	}
	if sc, given := s.auth(r); !given || sc == scopeNone {
		v1Error(w, http.StatusUnauthorized, prefactorapi.CodeBadAuthToken, "missing or invalid bearer token")
		return
	}
	s.cfg.OTLP.ServeHTTP(w, r) // it caps bodies itself (413)
}

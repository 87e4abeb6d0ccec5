package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/agenttrace/agenttrace"
	"github.com/agenttrace/agenttrace/bridge/otel/otlpreceiver"
	"github.com/agenttrace/agenttrace/cmd/agenttrace/internal/pgstore"
	"github.com/agenttrace/agenttrace/cmd/agenttrace/internal/server"
	"github.com/agenttrace/agenttrace/cmd/agenttrace/internal/sqlitestore"
	"github.com/agenttrace/agenttrace/cmd/agenttrace/internal/web"
	"github.com/agenttrace/agenttrace/exporter/prefactor"
	"github.com/agenttrace/agenttrace/internal/prefactorapi"
)

// defaultDB is the database path: under $XDG_STATE_HOME when set, else
// under os.UserConfigDir.
func defaultDB() string {
	dir := os.Getenv("XDG_STATE_HOME")
	if dir == "" {
		d, err := os.UserConfigDir()
		if err != nil {
			d = "."
		}
		dir = d
	}
	return filepath.Join(dir, "agenttrace", "agenttrace.db")
}

// tokenPath is where a generated token is kept: beside the database.
func tokenPath(db string) string { return db + ".token" }

// loadOrCreateToken reads the token saved beside the database, or makes
// one and saves it (mode 0600). created reports a new token.
func loadOrCreateToken(db string) (tok string, created bool, err error) {
	p := tokenPath(db)
	b, err := os.ReadFile(p)
	if err == nil {
		if t := strings.TrimSpace(string(b)); t != "" {
			return t, false, nil
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return "", false, err
	}
	var raw [24]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", false, err
	}
	tok = "at_" + hex.EncodeToString(raw[:])
	if err := os.WriteFile(p, []byte(tok+"\n"), 0o600); err != nil {
		return "", false, err
	}
	return tok, true, nil
}

func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

type storeFlags struct {
	db   string
	sync string
}

func (f *storeFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.db, "db", defaultDB(), "the SQLite database file, or a postgres:// URL for PostgreSQL")
	fs.StringVar(&f.sync, "sync", "normal", "SQLite synchronous mode: normal (a commit survives the process being killed) or full (also power loss)")
}

// store is what the commands need of a store: the protocol's, plus
// retention.
type store interface {
	prefactorapi.Store
	Retain(ctx context.Context, maxAge time.Duration, maxBytes int64) (int, error)
}

// isPostgres reports whether db names a PostgreSQL database (a URL) rather
// than a SQLite file.
func isPostgres(db string) bool {
	return strings.HasPrefix(db, "postgres://") || strings.HasPrefix(db, "postgresql://")
}

// open opens the SQLite file (made with its directory if missing) or, for a
// postgres:// URL, the PostgreSQL database.
func (f *storeFlags) open(ctx context.Context) (store, error) {
	if isPostgres(f.db) {
		return pgstore.Open(ctx, f.db)
	}
	if err := os.MkdirAll(filepath.Dir(f.db), 0o700); err != nil {
		return nil, err
	}
	return sqlitestore.Open(ctx, f.db, sqlitestore.Options{Synchronous: strings.ToUpper(f.sync)})
}

// tokenFile is where the generated token is kept: beside a SQLite file, or
// under the default state directory for PostgreSQL.
func (f *storeFlags) tokenFile() string {
	if isPostgres(f.db) {
		return defaultDB()
	}
	return f.db
}

// describe names the database for a log line, without a PostgreSQL URL's
// password.
func (f *storeFlags) describe() string {
	if !isPostgres(f.db) {
		return f.db
	}
	if u, err := url.Parse(f.db); err == nil {
		u.User = nil
		u.RawQuery = ""
		return "PostgreSQL " + u.Redacted()
	}
	return "PostgreSQL"
}

// defaultGCPercent is the server's default GOGC: ingest allocates short-lived
// request and answer values over a small live heap (a few MiB), and
// collecting at 400% growth instead of 100% spends about 15% less CPU per
// span (BenchmarkExportToServer) for a peak heap still in tens of MiB.
const defaultGCPercent = 400

func serve(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fl := flag.NewFlagSet("serve", flag.ContinueOnError)
	fl.SetOutput(stderr)
	var sf storeFlags
	sf.register(fl)
	addr := fl.String("addr", "127.0.0.1:7411", "the address to listen on; an address other than loopback needs --token")
	token := fl.String("token", os.Getenv("AGENTTRACE_TOKEN"), "the token clients must send (default $AGENTTRACE_TOKEN, else one generated and saved beside the database)")
	ingest := fl.String("ingest-token", "", "an extra token that may only send runs (for agents); reads with it are 403")
	maxBody := fl.Int64("max-body", server.DefaultMaxBody, "the largest request body in bytes; larger ones are answered 413")
	retainAge := fl.Duration("retain-age", 0, "delete finished runs older than this (e.g. 720h); 0 keeps them")
	retainMB := fl.Int64("retain-mb", 0, "delete the oldest runs while the database is larger than this many MiB; 0: no limit")
	gcPercent := fl.Int("gc-percent", defaultGCPercent, "the garbage collector's target heap growth in percent (GOGC); the GOGC environment variable, when set, wins")
	fl.Usage = func() {
		fmt.Fprintf(fl.Output(), "Usage: agenttrace serve [flags]\n\nRuns the server: Prefactor v1 ingest and agents under /api/v1, the run listing under /api/v2/AgentInstance, OTLP/HTTP traces at /v1/traces, and the web viewer at /.\n\nFlags:\n")
		fl.PrintDefaults()
	}
	if err := fl.Parse(args); err != nil {
		return err
	}
	if fl.NArg() > 0 {
		fl.Usage()
		return errUsage
	}
	if *token == "" && !isLoopback(*addr) {
		return fmt.Errorf("listening on %s (not loopback) needs a token: pass --token or set AGENTTRACE_TOKEN", *addr)
	}
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(*gcPercent)
	}
	if *retainMB > 0 && isPostgres(sf.db) {
		return errors.New("--retain-mb is for SQLite: PostgreSQL's files do not shrink when rows are deleted; use --retain-age")
	}
	st, err := sf.open(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	if *token == "" {
		if *token, err = savedToken(&sf, stdout); err != nil {
			return err
		}
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	var ingestTokens []string
	if *ingest != "" {
		ingestTokens = []string{*ingest}
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	otlp, stopOTLP, err := otlpIngest(ln.Addr().String(), *token, log)
	if err != nil {
		ln.Close()
		return err
	}
	defer stopOTLP()
	srv, err := server.New(server.Config{Store: st, Token: *token, IngestTokens: ingestTokens, MaxBody: *maxBody, Logger: log, OTLP: otlp})
	if err != nil {
		ln.Close()
		return err
	}
	hs := &http.Server{Handler: web.Mount(srv, web.Config{API: srv.API(), Token: *token}), ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	fmt.Fprintf(stdout, "agenttrace: serving http://%s (database %s)\n", ln.Addr(), sf.describe())
	fmt.Fprintf(stdout, "  viewer: http://%s/ (sign in with the token)\n", ln.Addr())
	fmt.Fprintf(stdout, "  export PREFACTOR_API_URL=http://%s PREFACTOR_API_TOKEN=<the token>\n", ln.Addr())
	return serveUntilStopped(ctx, hs, ln, stopOTLP, func(ctx context.Context) { retain(ctx, st, *retainAge, *retainMB<<20, log) })
}

// serveUntilStopped serves hs on ln, with the retention loop beside it, until the server
// fails or ctx ends or the process is interrupted (SIGINT, SIGTERM); then
// it stops OTLP ingest while the server still takes what it sends, shuts
// the server down within 10 s and waits for the retention loop.
func serveUntilStopped(ctx context.Context, hs *http.Server, ln net.Listener, stopOTLP func(), retainLoop func(context.Context)) error {
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	retainDone := make(chan struct{})
	go func() {
		defer close(retainDone)
		retainLoop(ctx)
	}()
	var err error
	select {
	case err = <-errc:
	case <-ctx.Done():
		stopOTLP()
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err = hs.Shutdown(sctx)
		cancel()
		<-errc
	}
	stop()
	<-retainDone
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

// savedToken returns the token saved beside the database, generating and
// saving one (and printing it) at first start.
func savedToken(sf *storeFlags, stdout io.Writer) (string, error) {
	tok, created, err := loadOrCreateToken(sf.tokenFile())
	if err != nil {
		return "", fmt.Errorf("token: %w", err)
	}
	if created {
		fmt.Fprintf(stdout, "agenttrace: generated a token, saved to %s (mode 0600):\n  %s\n", tokenPath(sf.tokenFile()), tok)
	} else {
		fmt.Fprintf(stdout, "agenttrace: using the token saved in %s\n", tokenPath(sf.tokenFile()))
	}
	return tok, nil
}

// retain deletes runs by age and size at start and every 10 minutes until
// ctx ends; with neither limit it returns at once.
func retain(ctx context.Context, st store, maxAge time.Duration, maxBytes int64, log *slog.Logger) {
	if maxAge <= 0 && maxBytes <= 0 {
		return
	}
	t := time.NewTicker(10 * time.Minute)
	defer t.Stop()
	for {
		n, err := st.Retain(ctx, maxAge, maxBytes)
		if err != nil && ctx.Err() == nil {
			log.Error("agenttrace: retention", "err", err)
		} else if n > 0 {
			log.Info("agenttrace: retention deleted runs", "runs", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

var _ prefactorapi.Store = (*sqlitestore.Store)(nil)

// otlpIngest returns the handler for POST /v1/traces: OTLP spans go through
// the OpenTelemetry bridge's mapping into a tracer whose Prefactor exporter
// sends them to this same server, so they are stored exactly as runs sent by
// the library are. stop delivers what is left and stops it.
func otlpIngest(addr, token string, log *slog.Logger) (h http.Handler, stop func(), err error) {
	exp, err := prefactor.New(prefactor.WithURL("http://"+addr), prefactor.WithToken(token),
		prefactor.WithAgentVersion("otlp", "1"))
	if err != nil {
		return nil, nil, err
	}
	tr, err := agenttrace.New(agenttrace.WithExporter(exp), agenttrace.WithLogger(log))
	if err != nil {
		return nil, nil, err
	}
	rcv := otlpreceiver.New(tr)
	var once sync.Once
	stop = func() { once.Do(func() { shutdownOTLP(rcv, tr, log) }) }
	return rcv, stop, nil
}

func shutdownOTLP(rcv *otlpreceiver.Receiver, tr *agenttrace.Tracer, log *slog.Logger) {
	{
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := errors.Join(rcv.Shutdown(ctx), tr.Shutdown(ctx)); err != nil {
			log.Warn("agenttrace: OTLP ingest did not deliver everything at shutdown", "err", err)
		}
	}
}

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
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/agenttrace/agenttrace/cmd/agenttrace/internal/server"
	"github.com/agenttrace/agenttrace/cmd/agenttrace/internal/sqlitestore"
	"github.com/agenttrace/agenttrace/cmd/agenttrace/internal/web"
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
	fs.StringVar(&f.db, "db", defaultDB(), "the SQLite database file")
	fs.StringVar(&f.sync, "sync", "normal", "SQLite synchronous mode: normal (a commit survives the process being killed) or full (also power loss)")
}

func (f *storeFlags) open(ctx context.Context) (*sqlitestore.Store, error) {
	if err := os.MkdirAll(filepath.Dir(f.db), 0o700); err != nil {
		return nil, err
	}
	return sqlitestore.Open(ctx, f.db, sqlitestore.Options{Synchronous: strings.ToUpper(f.sync)})
}

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
	fl.Usage = func() {
		fmt.Fprintf(fl.Output(), "Usage: agenttrace serve [flags]\n\nRuns the server: Prefactor v1 ingest and agents under /api/v1, the run listing under /api/v2/AgentInstance.\n\nFlags:\n")
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
	st, err := sf.open(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	if *token == "" {
		tok, created, err := loadOrCreateToken(sf.db)
		if err != nil {
			return fmt.Errorf("token: %w", err)
		}
		*token = tok
		if created {
			fmt.Fprintf(stdout, "agenttrace: generated a token, saved to %s (mode 0600):\n  %s\n", tokenPath(sf.db), tok)
		} else {
			fmt.Fprintf(stdout, "agenttrace: using the token saved in %s\n", tokenPath(sf.db))
		}
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	var ingestTokens []string
	if *ingest != "" {
		ingestTokens = []string{*ingest}
	}
	srv, err := server.New(server.Config{Store: st, Token: *token, IngestTokens: ingestTokens, MaxBody: *maxBody, Logger: log})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	hs := &http.Server{Handler: web.Mount(srv, web.Config{API: srv.API(), Token: *token}), ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	fmt.Fprintf(stdout, "agenttrace: serving http://%s (database %s)\n", ln.Addr(), sf.db)
	fmt.Fprintf(stdout, "  export PREFACTOR_API_URL=http://%s PREFACTOR_API_TOKEN=<the token>\n", ln.Addr())
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	retainDone := make(chan struct{})
	go func() {
		defer close(retainDone)
		if *retainAge <= 0 && *retainMB <= 0 {
			return
		}
		t := time.NewTicker(10 * time.Minute)
		defer t.Stop()
		for {
			n, err := st.Retain(ctx, *retainAge, *retainMB<<20)
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
	}()
	select {
	case err = <-errc:
	case <-ctx.Done():
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

var _ prefactorapi.Store = (*sqlitestore.Store)(nil)

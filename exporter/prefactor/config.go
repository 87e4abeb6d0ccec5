package prefactor

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
)

// Version is this exporter's version, sent in the X-Prefactor-SDK header
// as agenttrace-go@<Version>.
const Version = "0.1.0"

// Environment variables New reads. Options override them.
const (
	EnvAPIURL        = "PREFACTOR_API_URL"
	EnvAPIToken      = "PREFACTOR_API_TOKEN"
	EnvAgentID       = "PREFACTOR_AGENT_ID"
	EnvEnvironmentID = "PREFACTOR_ENVIRONMENT_ID"
	EnvAgentName     = "PREFACTOR_AGENT_NAME"
	// EnvAgentVersion is the agent version's external identifier (the
	// official SDKs call it the agent identifier).
	EnvAgentVersion = "PREFACTOR_AGENT_IDENTIFIER"
)

// DefaultURL is the production API.
const DefaultURL = "https://app.prefactorai.com"

// ErrConfig is wrapped by the errors New returns for a bad configuration.
var ErrConfig = errors.New("prefactor: invalid configuration")

// Mode chooses how records are sent.
type Mode int

// Modes.
const (
	// ModeAuto sends batches to the bulk endpoint and falls back to single
	// requests for good if the server does not offer it (404, 405 or 501).
	ModeAuto Mode = iota
	// ModeBulk always uses the bulk endpoint.
	ModeBulk
	// ModeSingle sends one request per operation.
	ModeSingle
)

// String returns "auto", "bulk" or "single".
func (m Mode) String() string {
	switch m {
	case ModeBulk:
		return "bulk"
	case ModeSingle:
		return "single"
	}
	return "auto"
}

// Retry configures retries of transient failures: network errors,
// timeouts, 429 and 5xx.
type Retry struct {
	// Initial is the wait before the first retry (default 500ms); each
	// retry waits Multiplier times longer (default 2), at most Max (default
	// 5s), with jitter over the upper half. A longer Retry-After header
	// is honoured (up to 5 minutes). While the circuit breaker is open,
	// retries wait for it instead (one probe per cooldown).
	Initial, Max time.Duration
	Multiplier   float64
	// Deadline bounds one operation, all attempts included (default 2m),
	// from when its record reached the exporter (for a span waiting for a
	// pending ancestor, from when the ancestor resolved). Nothing else cuts
	// it short: the tracer's export timeout does not apply to this
	// exporter. An outage shorter than Deadline loses nothing that fits in
	// the tracer's queue.
	Deadline time.Duration
	// AttemptTimeout bounds one HTTP attempt (default 10s).
	AttemptTimeout time.Duration
}

// Breaker configures the circuit breaker: after Failures consecutive
// transient failures (default 5) requests stop for Cooldown (default 1s,
// doubling on each failed probe up to MaxCooldown, default 2s), then one
// probe request is let through; its success closes the breaker and every
// waiting request goes at once. Delivery thus resumes within about
// MaxCooldown of the server coming back.
type Breaker struct {
	Failures              int
	Cooldown, MaxCooldown time.Duration
}

type config struct {
	url                    string
	rawToken               string        // set by options; cleared once New checked it
	token                  func() string // a func, so no printing of the config shows it
	clock                  clock
	agentID, envID         string
	agentName, agentVers   string // WithAgentVersion
	envAgentName, envAgent string // PREFACTOR_AGENT_NAME, PREFACTOR_AGENT_IDENTIFIER
	client                 *http.Client
	userClient             bool
	mode                   Mode
	retry                  Retry
	breaker                Breaker
	pollInterval           time.Duration
	concurrency            int
	maxBulkItems           int
	maxBulkBytes           int
	sdkEntries             []string
	onError                func(error)
	logger                 *slog.Logger
	noPing                 bool
	noUpdateVersion        bool
}

// Option configures New.
type Option func(*config)

// WithURL sets the API base URL (default PREFACTOR_API_URL, else
// DefaultURL). A path is kept: requests go to <url>/api/v1/....
func WithURL(u string) Option { return func(c *config) { c.url = u } }

// WithToken sets the API token (default PREFACTOR_API_TOKEN). Account- and
// deployment-scoped tokens both work; with a deployment-scoped token leave
// the agent and environment IDs unset.
func WithToken(token string) Option { return func(c *config) { c.rawToken = token } }

// WithAgentID sets the agent's PFID (default PREFACTOR_AGENT_ID; required
// with an account-scoped token). Its partition is used for the IDs the
// exporter chooses.
func WithAgentID(id string) Option { return func(c *config) { c.agentID = id } }

// WithEnvironmentID sets the environment's PFID (default
// PREFACTOR_ENVIRONMENT_ID; required with an account-scoped token).
func WithEnvironmentID(id string) Option { return func(c *config) { c.envID = id } }

// WithAgentVersion sets the agent name and version external identifier
// registered with each instance. The defaults are the tracer's
// agenttrace.WithAgent values, then PREFACTOR_AGENT_NAME and
// PREFACTOR_AGENT_IDENTIFIER, then "agent" and "v1.0.0".
func WithAgentVersion(name, version string) Option {
	return func(c *config) { c.agentName, c.agentVers = name, version }
}

// WithHTTPClient sets the HTTP client (default: a client with its own
// transport). Per-attempt timeouts come from Retry.AttemptTimeout.
func WithHTTPClient(hc *http.Client) Option { return func(c *config) { c.client = hc } }

// WithMode chooses bulk or single requests (default ModeAuto).
func WithMode(m Mode) Option { return func(c *config) { c.mode = m } }

// WithRetry sets the retry policy; zero fields keep their defaults.
func WithRetry(r Retry) Option { return func(c *config) { c.retry = r } }

// WithBreaker sets the circuit breaker; zero fields keep their defaults.
func WithBreaker(b Breaker) Option { return func(c *config) { c.breaker = b } }

// WithPollInterval sets how often running instances are polled for
// termination (default 30s; negative turns polling off: termination is
// then learnt from span responses only).
func WithPollInterval(d time.Duration) Option { return func(c *config) { c.pollInterval = d } }

// WithConcurrency sets how many instances are sent concurrently (default
// 8). Each instance's requests stay in order.
func WithConcurrency(n int) Option { return func(c *config) { c.concurrency = n } }

// WithBulkLimits caps one bulk request (defaults 500 items, 4 MiB).
func WithBulkLimits(items, bytes int) Option {
	return func(c *config) { c.maxBulkItems, c.maxBulkBytes = items, bytes }
}

// WithSDKEntry adds an integration's name@version in front of this
// library's entry in the X-Prefactor-SDK header.
func WithSDKEntry(entry string) Option {
	return func(c *config) { c.sdkEntries = append(c.sdkEntries, entry) }
}

// WithErrorHandler sets a function called, on the exporter's goroutine,
// with each error that loses data or stops the exporter. It must not
// block.
func WithErrorHandler(f func(error)) Option { return func(c *config) { c.onError = f } }

// WithLogger sets the logger for the exporter's messages: records not
// delivered (rate limited, one line a minute per reason), a stopped
// exporter, terminations. The default is slog.Default(), read when a
// message is logged; slog.New(slog.DiscardHandler) silences them.
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.logger = l } }

// WithoutPing skips the token check before the first request.
func WithoutPing() Option { return func(c *config) { c.noPing = true } }

// WithoutUpdateCurrentVersion registers instances with
// update_current_version false, leaving the deployment's pinned version
// alone.
func WithoutUpdateCurrentVersion() Option { return func(c *config) { c.noUpdateVersion = true } }

func newConfig(opts []Option) (config, error) {
	c := config{
		url:          os.Getenv(EnvAPIURL),
		rawToken:     os.Getenv(EnvAPIToken),
		agentID:      os.Getenv(EnvAgentID),
		envID:        os.Getenv(EnvEnvironmentID),
		envAgentName: os.Getenv(EnvAgentName),
		envAgent:     os.Getenv(EnvAgentVersion),
		pollInterval: 30 * time.Second,
		concurrency:  8,
		maxBulkItems: 500,
		maxBulkBytes: 4 << 20,
	}
	for _, o := range opts {
		if o != nil {
			o(&c)
		}
	}
	if c.url == "" {
		c.url = DefaultURL
	}
	tok := c.rawToken
	c.rawToken = ""
	c.token = func() string { return tok }
	u, err := url.Parse(c.url)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		// The URL is not echoed: it may carry credentials.
		return c, fmt.Errorf("%w: the API URL must be an absolute http(s) URL without query (got %s)", ErrConfig, redactURL(c.url))
	}
	c.url = strings.TrimRight(c.url, "/")
	if strings.TrimSpace(tok) == "" {
		return c, fmt.Errorf("%w: empty API token (set %s or use WithToken)", ErrConfig, EnvAPIToken)
	}
	if i := strings.IndexFunc(tok, func(r rune) bool { return r < 0x20 || r == 0x7f }); i >= 0 {
		return c, fmt.Errorf("%w: the API token contains a control character (at byte %d); it cannot be sent in a header", ErrConfig, i)
	}
	for _, f := range []struct{ name, v string }{{"agent ID", c.agentID}, {"environment ID", c.envID}} {
		if f.v != "" && !ValidPFID(f.v) {
			return c, fmt.Errorf("%w: %s %q is not a PFID", ErrConfig, f.name, clip(f.v))
		}
	}
	if c.mode < ModeAuto || c.mode > ModeSingle {
		return c, fmt.Errorf("%w: unknown mode %d", ErrConfig, c.mode)
	}
	r := &c.retry
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&r.Initial, 500*time.Millisecond)
	def(&r.Max, 5*time.Second)
	def(&r.Deadline, 2*time.Minute)
	def(&r.AttemptTimeout, 10*time.Second)
	if r.Multiplier < 1 {
		r.Multiplier = 2
	}
	b := &c.breaker
	if b.Failures <= 0 {
		b.Failures = 5
	}
	def(&b.Cooldown, time.Second)
	def(&b.MaxCooldown, 2*time.Second)
	if c.pollInterval == 0 {
		c.pollInterval = 30 * time.Second
	}
	if c.concurrency <= 0 {
		c.concurrency = 8
	}
	if c.maxBulkItems <= 0 {
		c.maxBulkItems = 500
	}
	if c.maxBulkBytes <= 0 {
		c.maxBulkBytes = 4 << 20
	}
	c.userClient = c.client != nil
	if c.client == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.MaxIdleConnsPerHost = 32
		// A bulk body that fits the write buffer goes out without the
		// 32 KiB copy buffer net/http would otherwise allocate per request.
		tr.WriteBufferSize = 64 << 10
		c.client = &http.Client{Transport: tr}
	}
	if c.clock == nil {
		c.clock = realClock{}
	}
	return c, nil
}

package agenttrace

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// Defaults of the pipeline and payload limits.
const (
	DefaultMaxQueueRecords = 16384
	DefaultMaxQueueBytes   = 64 << 20
	DefaultMaxBatchRecords = 512
	DefaultMaxBatchBytes   = 4 << 20
	DefaultFlushInterval   = time.Second
	DefaultExportTimeout   = 30 * time.Second
	DefaultPayloadLimit    = 256 << 10
)

// The largest queue limits WithQueueLimits accepts: a queue's record and
// byte counts share one atomic word.
const (
	MaxQueueRecords = 1<<(63-usedBits) - 1
	MaxQueueBytes   = 1<<usedBits - 1
)

type config struct {
	exporters       []Exporter
	agent           Agent
	spanTypes       []SpanType
	noDefaultTypes  bool
	maxQueueRecords int
	maxQueueBytes   int
	maxBatchRecords int
	maxBatchBytes   int
	flushInterval   time.Duration
	exportTimeout   time.Duration
	blockTimeout    time.Duration
	payloadLimit    int
	redactor        Redactor
	parentExtractor func(context.Context) (TraceParent, bool)
	logger          *slog.Logger
	logInterval     time.Duration
	clock           func() time.Time
	clockSet        bool // WithClock was given
}

// Option configures a Tracer.
type Option interface {
	apply(config) config
}

type optionFunc func(config) config

func (f optionFunc) apply(c config) config { return f(c) }

// WithExporter adds exporters. Each exporter gets its own bounded queue and
// worker goroutine, so a slow exporter never stalls another. With no
// exporter, records are counted and discarded.
func WithExporter(exporters ...Exporter) Option {
	return optionFunc(func(c config) config {
		c.exporters = append(c.exporters, exporters...)
		return c
	})
}

// WithAgent names the agent and its version; they go on every instance.
func WithAgent(name, version string) Option {
	return optionFunc(func(c config) config {
		c.agent.Name, c.agent.Version = name, version
		return c
	})
}

// WithAgentID sets the backend's id of the agent, for exporters that need
// one.
func WithAgentID(id string) Option {
	return optionFunc(func(c config) config {
		c.agent.ID = id
		return c
	})
}

// WithSpanTypes registers span types beside the defaults (agent, llm, tool,
// chain). A type with the name of a default replaces it.
func WithSpanTypes(types ...SpanType) Option {
	return optionFunc(func(c config) config {
		c.spanTypes = append(c.spanTypes, types...)
		return c
	})
}

// WithoutDefaultSpanTypes leaves out the built-in span types.
func WithoutDefaultSpanTypes() Option {
	return optionFunc(func(c config) config {
		c.noDefaultTypes = true
		return c
	})
}

// WithQueueLimits bounds each exporter's queue by record count and by bytes
// (payload bytes plus a fixed overhead per record, including the records
// being exported or held by the exporter). The limits are at most
// MaxQueueRecords and MaxQueueBytes. When a limit is reached new records are dropped and counted,
// or, with WithBlockOnFull, the recording call waits.
func WithQueueLimits(maxRecords, maxBytes int) Option {
	return optionFunc(func(c config) config {
		c.maxQueueRecords, c.maxQueueBytes = maxRecords, maxBytes
		return c
	})
}

// WithBatchLimits bounds each batch handed to an exporter.
func WithBatchLimits(maxRecords, maxBytes int) Option {
	return optionFunc(func(c config) config {
		c.maxBatchRecords, c.maxBatchBytes = maxRecords, maxBytes
		return c
	})
}

// WithFlushInterval sets how long records wait before they are exported
// when no batch fills up. It is also the coalescing window: a span that
// starts and ends within one window is exported once, in its final state.
func WithFlushInterval(d time.Duration) Option {
	return optionFunc(func(c config) config {
		c.flushInterval = d
		return c
	})
}

// WithExportTimeout bounds each call to a synchronous exporter's Export
// (default 30s). It does not apply to an AsyncExporter (the Prefactor
// exporter is one), which bounds its own work: there the export timeout
// never cuts an operation's retries short; its retry deadline does.
func WithExportTimeout(d time.Duration) Option {
	return optionFunc(func(c config) config {
		c.exportTimeout = d
		return c
	})
}

// WithBlockOnFull makes recording wait up to d for room in a full queue
// instead of dropping at once. The record is dropped (and counted) when d
// passes. Waiting is the only way recording can block; it never waits for
// I/O itself, only for the exporter to make room.
func WithBlockOnFull(d time.Duration) Option {
	return optionFunc(func(c config) config {
		c.blockTimeout = d
		return c
	})
}

// WithPayloadLimit caps the encoded size of each payload (default 256 KiB,
// at least 1 KiB). A larger payload is truncated to valid JSON that says so.
func WithPayloadLimit(n int) Option {
	return optionFunc(func(c config) config {
		c.payloadLimit = n
		return c
	})
}

// WithRedactor installs a hook that sees every payload before it is stored.
func WithRedactor(r Redactor) Option {
	return optionFunc(func(c config) config {
		c.redactor = r
		return c
	})
}

// WithLogger sets the logger for the tracer's own messages: dropped and
// failed records, recording problems, and why Shutdown waits;
// rate-limited (see WithLogInterval). The default is slog.Default(), read
// when a message is logged; slog.New(slog.DiscardHandler) silences them.
func WithLogger(l *slog.Logger) Option {
	return optionFunc(func(c config) config {
		c.logger = l
		return c
	})
}

// WithLogInterval sets the least time between two log lines about the same
// kind of trouble (default 10s).
func WithLogInterval(d time.Duration) Option {
	return optionFunc(func(c config) config {
		c.logInterval = d
		return c
	})
}

// WithClock replaces the tracer's clock, for tests. The default reads
// time.Now once a second and the monotonic clock in between (one clock read
// per timestamp instead of two).
func WithClock(now func() time.Time) Option {
	return optionFunc(func(c config) config {
		c.clock, c.clockSet = now, true
		return c
	})
}

// ErrInvalidOption is wrapped by the errors New returns for bad options.
var ErrInvalidOption = errors.New("agenttrace: invalid option")

func newConfig(opts []Option) (config, error) {
	c := config{
		maxQueueRecords: DefaultMaxQueueRecords,
		maxQueueBytes:   DefaultMaxQueueBytes,
		maxBatchRecords: DefaultMaxBatchRecords,
		maxBatchBytes:   DefaultMaxBatchBytes,
		flushInterval:   DefaultFlushInterval,
		exportTimeout:   DefaultExportTimeout,
		payloadLimit:    DefaultPayloadLimit,
		logInterval:     10 * time.Second,
	}
	for _, o := range opts {
		if o != nil {
			c = o.apply(c)
		}
	}
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: "+format, append([]any{ErrInvalidOption}, args...)...))
	}
	if c.maxQueueRecords < 1 || c.maxQueueBytes < 1 {
		bad("queue limits must be positive (got %d records, %d bytes)", c.maxQueueRecords, c.maxQueueBytes)
	}
	if c.maxQueueRecords > MaxQueueRecords || c.maxQueueBytes > MaxQueueBytes {
		bad("queue limits must be at most %d records and %d bytes (got %d records, %d bytes)",
			MaxQueueRecords, MaxQueueBytes, c.maxQueueRecords, c.maxQueueBytes)
	}
	if c.maxBatchRecords < 1 || c.maxBatchBytes < 1 {
		bad("batch limits must be positive (got %d records, %d bytes)", c.maxBatchRecords, c.maxBatchBytes)
	}
	if c.flushInterval <= 0 || c.exportTimeout <= 0 {
		bad("flush interval and export timeout must be positive")
	}
	if c.blockTimeout < 0 {
		bad("block timeout must not be negative")
	}
	if c.payloadLimit < minPayloadLimit {
		bad("payload limit %d is below the minimum %d", c.payloadLimit, minPayloadLimit)
	}
	if c.payloadLimit > c.maxQueueBytes/4 && c.maxQueueBytes >= 1 {
		bad("payload limit %d must be at most a quarter of the queue byte limit %d", c.payloadLimit, c.maxQueueBytes)
	}
	if len(c.exporters) > maxExporters {
		bad("at most %d exporters", maxExporters)
	}
	for i, e := range c.exporters {
		if e == nil {
			bad("exporter %d is nil", i)
		}
	}
	if c.clockSet && c.clock == nil {
		bad("clock is nil")
	}
	if c.clock == nil {
		c.clock = newFastClock().now
	}
	return c, errors.Join(errs...)
}

// log returns the logger for the tracer's messages: WithLogger's, else
// slog.Default() as it is now.
func (c *config) log() *slog.Logger {
	if c.logger != nil {
		return c.logger
	}
	return slog.Default()
}

package llmhttp

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/agenttrace/agenttrace"
)

// Price is what a model charges, in USD per million tokens.
type Price struct {
	Input float64 `json:"input"`
	// CachedInput is the price of input read from the prompt cache; 0
	// means Input.
	CachedInput float64 `json:"cached_input,omitempty"`
	// CacheWrite5m and CacheWrite1h are the prices of input written to the
	// cache with a 5-minute and a 1-hour lifetime (Anthropic); 0 means
	// Input. A cache write of unknown lifetime is priced as 5 minutes.
	CacheWrite5m float64 `json:"cache_write_5m,omitempty"`
	CacheWrite1h float64 `json:"cache_write_1h,omitempty"`
	Output       float64 `json:"output"`
	// Reasoning is the price of reasoning tokens; 0 means Output (every
	// current provider bills them as output).
	Reasoning float64 `json:"reasoning,omitempty"`
	// AudioInput and AudioOutput price audio tokens; 0 means Input and
	// Output.
	AudioInput  float64 `json:"audio_input,omitempty"`
	AudioOutput float64 `json:"audio_output,omitempty"`
	// LongContextAbove and LongContext: when a request's prompt has more
	// tokens than LongContextAbove, the whole request is priced at
	// LongContext (Gemini Pro and Claude Sonnet's 1M context).
	LongContextAbove int64  `json:"long_context_above,omitempty"`
	LongContext      *Price `json:"long_context,omitempty"`
}

// ModelPrice prices the models whose names match Pattern, from From on.
type ModelPrice struct {
	// Pattern is a regular expression matched against the whole model name,
	// lower-cased, with a "vendor/" prefix (OpenRouter's) removed; a name
	// with a dated-snapshot or alias suffix (-2024-08-06, -20250514, @...,
	// -001, -latest, -preview-...) also matches as its base name.
	Pattern string `json:"pattern"`
	// Provider restricts the entry to one provider (gen_ai.provider.name);
	// empty matches any.
	Provider string `json:"provider,omitempty"`
	// From is when the price took effect; the zero time means always.
	From time.Time `json:"from,omitzero"`
	Price
}

// PriceTable finds the price of a model. Entries added later (With) take
// precedence over earlier ones; among entries that match, the one in effect
// at the call's time is used.
type PriceTable struct {
	entries []priceEntry // newest precedence first
	asOf    string
	// matches caches, per provider and model name, the entries whose
	// pattern matches (the regular expressions run once per name).
	matches sync.Map // matchKey -> []int
	cached  atomic.Int64
}

type matchKey struct{ provider, model string }

// maxCachedNames bounds the match cache; names beyond it are matched
// every time.
const maxCachedNames = 4096

type priceEntry struct {
	ModelPrice
	lit string         // the pattern, when it is a literal name
	re  *regexp.Regexp // else the pattern, anchored
}

// match reports whether the entry's pattern matches the whole of name.
func (e *priceEntry) match(name string) bool {
	if e.re == nil {
		return name == e.lit
	}
	return e.re.MatchString(name)
}

// literal returns the name a pattern matches when it matches only one
// (most do): a table of literal names keeps no compiled expressions,
// which would be a third of a megabyte for the built-in table, for the
// garbage collector to mark on every cycle.
func literal(pattern string) (string, bool) {
	re, err := regexp.Compile(pattern)
	if err != nil {
		return "", false
	}
	return re.LiteralPrefix()
}

// NewPriceTable returns a table of the given prices, earlier ones taking
// precedence.
func NewPriceTable(prices ...ModelPrice) (*PriceTable, error) {
	t := &PriceTable{}
	for _, p := range prices {
		re, err := regexp.Compile("^(?:" + p.Pattern + ")$")
		if err != nil {
			return nil, fmt.Errorf("llmhttp: price pattern %q: %w", p.Pattern, err)
		}
		e := priceEntry{ModelPrice: p, re: re}
		if lit, ok := literal(p.Pattern); ok {
			e.lit, e.re = lit, nil
		}
		t.entries = append(t.entries, e)
	}
	return t, nil
}

// With returns a table with prices added in front of t's: they override
// t's entries for the models they match.
func (t *PriceTable) With(prices ...ModelPrice) (*PriceTable, error) {
	nt, err := NewPriceTable(prices...)
	if err != nil {
		return nil, err
	}
	if t != nil {
		nt.entries = append(nt.entries, t.entries...)
		nt.asOf = t.asOf
	}
	return nt, nil
}

// AsOf returns the date the built-in prices were last checked.
func (t *PriceTable) AsOf() string { return t.asOf }

// priceFile is the format LoadPrices reads.
type priceFile struct {
	Prices []ModelPrice `json:"prices"`
}

// LoadPrices reads a JSON file {"prices":[ModelPrice...]} and returns
// DefaultPrices with its entries in front (overriding the built-in ones).
func LoadPrices(path string) (*PriceTable, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("llmhttp: price file: %w", err)
	}
	var f priceFile
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("llmhttp: price file %s: %w", path, err)
	}
	if len(f.Prices) == 0 {
		return nil, errors.New("llmhttp: price file " + path + " has no prices")
	}
	return DefaultPrices().With(f.Prices...)
}

// normModel strips a "vendor/" prefix and Bedrock's "vendor." prefix.
func normModel(model string) string {
	if i := strings.LastIndexByte(model, '/'); i >= 0 {
		model = model[i+1:]
	}
	for _, v := range []string{"anthropic.", "us.anthropic.", "eu.anthropic.", "openai."} {
		model = strings.TrimPrefix(model, v)
	}
	return strings.ToLower(model)
}

// Lookup returns the price of model at time at.
func (t *PriceTable) Lookup(provider, model string, at time.Time) (Price, bool) {
	if t == nil || model == "" {
		return Price{}, false
	}
	var best *priceEntry
	for _, i := range t.matching(provider, model) {
		e := &t.entries[i]
		if !e.From.IsZero() && at.Before(e.From) {
			continue
		}
		if best == nil {
			best = e
			continue
		}
		// Same precedence group: the later-dated price wins.
		if e.From.After(best.From) && e.Pattern == best.Pattern {
			best = e
		}
	}
	if best == nil {
		return Price{}, false
	}
	return best.Price, true
}

// snapRE splits a model name into its base and snapshot suffix.
var snapRE = regexp.MustCompile(`^(.+?)` + snap + `$`)

// matching returns the indexes of the entries that match model for
// provider, in precedence order.
func (t *PriceTable) matching(provider, model string) []int {
	k := matchKey{provider, model}
	if v, ok := t.matches.Load(k); ok {
		return v.([]int)
	}
	m := normModel(model)
	base := m
	if sm := snapRE.FindStringSubmatch(m); sm != nil {
		base = sm[1]
	}
	var idx []int
	for i := range t.entries {
		e := &t.entries[i]
		if (e.Provider == "" || e.Provider == provider) && (e.match(m) || e.match(base)) {
			idx = append(idx, i)
		}
	}
	if t.cached.Add(1) <= maxCachedNames {
		t.matches.Store(k, idx)
	}
	return idx
}

// Cost prices u for model at time at; ok is false for a model without a
// price (never a zero cost).
func (t *PriceTable) Cost(provider, model string, u agenttrace.Usage, at time.Time) (agenttrace.Cost, bool) {
	d := u.Details
	return t.cost(provider, model, usage{
		seen: true, prompt: u.PromptTokens, completion: u.CompletionTokens, tot: u.TotalTokens,
		cacheRead: d[agenttrace.UsageCacheRead], cacheWrite: d[agenttrace.UsageCacheWrite],
		cacheWrite5m: d[agenttrace.UsageCacheWrite5m], cacheWrite1h: d[agenttrace.UsageCacheWrite1h],
		reasoning: d[agenttrace.UsageReasoning], audioIn: d[agenttrace.UsageAudioInput], audioOut: d[agenttrace.UsageAudioOutput],
	}, at)
}

func (t *PriceTable) cost(provider, model string, u usage, at time.Time) (agenttrace.Cost, bool) {
	p, ok := t.Lookup(provider, model, at)
	if !ok {
		return agenttrace.Cost{}, false
	}
	if p.LongContext != nil && p.LongContextAbove > 0 && u.prompt > p.LongContextAbove {
		p = *p.LongContext
	}
	or := func(v, d float64) float64 {
		if v == 0 {
			return d
		}
		return v
	}
	write := max(u.cacheWrite, u.cacheWrite5m+u.cacheWrite1h)
	write5m := write - u.cacheWrite1h // a write of unknown lifetime counts as 5 minutes
	plain := max(u.prompt-u.cacheRead-write-u.audioIn, 0)
	in := float64(plain)*p.Input +
		float64(u.cacheRead)*or(p.CachedInput, p.Input) +
		float64(write5m)*or(p.CacheWrite5m, p.Input) +
		float64(u.cacheWrite1h)*or(p.CacheWrite1h, p.Input) +
		float64(u.audioIn)*or(p.AudioInput, p.Input)
	plainOut := max(u.completion-u.reasoning-u.audioOut, 0)
	out := float64(plainOut)*p.Output +
		float64(u.reasoning)*or(p.Reasoning, p.Output) +
		float64(u.audioOut)*or(p.AudioOutput, p.Output)
	in, out = in/1e6, out/1e6
	return agenttrace.Cost{Prompt: in, Completion: out, Total: in + out, Currency: "USD"}, true
}

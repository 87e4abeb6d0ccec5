package llmhttp

import "sync"

// pricesAsOf is when the built-in prices were copied from the providers'
// pricing pages (openai.com/api/pricing, docs.anthropic.com pricing,
// ai.google.dev/gemini-api/docs/pricing). Prices change: override them
// with WithPrices and PriceTable.With or LoadPrices.
const pricesAsOf = "2025-11-30"

// snap matches the dated-snapshot and alias suffixes providers append to a
// model name: -2024-08-06, -20250514, @20250514, -001, -latest,
// -preview-05-20, -exp-03-25. A name with one is priced as its base name
// (PriceTable.matching), so the patterns leave it out: most are then
// literal names, matched without a regular expression.
const snap = `(?:[-@](?:\d{4}-\d{2}-\d{2}|\d{8}|\d{4}(?:-preview)?|\d{3}|latest|preview(?:-[0-9a-z-]+)?|exp(?:-[0-9a-z-]+)?)(?:-v\d+(?::\d+)?)?)?`

// anthropicPrice is Anthropic's scheme: cache reads at 0.1x input, 5-minute
// writes at 1.25x, 1-hour writes at 2x.
func anthropicPrice(in, out float64) Price {
	return Price{Input: in, CachedInput: in * 0.1, CacheWrite5m: in * 1.25, CacheWrite1h: in * 2, Output: out}
}

func withLong(p Price, above int64, long Price) Price {
	p.LongContextAbove, p.LongContext = above, &long
	return p
}

var builtinPrices = []ModelPrice{
	// OpenAI (cached input as listed; reasoning tokens bill as output).
	{Pattern: `gpt-5\.1`, Price: Price{Input: 1.25, CachedInput: 0.125, Output: 10}},
	{Pattern: `gpt-5`, Price: Price{Input: 1.25, CachedInput: 0.125, Output: 10}},
	{Pattern: `gpt-5-mini`, Price: Price{Input: 0.25, CachedInput: 0.025, Output: 2}},
	{Pattern: `gpt-5-nano`, Price: Price{Input: 0.05, CachedInput: 0.005, Output: 0.40}},
	{Pattern: `gpt-5(?:\.1)?-chat`, Price: Price{Input: 1.25, CachedInput: 0.125, Output: 10}},
	{Pattern: `gpt-4\.1`, Price: Price{Input: 2, CachedInput: 0.50, Output: 8}},
	{Pattern: `gpt-4\.1-mini`, Price: Price{Input: 0.40, CachedInput: 0.10, Output: 1.60}},
	{Pattern: `gpt-4\.1-nano`, Price: Price{Input: 0.10, CachedInput: 0.025, Output: 0.40}},
	{Pattern: `gpt-4o`, Price: Price{Input: 2.50, CachedInput: 1.25, Output: 10}},
	{Pattern: `gpt-4o-mini`, Price: Price{Input: 0.15, CachedInput: 0.075, Output: 0.60}},
	{Pattern: `chatgpt-4o`, Price: Price{Input: 5, Output: 15}},
	{Pattern: `gpt-4-turbo`, Price: Price{Input: 10, Output: 30}},
	{Pattern: `gpt-4`, Price: Price{Input: 30, Output: 60}},
	{Pattern: `gpt-3\.5-turbo(?:-0125)?`, Price: Price{Input: 0.50, Output: 1.50}},
	{Pattern: `o1`, Price: Price{Input: 15, CachedInput: 7.50, Output: 60}},
	{Pattern: `o1-mini`, Price: Price{Input: 1.10, CachedInput: 0.55, Output: 4.40}},
	{Pattern: `o3`, Price: Price{Input: 2, CachedInput: 0.50, Output: 8}},
	{Pattern: `o3-mini`, Price: Price{Input: 1.10, CachedInput: 0.55, Output: 4.40}},
	{Pattern: `o3-pro`, Price: Price{Input: 20, Output: 80}},
	{Pattern: `o4-mini`, Price: Price{Input: 1.10, CachedInput: 0.275, Output: 4.40}},
	{Pattern: `text-embedding-3-small`, Price: Price{Input: 0.02}},
	{Pattern: `text-embedding-3-large`, Price: Price{Input: 0.13}},

	// Anthropic.
	{Pattern: `claude-opus-4-5`, Price: anthropicPrice(5, 25)},
	{Pattern: `claude-opus-4(?:-1|-0)?`, Price: anthropicPrice(15, 75)},
	{Pattern: `claude-sonnet-4(?:-5|-0)?`, Price: withLong(anthropicPrice(3, 15), 200_000, anthropicPrice(6, 22.50))},
	{Pattern: `claude-3-7-sonnet`, Price: anthropicPrice(3, 15)},
	{Pattern: `claude-3-5-sonnet`, Price: anthropicPrice(3, 15)},
	{Pattern: `claude-haiku-4-5`, Price: anthropicPrice(1, 5)},
	{Pattern: `claude-3-5-haiku`, Price: anthropicPrice(0.80, 4)},
	{Pattern: `claude-3-haiku`, Price: Price{Input: 0.25, CachedInput: 0.03, CacheWrite5m: 0.30, CacheWrite1h: 0.50, Output: 1.25}},
	{Pattern: `claude-3-opus`, Price: anthropicPrice(15, 75)},

	// Gemini (paid tier, text input; thinking tokens bill as output).
	{Pattern: `gemini-3-pro`, Price: withLong(Price{Input: 2, CachedInput: 0.20, Output: 12}, 200_000, Price{Input: 4, CachedInput: 0.40, Output: 18})},
	{Pattern: `gemini-2\.5-pro`, Price: withLong(Price{Input: 1.25, CachedInput: 0.125, Output: 10}, 200_000, Price{Input: 2.50, CachedInput: 0.25, Output: 15})},
	{Pattern: `gemini-2\.5-flash`, Price: Price{Input: 0.30, CachedInput: 0.03, AudioInput: 1, Output: 2.50}},
	{Pattern: `gemini-2\.5-flash-lite`, Price: Price{Input: 0.10, CachedInput: 0.01, AudioInput: 0.30, Output: 0.40}},
	{Pattern: `gemini-2\.0-flash`, Price: Price{Input: 0.10, CachedInput: 0.025, AudioInput: 0.70, Output: 0.40}},
	{Pattern: `gemini-2\.0-flash-lite`, Price: Price{Input: 0.075, Output: 0.30}},
	{Pattern: `gemini-1\.5-pro`, Price: withLong(Price{Input: 1.25, CachedInput: 0.3125, Output: 5}, 128_000, Price{Input: 2.50, CachedInput: 0.625, Output: 10})},
	{Pattern: `gemini-1\.5-flash`, Price: withLong(Price{Input: 0.075, CachedInput: 0.01875, Output: 0.30}, 128_000, Price{Input: 0.15, CachedInput: 0.0375, Output: 0.60})},
}

var defaultPrices = sync.OnceValue(func() *PriceTable {
	t, err := NewPriceTable(builtinPrices...)
	if err != nil {
		panic(err) // the built-in patterns are tested
	}
	t.asOf = pricesAsOf
	return t
})

// DefaultPrices returns the built-in price table (see AsOf for its date).
func DefaultPrices() *PriceTable { return defaultPrices() }

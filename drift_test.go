package agenttrace_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/agenttrace/agenttrace"
)

// The typed payloads encode themselves by hand (appendJSON, no reflection).
// This drift test checks the hand-written encoders against the types'
// json tags and against the schemas DefaultSpanTypes registers: random
// values of each type, recorded as a span's payload or result, decode with
// encoding/json back to an equal value and validate against their schema.

// gen makes random values whose JSON round trip is exact: valid UTF-8
// strings (with characters that need escaping), finite floats, and, for
// the `any` fields, the types encoding/json decodes into.
type gen struct{ r *rand.Rand }

func (g gen) str() string {
	const alphabet = "abc XYZ 019 \"\\/\n\t\r\x01\x1f<>& é✓🚀\u2028"
	runes := []rune(alphabet)
	if g.r.IntN(4) == 0 {
		return ""
	}
	var b strings.Builder
	for range g.r.IntN(24) + 1 {
		b.WriteRune(runes[g.r.IntN(len(runes))])
	}
	return b.String()
}

func (g gen) float() float64 {
	switch g.r.IntN(4) {
	case 0:
		return 0
	case 1:
		return float64(g.r.IntN(1000))
	}
	return (g.r.Float64() - 0.5) * 1e6
}

func (g gen) int() int64 { return g.r.Int64N(1 << 40) }

// anyValue is a value as encoding/json decodes it into an interface.
func (g gen) anyValue(depth int) any {
	switch g.r.IntN(6) {
	case 0:
		return nil
	case 1:
		return g.str()
	case 2:
		return g.float()
	case 3:
		return g.r.IntN(2) == 0
	case 4:
		if depth < 3 {
			m := map[string]any{}
			for range g.r.IntN(3) + 1 {
				m[g.str()] = g.anyValue(depth + 1)
			}
			return m
		}
	case 5:
		if depth < 3 {
			s := []any{}
			for range g.r.IntN(3) + 1 {
				s = append(s, g.anyValue(depth+1))
			}
			return s
		}
	}
	return "leaf"
}

// object is a non-empty JSON object or nil.
func (g gen) object() map[string]any {
	if g.r.IntN(3) == 0 {
		return nil
	}
	return map[string]any{g.str() + "k": g.anyValue(1)}
}

// objectAny is object for an `any` field: a nil map there would be a
// non-nil interface (encoded as null, as encoding/json does).
func (g gen) objectAny() any {
	if m := g.object(); m != nil {
		return m
	}
	return nil
}

func (g gen) raw() json.RawMessage {
	if g.r.IntN(3) == 0 {
		return nil
	}
	b, err := json.Marshal(map[string]any{"q": g.str(), "n": g.int()})
	if err != nil {
		panic(err)
	}
	return b
}

func ptrTo[T any](g gen, v T) *T {
	if g.r.IntN(2) == 0 {
		return nil
	}
	return &v
}

func (g gen) usage() *agenttrace.Usage {
	if g.r.IntN(3) == 0 {
		return nil
	}
	u := &agenttrace.Usage{PromptTokens: g.int(), CompletionTokens: g.int()}
	u.TotalTokens = u.PromptTokens + u.CompletionTokens // what the encoder writes when zero
	if g.r.IntN(2) == 0 {
		u.Details = map[string]int64{g.str() + "d": g.int(), "cache_read": g.int()}
	}
	return u
}

func (g gen) cost() *agenttrace.Cost {
	if g.r.IntN(3) == 0 {
		return nil
	}
	c := &agenttrace.Cost{Prompt: g.float(), Completion: g.float(), Other: g.float(), Currency: "EUR"}
	c.Total = c.Prompt + c.Completion + c.Other + 1 // non-zero: written as given
	return c
}

func (g gen) toolCalls() []agenttrace.ToolCall {
	var out []agenttrace.ToolCall
	for range g.r.IntN(3) {
		out = append(out, agenttrace.ToolCall{ID: g.str(), Name: g.str(), Arguments: g.raw()})
	}
	return out
}

func (g gen) messages() []agenttrace.Message {
	var out []agenttrace.Message
	for range g.r.IntN(4) {
		out = append(out, agenttrace.Message{Role: g.str() + "r", Content: g.str(), Name: g.str(),
			ToolCalls: g.toolCalls(), ToolCallID: g.str()})
	}
	return out
}

func (g gen) settings() *agenttrace.LLMSettings {
	if g.r.IntN(2) == 0 {
		return nil
	}
	s := &agenttrace.LLMSettings{Temperature: ptrTo(g, g.float()), TopP: ptrTo(g, g.float()),
		MaxTokens: ptrTo(g, g.int()), Seed: ptrTo(g, g.int()),
		FrequencyPenalty: ptrTo(g, g.float()), PresencePenalty: ptrTo(g, g.float())}
	if g.r.IntN(2) == 0 {
		s.Stop = []string{g.str(), g.str()}
	}
	return s
}

// drift lists, per span type, a generator of its payload and of its result.
func drift(g gen) map[string][2]func() any {
	return map[string][2]func() any{
		agenttrace.TypeLLM: {
			func() any {
				var tools []agenttrace.ToolDefinition
				for range g.r.IntN(3) {
					tools = append(tools, agenttrace.ToolDefinition{Name: g.str(), Description: g.str(), Parameters: g.raw()})
				}
				return agenttrace.LLMRequest{Operation: g.str(), Provider: g.str(), Model: g.str(), System: g.str(),
					Messages: g.messages(), Tools: tools, Settings: g.settings(), Stream: g.r.IntN(2) == 0, Metadata: g.object()}
			},
			func() any {
				return agenttrace.LLMResponse{ID: g.str(), Model: g.str(), Text: g.str(), Messages: g.messages(),
					ToolCalls: g.toolCalls(), FinishReason: g.str(), Usage: g.usage(), Cost: g.cost(), Metadata: g.object()}
			},
		},
		agenttrace.TypeTool: {
			func() any { return agenttrace.ToolInput{Name: g.str(), CallID: g.str(), Arguments: g.objectAny()} },
			func() any { return agenttrace.ToolOutput{Output: g.anyValue(0), IsError: g.r.IntN(2) == 0} },
		},
		agenttrace.TypeAgent: {
			func() any {
				return agenttrace.AgentInput{Name: g.str(), SessionID: g.str(), Model: g.str(), Input: g.anyValue(0)}
			},
			func() any {
				return agenttrace.AgentOutput{Output: g.anyValue(0), StopReason: g.str(), Turns: g.r.IntN(50),
					Usage: g.usage(), Cost: g.cost()}
			},
		},
		agenttrace.TypeChain: {
			func() any { return agenttrace.ChainInput{Name: g.str(), Inputs: g.anyValue(0)} },
			func() any { return agenttrace.ChainOutput{Outputs: g.anyValue(0)} },
		},
	}
}

func TestTypedPayloadsDrift(t *testing.T) {
	schemas := map[string][2]any{}
	for _, st := range agenttrace.DefaultSpanTypes() {
		schemas[st.Name] = [2]any{decodeNumbers(t, st.ParamsSchema), decodeNumbers(t, st.ResultSchema)}
	}
	tr, _ := newTracer(t, agenttrace.WithPayloadLimit(1<<20))
	g := gen{rand.New(rand.NewPCG(7, 11))}
	for typ, gens := range drift(g) {
		require.Contains(t, schemas, typ)
		for range 300 {
			in, out := gens[0](), gens[1]()
			_, s := tr.Start(context.Background(), typ, in)
			s.SetResult(out)
			s.End()
			d := s.Data()
			require.Empty(t, d.PayloadError)
			for k, pair := range [][2]any{{in, d.Payload}, {out, d.Result}} {
				v, enc := pair[0], pair[1].(json.RawMessage)
				back := reflect.New(reflect.TypeOf(v))
				require.NoError(t, json.Unmarshal(enc, back.Interface()), "%s", enc)
				require.Equal(t, v, back.Elem().Interface(), "%s %T round trip: %s", typ, v, enc)
				require.NoError(t, validate(schemas[typ][k], decodeNumbers(t, enc), "$"), "%s %T: %s", typ, v, enc)
			}
		}
	}
}

func decodeNumbers(t *testing.T, b []byte) any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	require.NoError(t, dec.Decode(&v))
	return v
}

// validate checks v against the subset of JSON Schema the default span
// types use: type, properties, required, items, additionalProperties.
func validate(schema, v any, path string) error {
	s, ok := schema.(map[string]any)
	if !ok {
		return fmt.Errorf("%s: schema is not an object", path)
	}
	for k := range s {
		if !slices.Contains([]string{"type", "properties", "required", "items", "additionalProperties"}, k) {
			return fmt.Errorf("%s: schema keyword %q is not supported by this checker", path, k)
		}
	}
	if typ, ok := s["type"].(string); ok && !hasType(typ, v) {
		return fmt.Errorf("%s: %v is not of type %s", path, v, typ)
	}
	switch x := v.(type) {
	case map[string]any:
		props, _ := s["properties"].(map[string]any)
		for _, r := range asSlice(s["required"]) {
			if _, ok := x[r.(string)]; !ok {
				return fmt.Errorf("%s: required %q missing", path, r)
			}
		}
		for k, e := range x {
			sub, ok := props[k]
			if !ok {
				sub, ok = s["additionalProperties"]
			}
			if !ok {
				continue
			}
			if err := validate(sub, e, path+"."+k); err != nil {
				return err
			}
		}
	case []any:
		if items, ok := s["items"]; ok {
			for i, e := range x {
				if err := validate(items, e, fmt.Sprintf("%s[%d]", path, i)); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

func asSlice(v any) []any {
	s, _ := v.([]any)
	return s
}

func hasType(typ string, v any) bool {
	switch typ {
	case "object":
		_, ok := v.(map[string]any)
		return ok
	case "array":
		_, ok := v.([]any)
		return ok
	case "string":
		_, ok := v.(string)
		return ok
	case "boolean":
		_, ok := v.(bool)
		return ok
	case "number":
		_, ok := v.(json.Number)
		return ok
	case "integer":
		n, ok := v.(json.Number)
		_, err := n.Int64()
		return ok && err == nil
	}
	return false
}

// The checker itself rejects what it should.
func TestSchemaChecker(t *testing.T) {
	schema := decodeNumbers(t, []byte(`{"type":"object","properties":{"n":{"type":"integer"},"xs":{"type":"array","items":{"type":"string"}}},"required":["n"],"additionalProperties":{"type":"boolean"}}`))
	for doc, ok := range map[string]bool{
		`{"n":1}`:                     true,
		`{"n":1,"xs":["a"],"b":true}`: true,
		`{}`:                          false,
		`{"n":1.5}`:                   false,
		`{"n":1,"xs":[1]}`:            false,
		`{"n":1,"other":"x"}`:         false,
		`[]`:                          false,
	} {
		err := validate(schema, decodeNumbers(t, []byte(doc)), "$")
		require.Equal(t, ok, err == nil, "%s: %v", doc, err)
	}
}

package agenttrace_test

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/agenttrace/agenttrace"
)

func TestInstanceSummary(t *testing.T) {
	clock := newFakeClock()
	tr, rec := newTracer(t, agenttrace.WithClock(clock.Now), agenttrace.WithAgent("bot", "1.0"))
	ctx, inst := tr.StartInstance(context.Background(), agenttrace.WithUserID("u"), agenttrace.WithGroupID("g"),
		agenttrace.WithChannel("web"), agenttrace.WithSessionID("s"), agenttrace.WithPurpose(agenttrace.PurposeEval),
		agenttrace.WithMetadata(map[string]string{"k": "v"}))
	_, first := tr.Start(ctx, "llm", nil)
	clock.Advance(time.Second)
	_, second := tr.Start(ctx, "llm", nil)
	_, p := tr.StartPending(ctx, "tool", nil)
	s := inst.Summary()
	require.Equal(t, agenttrace.SpanCounts{Total: 3, Active: 2, Pending: 1}, s.Spans)

	clock.Advance(100 * time.Millisecond)
	second.MarkFirstToken() // ttft 100ms, but on the later span
	clock.Advance(200 * time.Millisecond)
	first.MarkFirstToken() // ttft 1.3s on the earliest span: this one counts
	second.SetResult(agenttrace.LLMResponse{Usage: &agenttrace.Usage{PromptTokens: 10, CompletionTokens: 5},
		Cost: &agenttrace.Cost{Total: 0.1}})
	second.End()
	first.SetUsage(agenttrace.Usage{PromptTokens: 1, CompletionTokens: 2, TotalTokens: 3})
	first.SetCost(agenttrace.Cost{Prompt: 0.2, Completion: 0.1})
	first.Fail(errors.New("x"))
	p.Cancel("skip")
	_, eur := tr.Start(ctx, "tool", nil)
	eur.SetCost(agenttrace.Cost{Total: 5, Currency: "EUR"})
	eur.End()

	s = inst.Summary()
	require.Equal(t, agenttrace.SpanCounts{Total: 4, Complete: 2, Failed: 1, Cancelled: 1, Finished: 4}, s.Spans)
	require.EqualValues(t, 2, s.LLMCalls)
	require.Equal(t, &agenttrace.Usage{PromptTokens: 11, CompletionTokens: 7, TotalTokens: 18}, s.Usage)
	require.InDelta(t, 0.4, s.Cost.Total, 1e-12)
	require.Equal(t, "USD", s.Cost.Currency)
	require.True(t, s.CostMixedCurrency)
	require.Equal(t, 1300*time.Millisecond, s.TimeToFirstToken)
	require.Equal(t, "u", s.UserID)
	require.Equal(t, "g", s.GroupID)
	require.Equal(t, "web", s.Channel)
	require.Equal(t, "s", s.SessionID)
	require.Equal(t, agenttrace.PurposeEval, s.Purpose)
	require.Equal(t, agenttrace.Agent{Name: "bot", Version: "1.0"}, s.Agent)
	require.Equal(t, map[string]string{"k": "v"}, inst.Data().Metadata)

	clock.Advance(time.Second)
	inst.End()
	flush(t, tr)
	ended := rec.Instances()[0]
	require.Equal(t, agenttrace.StatusComplete, ended.Status)
	require.Equal(t, 2300*time.Millisecond, ended.Summary.Duration(time.Time{}))
	require.Equal(t, s.Usage, ended.Summary.Usage)
}

func TestSpanTypes(t *testing.T) {
	risk := &agenttrace.DataRisk{ActionProfile: agenttrace.ActionProfile{ExternalCommunication: agenttrace.RiskAllowed},
		ParamsDataCategories: agenttrace.DataCategories{Classification: agenttrace.ClassificationConfidential,
			PersonalIdentifiers: agenttrace.InclusionIncluded}}
	refund := agenttrace.SpanType{Name: "billing:refund", Title: "Refund", Description: "Refunds an order",
		ParamsSchema: json.RawMessage(`{"type":"object","properties":{"order_id":{"type":"string"}}}`),
		ResultSchema: json.RawMessage(`{"type": "object"}`), Template: "{{ order_id }}", DataRisk: risk}
	tr, _ := newTracer(t, agenttrace.WithSpanTypes(refund))
	sv := tr.SchemaVersion()
	var names []string
	for _, st := range sv.SpanTypes {
		names = append(names, st.Name)
	}
	require.Equal(t, []string{"agent", "billing:refund", "chain", "llm", "tool"}, names)
	require.Regexp(t, `^agenttrace-[0-9a-f]{16}$`, sv.ExternalIdentifier)

	b, err := json.Marshal(risk)
	require.NoError(t, err)
	var m map[string]map[string]any
	require.NoError(t, json.Unmarshal(b, &m))
	require.Equal(t, "allowed", m["action_profile"]["external_communication"])
	require.Equal(t, "unknown", m["action_profile"]["create_data"])
	require.Len(t, m["action_profile"], 6)
	require.Equal(t, "confidential", m["params_data_categories"]["classification"])
	require.Equal(t, "included", m["params_data_categories"]["personal_identifiers"])
	require.Len(t, m["params_data_categories"], 18)
	require.Equal(t, "unknown", m["result_data_categories"]["gdpr_genetic_data"])

	// Same content, other order and spacing: same identifier.
	other := refund
	other.ParamsSchema = json.RawMessage(`{ "properties": {"order_id": {"type": "string"}}, "type": "object" }`)
	extra := agenttrace.SpanType{Name: "x"}
	tr2, _ := newTracer(t, agenttrace.WithSpanTypes(extra, other))
	tr3, _ := newTracer(t, agenttrace.WithSpanTypes(other, extra))
	require.Equal(t, tr2.SchemaVersion().ExternalIdentifier, tr3.SchemaVersion().ExternalIdentifier)
	tr4, _ := newTracer(t, agenttrace.WithSpanTypes(refund))
	require.Equal(t, sv.ExternalIdentifier, tr4.SchemaVersion().ExternalIdentifier)
	changed := refund
	changed.Template = "{{ amount }}"
	tr5, _ := newTracer(t, agenttrace.WithSpanTypes(changed))
	require.NotEqual(t, sv.ExternalIdentifier, tr5.SchemaVersion().ExternalIdentifier)

	// Unregistered types are recorded and counted.
	_, s := tr.Start(context.Background(), "mystery", nil)
	s.End()
	_, s = tr.Start(context.Background(), "", nil)
	require.Equal(t, "unknown", s.Type())
	s.End()
	require.EqualValues(t, 2, tr.Stats().UnknownSpanTypes)
}

func TestInvalidSpanTypes(t *testing.T) {
	for name, st := range map[string][]agenttrace.SpanType{
		"empty name":    {{Name: ""}},
		"bad name":      {{Name: "has space"}},
		"bad schema":    {{Name: "a", ParamsSchema: json.RawMessage(`{`)}},
		"array schema":  {{Name: "a", ResultSchema: json.RawMessage(`[]`)}},
		"registered 2x": {{Name: "a"}, {Name: "a"}},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := agenttrace.New(agenttrace.WithSpanTypes(st...))
			require.ErrorIs(t, err, agenttrace.ErrInvalidSpanType)
		})
	}
}

func TestInvalidOptions(t *testing.T) {
	for name, opt := range map[string]agenttrace.Option{
		"queue":          agenttrace.WithQueueLimits(0, 10),
		"batch":          agenttrace.WithBatchLimits(1, 0),
		"interval":       agenttrace.WithFlushInterval(0),
		"export timeout": agenttrace.WithExportTimeout(-1),
		"block":          agenttrace.WithBlockOnFull(-time.Second),
		"payload small":  agenttrace.WithPayloadLimit(10),
		"payload big":    agenttrace.WithPayloadLimit(1 << 30),
		"nil exporter":   agenttrace.WithExporter(nil),
		"nil clock":      agenttrace.WithClock(nil),
	} {
		t.Run(name, func(t *testing.T) {
			tr, err := agenttrace.New(opt)
			require.ErrorIs(t, err, agenttrace.ErrInvalidOption)
			require.Nil(t, tr)
		})
	}
}

func TestRun(t *testing.T) {
	tr, rec := newTracer(t)
	ctx := context.Background()
	v, err := agenttrace.Run(ctx, tr, "tool", nil, func(ctx context.Context, s *agenttrace.Span) (int, error) {
		require.Equal(t, s, agenttrace.SpanFromContext(ctx))
		return 42, nil
	})
	require.NoError(t, err)
	require.Equal(t, 42, v)

	_, err = agenttrace.Run(ctx, tr, "tool", nil, func(context.Context, *agenttrace.Span) (string, error) {
		return "", errors.New("tool broke")
	})
	require.EqualError(t, err, "tool broke")

	require.PanicsWithValue(t, "kaboom", func() {
		_, _ = agenttrace.Run(ctx, tr, "tool", nil, func(context.Context, *agenttrace.Span) (int, error) { panic("kaboom") })
	})

	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = agenttrace.Run(ctx, tr, "tool", nil, func(context.Context, *agenttrace.Span) (int, error) {
			runtimeGoexit()
			return 0, nil
		})
	}()
	<-done

	flush(t, tr)
	spans := rec.Spans()
	require.Len(t, spans, 4)
	require.JSONEq(t, `{"value":42}`, string(spans[0].Result))
	require.Equal(t, agenttrace.StatusComplete, spans[0].Status)
	require.Equal(t, "tool broke", spans[1].Error.Message)
	require.Equal(t, agenttrace.ErrorInfo{Type: "panic", Message: "panic: kaboom"}, *spans[2].Error)
	require.Equal(t, agenttrace.StatusFailed, spans[3].Status)
}

func TestIDs(t *testing.T) {
	tr, _ := newTracer(t)
	_, a := tr.Start(context.Background(), "tool", nil)
	a.End()
	id := a.ID()
	require.Len(t, id.String(), 26)
	back, err := agenttrace.ParseID(id.String())
	require.NoError(t, err)
	require.Equal(t, id, back)
	text, err := id.MarshalText()
	require.NoError(t, err)
	var u agenttrace.ID
	require.NoError(t, u.UnmarshalText(text))
	require.Equal(t, id, u)
	require.WithinDuration(t, time.Now(), id.Time(), time.Minute)
	require.Empty(t, agenttrace.ID{}.String())
	require.True(t, agenttrace.ID{}.IsZero())
	_, err = agenttrace.ParseID("not-an-id")
	require.Error(t, err)
}

// Summaries read while spans move through every transition are always
// consistent: no count is negative and the statuses add up to the total.
func TestSummaryConsistentUnderConcurrency(t *testing.T) {
	tr, _ := newTracer(t)
	ctx, inst := tr.StartInstance(context.Background())
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				_, s := tr.StartPending(ctx, "tool", nil)
				switch (i + g) % 4 {
				case 0:
					s.Cancel("no")
				case 1:
					s.Activate()
					s.End()
				case 2:
					s.Activate()
					s.Fail(errors.New("x"))
				default:
					_, a := tr.Start(ctx, "llm", nil)
					a.End()
					s.End() // a pending span ended: cancelled
				}
			}
		})
	}
	for range 2000 {
		c := inst.Summary().Spans
		require.GreaterOrEqual(t, c.Pending, int64(0), "%+v", c)
		require.GreaterOrEqual(t, c.Active, int64(0), "%+v", c)
		require.Equal(t, c.Total, c.Pending+c.Active+c.Finished, "%+v", c)
		require.Equal(t, c.Finished, c.Complete+c.Failed+c.Cancelled, "%+v", c)
	}
	close(stop)
	wg.Wait()
	c := inst.Summary().Spans
	require.Zero(t, c.Pending+c.Active, "%+v", c)
	require.Equal(t, c.Total, c.Finished)
	inst.End()
}

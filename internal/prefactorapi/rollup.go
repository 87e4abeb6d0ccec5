package prefactorapi

import (
	"strings"
	"time"
)

// The run fields of the 003 listing are not Prefactor instance fields.
// The API derives them from the spans:
//
//   - name, user_id, group_id, channel, session_id, ip_address and
//     user_agent: from an "instance" object in the payload of a root span
//     (no parent); the first non-empty value of each is kept;
//   - usage: the token_usage {prompt_tokens, completion_tokens,
//     total_tokens} of finished spans, from the result payload or else the
//     payload; agent spans ("agent", "<ns>:agent") are left out, since
//     they may carry their children's totals;
//   - cost: the cost {prompt, completion, other, total, currency} of
//     finished non-agent spans ("other" is the listing's "services"); costs
//     in a currency other than the first seen are left out;
//   - time to first token, in milliseconds: of the earliest-started
//     finished span that reports one, as ttft_ms, or as first_token_at (an
//     RFC 3339 time) from which its start is subtracted.

type runInstance struct {
	Name      string `json:"name"`
	UserID    string `json:"user_id"`
	GroupID   string `json:"group_id"`
	Channel   string `json:"channel"`
	SessionID string `json:"session_id"`
	IPAddress string `json:"ip_address"`
	UserAgent string `json:"user_agent"`
}

type runUsage struct {
	PromptTokens     int64 `json:"prompt_tokens"`
	CompletionTokens int64 `json:"completion_tokens"`
	TotalTokens      int64 `json:"total_tokens"`
}

type runCost struct {
	Prompt     float64 `json:"prompt"`
	Completion float64 `json:"completion"`
	Other      float64 `json:"other"`
	Total      float64 `json:"total"`
	Currency   string  `json:"currency"`
}

type runPayload struct {
	Instance     *runInstance `json:"instance"`
	TokenUsage   *runUsage    `json:"token_usage"`
	Cost         *runCost     `json:"cost"`
	TTFTMillis   *float64     `json:"ttft_ms"`
	FirstTokenAt *string      `json:"first_token_at"`
}

func isAgentType(name string) bool { return name == "agent" || strings.HasSuffix(name, ":agent") }

// deriveOnCreate takes the instance fields from a root span's payload.
func (c Codec) deriveOnCreate(r *RunFields, sp *SpanRecord) {
	if sp.ParentID != "" || len(sp.Payload) == 0 {
		return
	}
	var p runPayload
	if c.unmarshal(sp.Payload, &p) != nil || p.Instance == nil {
		return
	}
	set := func(dst *string, v string) {
		if *dst == "" {
			*dst = v
		}
	}
	i := p.Instance
	set(&r.Name, i.Name)
	set(&r.UserID, i.UserID)
	set(&r.GroupID, i.GroupID)
	set(&r.Channel, i.Channel)
	set(&r.SessionID, i.SessionID)
	set(&r.IPAddress, i.IPAddress)
	set(&r.UserAgent, i.UserAgent)
}

// deriveOnFinish adds a finished span's usage, cost and first token.
func (cd Codec) deriveOnFinish(r *RunFields, sp *SpanRecord) {
	if isAgentType(sp.SchemaName) {
		return
	}
	var res, par runPayload
	if len(sp.ResultPayload) > 0 {
		_ = cd.unmarshal(sp.ResultPayload, &res)
	}
	if len(sp.Payload) > 0 {
		_ = cd.unmarshal(sp.Payload, &par)
	}
	u := res.TokenUsage
	if u == nil {
		u = par.TokenUsage
	}
	if u != nil {
		total := u.TotalTokens
		if total == 0 {
			total = u.PromptTokens + u.CompletionTokens
		}
		r.PromptTokens += u.PromptTokens
		r.CompletionTokens += u.CompletionTokens
		r.TotalTokens += total
	}
	c := res.Cost
	if c == nil {
		c = par.Cost
	}
	if c != nil {
		cur := c.Currency
		if cur == "" {
			cur = "USD"
		}
		if r.Currency == "" || r.Currency == cur {
			r.Currency = cur
			total := c.Total
			if total == 0 {
				total = c.Prompt + c.Completion + c.Other
			}
			r.CostPrompt += c.Prompt
			r.CostCompletion += c.Completion
			r.CostServices += c.Other
			r.CostTotal += total
		}
	}
	if sp.StartedAt.IsZero() || (!r.TTFTFrom.IsZero() && !sp.StartedAt.Before(r.TTFTFrom)) {
		return
	}
	ms := int64(-1)
	for _, p := range []runPayload{res, par} {
		if ms >= 0 {
			break
		}
		switch {
		case p.TTFTMillis != nil && *p.TTFTMillis >= 0:
			ms = int64(*p.TTFTMillis + 0.5)
		case p.FirstTokenAt != nil:
			if t, err := time.Parse(time.RFC3339Nano, *p.FirstTokenAt); err == nil && !t.Before(sp.StartedAt) {
				ms = t.Sub(sp.StartedAt).Milliseconds()
			}
		}
	}
	if ms >= 0 {
		r.TTFTMillis, r.TTFTFrom = ms, sp.StartedAt
	}
}

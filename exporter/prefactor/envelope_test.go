package prefactor

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
)

const spanAnswerSeed = `{"status":"success","details":{"type":"agent_span","id":"01J0000000000000000000000A","account_id":"acc","agent_id":"ag",` +
	`"agent_instance_id":"01J0000000000000000000000B","parent_span_id":null,"schema_name":"llm","schema_title":"LLM call",` +
	`"status":"complete","payload":{"model":"gpt-4o","messages":[{"role":"user","content":"hi \"there\" \u00e9"}]},` +
	`"result_payload":{"text":"ok","token_usage":{"prompt_tokens":10,"completion_tokens":2}},"summary":null,` +
	`"started_at":"2026-11-23T04:00:00.000Z","finished_at":"2026-11-23T04:00:01.250Z","inserted_at":null,"updated_at":null}}`

var envelopeSeeds = []string{
	spanAnswerSeed,
	`{"status":"success","outputs":{"sc-1":` + spanAnswerSeed + `,"sf-2":{"status":"error","code":"invalid_action","message":"already finished"}}}`,
	`{"status":"success","details":{"id":"x","status":"terminated","termination_reason":"stopped by user"},"control":{"terminate":true,"reason":"r"}}`,
	`{"status":"success","details":{"id":"x","termination_reason":null},"control":null}`,
	`{"status":"error","code":"validation_errors","message":"bad","errors":[{"field":"status","message":"is invalid"}]}`,
	` { "Status" : "success" } `,
	`{"status":"success","status":"error"}`,
	`{"outputs":{"a":null}}`,
	`{"outputs":{"a":{},"a":{"code":"x"}}}`,
	`{"details":null,"message":"caf\u00e9"}`,
	`{"details":{"ID":"upper"}}`,
	`{"status":"success"} x`,
	`{"status":"succ`,
	`[1,2]`,
	`<html>502 Bad Gateway</html>`,
	`{"a":[1,-2.5e+3,true,false,null,{"b":"\ud83d\ude00"}],"status":"ok"}`,
	`{"a":01}`,
	`{"status":"\u0041"}`,
	"{\"status\":\"ok\",\"x\":\"\xff\xfe\"}",
}

// decodeWithJSON is the reference: what decodeEnvelope did with
// encoding/json alone.
func decodeWithJSON(b []byte) (envelope, bool) {
	var env envelope
	if err := json.Unmarshal(b, &env); err != nil {
		return envelope{}, false
	}
	return env, bytes.HasPrefix(bytes.TrimLeft(b, " \t\r\n"), []byte("{"))
}

// fastEnvelope never accepts what encoding/json rejects, and what it
// accepts it decodes exactly as encoding/json does.
func FuzzFastEnvelope(f *testing.F) {
	for _, s := range envelopeSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		fast, ok := fastEnvelope(b)
		ref, refOK := decodeWithJSON(b)
		if !ok {
			got, gotOK := decodeEnvelope(b)
			require.Equal(t, refOK, gotOK)
			require.Equal(t, ref, got)
			return
		}
		require.True(t, refOK, "fast path accepted what encoding/json rejects: %q", b)
		require.Equal(t, ref, fast, "%q", b)
	})
}

// The answers the exporter sees every time take the fast path.
func TestFastEnvelopeTakesCommonAnswers(t *testing.T) {
	for _, i := range []int{0, 1, 2, 4} {
		s := envelopeSeeds[i]
		_, ok := fastEnvelope([]byte(s))
		require.True(t, ok, s)
	}
	env, ok := fastEnvelope([]byte(envelopeSeeds[2]))
	require.True(t, ok)
	reason, term := env.terminate()
	require.True(t, term)
	require.Equal(t, "r", reason)
	require.Equal(t, "stopped by user", *env.Details.TerminationReason)
}

func BenchmarkDecodeEnvelope(b *testing.B) {
	var body bytes.Buffer
	body.WriteString(`{"status":"success","outputs":{`)
	for i := range 64 {
		if i > 0 {
			body.WriteByte(',')
		}
		body.WriteString(`"sc-` + string(rune('a'+i%26)) + string(rune('a'+i/26)) + `":` + spanAnswerSeed)
	}
	body.WriteString(`}}`)
	in := body.Bytes()
	b.Run("fast", func(b *testing.B) {
		b.SetBytes(int64(len(in)))
		b.ReportAllocs()
		for b.Loop() {
			if _, ok := fastEnvelope(in); !ok {
				b.Fatal("not taken")
			}
		}
	})
	b.Run("encoding_json", func(b *testing.B) {
		b.SetBytes(int64(len(in)))
		b.ReportAllocs()
		for b.Loop() {
			if _, ok := decodeWithJSON(in); !ok {
				b.Fatal("rejected")
			}
		}
	})
}

// Package agenttrace records what AI agents do: every agent run becomes an
// [Instance], and every LLM call, tool call and step inside it becomes a [Span]
// with a lifecycle (pending -> active -> complete / failed / cancelled), a
// parent, and JSON payloads.
//
// Recording is cheap and never fails: Start, End and the Set methods never
// block on I/O, never panic and never return telemetry errors. Records go to
// a bounded queue per exporter and are batched, coalesced and exported off the
// hot path; anything that has to be dropped is counted in [Tracer.Stats].
//
// The idiom the library is built around:
//
//	ctx, span := tracer.Start(ctx, "llm", agenttrace.LLMRequest{Model: "gpt-4o", Messages: msgs})
//	defer span.End()
//	resp, err := client.Chat(ctx, req)
//	if err != nil {
//		span.Fail(err)
//		return err
//	}
//	span.SetResult(agenttrace.LLMResponse{Text: resp.Text, Usage: &usage})
//
// Exporters live in sub-packages (exporter/stdout, exporter/prefactor) and
// receive ordered batches of immutable [Record] values; agenttracetest holds an
// in-memory recorder for tests.
package agenttrace

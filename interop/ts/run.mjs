// run.mjs drives one agent run with the official Prefactor TypeScript SDK
// (@prefactor/core, pinned in package.json) into the server at
// PREFACTOR_API_URL, authenticated with PREFACTOR_API_TOKEN (and
// PREFACTOR_AGENT_ID when set). interop_test.go runs it against the Go
// servers and checks what they stored.
//
// The run: an instance of agent version "interop-1.0.0" with the schema
// below, an agent span (sent at start, finished at its end) holding an llm
// span with token usage and a tool span that fails, which holds a chain
// span (nested two deep, so the SDK must wait for its parent's server ID).
//
// The SDK reports transport errors only through console.error and
// console.warn; this script counts them and exits 1 if there were any, after
// printing a JSON summary on stdout: {"errors": [...], "spans": {name: id}},
// the IDs being the SDK's own (payload.span_id on the wire).
import { createConfig, createCore, SpanContext, SpanType } from '@prefactor/core';

const errors = [];
for (const level of ['error', 'warn']) {
  const orig = console[level].bind(console);
  console[level] = (...args) => {
    errors.push(args.map((a) => (a instanceof Error ? `${a.name}: ${a.message} ${JSON.stringify(a.responseBody ?? null)}` : String(a))).join(' '));
    orig(...args);
  };
}

const apiUrl = process.env.PREFACTOR_API_URL;
const apiToken = process.env.PREFACTOR_API_TOKEN;
if (!apiUrl || !apiToken) {
  console.error('PREFACTOR_API_URL and PREFACTOR_API_TOKEN must be set');
  process.exit(2);
}

const object = (properties) => ({ type: 'object', properties });
const agentSchema = {
  external_identifier: 'interop-schema-1',
  span_type_schemas: [
    { name: 'agent', params_schema: object({ question: { type: 'string' } }) },
    { name: 'llm', params_schema: object({ model: { type: 'string' } }) },
    { name: 'tool', params_schema: object({ tool: { type: 'string' } }) },
    { name: 'chain', params_schema: object({ step: { type: 'string' } }) },
  ],
};

const config = createConfig({
  transportType: 'http',
  httpConfig: {
    apiUrl,
    apiToken,
    ...(process.env.PREFACTOR_AGENT_ID ? { agentId: process.env.PREFACTOR_AGENT_ID } : {}),
    agentIdentifier: 'interop-1.0.0',
    agentName: 'ts-interop',
    agentDescription: 'the official TypeScript SDK, driven by interop/ts/run.mjs',
    agentSchema,
    maxRetries: 1,
    initialRetryDelay: 50,
    maxRetryDelay: 100,
    requestTimeout: 10000,
  },
});
const { tracer, agentManager, shutdown } = createCore(config);
agentManager.registerSchema(agentSchema);
agentManager.startInstance();

const ids = {};
const start = (name, spanType, inputs) => {
  const span = tracer.startSpan({ name, spanType, inputs, metadata: { driver: 'run.mjs' } });
  ids[name] = span.spanId;
  return span;
};

const agent = start('support-agent', SpanType.AGENT, { question: 'where is my order?' });
// The SDK sends an agent span when it starts, but serializes it on its
// worker, by reference: a pause lets the create go out while the span is
// still running (created active, finished later) rather than after it ended.
await new Promise((resolve) => setTimeout(resolve, 300));
await SpanContext.runAsync(agent, async () => {
  const llm = start('chat', SpanType.LLM, { model: 'gpt-4o' });
  tracer.endSpan(llm, {
    outputs: { text: 'Let me look that up.' },
    tokenUsage: { promptTokens: 812, completionTokens: 64, totalTokens: 876 },
  });
  const tool = start('refund', SpanType.TOOL, { tool: 'refund' });
  await SpanContext.runAsync(tool, async () => {
    const step = start('validate', SpanType.CHAIN, { step: 'validate order' });
    tracer.endSpan(step, { outputs: { valid: true } });
  });
  tracer.endSpan(tool, { error: new TypeError('refund service down') });
});
tracer.endSpan(agent, { outputs: { answer: 'Your order has shipped.' } });
agentManager.finishInstance();
await shutdown();

process.stdout.write(`${JSON.stringify({ errors, spans: ids })}\n`);
process.exit(errors.length > 0 ? 1 : 0);

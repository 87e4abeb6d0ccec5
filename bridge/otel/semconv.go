package otelbridge

import "go.opentelemetry.io/otel/attribute"

// Attribute keys of the OpenTelemetry GenAI semantic conventions that the
// bridge reads and writes. The Go semconv packages dropped them (from
// semconv/v1.42.0 on), so the bridge defines its own.
const (
	// KeyOperationName is gen_ai.operation.name: "chat", "execute_tool",
	// "invoke_agent", ...
	KeyOperationName = attribute.Key("gen_ai.operation.name")
	// KeyProviderName is gen_ai.provider.name, such as "openai".
	KeyProviderName = attribute.Key("gen_ai.provider.name")
	// KeySystem is gen_ai.system, the deprecated name of
	// gen_ai.provider.name; the span processor reads it.
	KeySystem = attribute.Key("gen_ai.system")
	// KeyRequestModel is gen_ai.request.model.
	KeyRequestModel = attribute.Key("gen_ai.request.model")
	// KeyRequestMaxTokens is gen_ai.request.max_tokens.
	KeyRequestMaxTokens = attribute.Key("gen_ai.request.max_tokens")
	// KeyRequestTemperature is gen_ai.request.temperature.
	KeyRequestTemperature = attribute.Key("gen_ai.request.temperature")
	// KeyRequestTopP is gen_ai.request.top_p.
	KeyRequestTopP = attribute.Key("gen_ai.request.top_p")
	// KeyRequestFrequencyPenalty is gen_ai.request.frequency_penalty.
	KeyRequestFrequencyPenalty = attribute.Key("gen_ai.request.frequency_penalty")
	// KeyRequestPresencePenalty is gen_ai.request.presence_penalty.
	KeyRequestPresencePenalty = attribute.Key("gen_ai.request.presence_penalty")
	// KeyRequestStopSequences is gen_ai.request.stop_sequences.
	KeyRequestStopSequences = attribute.Key("gen_ai.request.stop_sequences")
	// KeyRequestSeed is gen_ai.request.seed.
	KeyRequestSeed = attribute.Key("gen_ai.request.seed")
	// KeyRequestStream is gen_ai.request.stream.
	KeyRequestStream = attribute.Key("gen_ai.request.stream")
	// KeyResponseID is gen_ai.response.id.
	KeyResponseID = attribute.Key("gen_ai.response.id")
	// KeyResponseModel is gen_ai.response.model.
	KeyResponseModel = attribute.Key("gen_ai.response.model")
	// KeyResponseFinishReasons is gen_ai.response.finish_reasons (string
	// slice).
	KeyResponseFinishReasons = attribute.Key("gen_ai.response.finish_reasons")
	// KeyResponseTimeToFirstChunk is gen_ai.response.time_to_first_chunk,
	// in seconds.
	KeyResponseTimeToFirstChunk = attribute.Key("gen_ai.response.time_to_first_chunk")
	// KeyUsageInputTokens is gen_ai.usage.input_tokens.
	KeyUsageInputTokens = attribute.Key("gen_ai.usage.input_tokens")
	// KeyUsageOutputTokens is gen_ai.usage.output_tokens.
	KeyUsageOutputTokens = attribute.Key("gen_ai.usage.output_tokens")
	// KeyUsageCacheReadInputTokens is gen_ai.usage.cache_read.input_tokens.
	KeyUsageCacheReadInputTokens = attribute.Key("gen_ai.usage.cache_read.input_tokens")
	// KeyUsageCacheCreationInputTokens is
	// gen_ai.usage.cache_creation.input_tokens.
	KeyUsageCacheCreationInputTokens = attribute.Key("gen_ai.usage.cache_creation.input_tokens")
	// KeyUsageReasoningOutputTokens is gen_ai.usage.reasoning.output_tokens.
	KeyUsageReasoningOutputTokens = attribute.Key("gen_ai.usage.reasoning.output_tokens")
	// KeyUsagePromptTokens is gen_ai.usage.prompt_tokens, the deprecated
	// name of gen_ai.usage.input_tokens; the span processor reads it.
	KeyUsagePromptTokens = attribute.Key("gen_ai.usage.prompt_tokens")
	// KeyUsageCompletionTokens is gen_ai.usage.completion_tokens, the
	// deprecated name of gen_ai.usage.output_tokens; the span processor
	// reads it.
	KeyUsageCompletionTokens = attribute.Key("gen_ai.usage.completion_tokens")
	// KeyInputMessages is gen_ai.input.messages (opt-in content, a JSON
	// string).
	KeyInputMessages = attribute.Key("gen_ai.input.messages")
	// KeyOutputMessages is gen_ai.output.messages (opt-in content, a JSON
	// string).
	KeyOutputMessages = attribute.Key("gen_ai.output.messages")
	// KeySystemInstructions is gen_ai.system_instructions (opt-in content,
	// a JSON string).
	KeySystemInstructions = attribute.Key("gen_ai.system_instructions")
	// KeyToolDefinitions is gen_ai.tool.definitions (opt-in content, a JSON
	// string).
	KeyToolDefinitions = attribute.Key("gen_ai.tool.definitions")
	// KeyAgentID is gen_ai.agent.id.
	KeyAgentID = attribute.Key("gen_ai.agent.id")
	// KeyAgentName is gen_ai.agent.name.
	KeyAgentName = attribute.Key("gen_ai.agent.name")
	// KeyAgentVersion is gen_ai.agent.version.
	KeyAgentVersion = attribute.Key("gen_ai.agent.version")
	// KeyConversationID is gen_ai.conversation.id.
	KeyConversationID = attribute.Key("gen_ai.conversation.id")
	// KeyToolName is gen_ai.tool.name.
	KeyToolName = attribute.Key("gen_ai.tool.name")
	// KeyToolCallID is gen_ai.tool.call.id.
	KeyToolCallID = attribute.Key("gen_ai.tool.call.id")
	// KeyToolCallArguments is gen_ai.tool.call.arguments (opt-in content, a
	// JSON string).
	KeyToolCallArguments = attribute.Key("gen_ai.tool.call.arguments")
	// KeyToolCallResult is gen_ai.tool.call.result (opt-in content, a JSON
	// string).
	KeyToolCallResult = attribute.Key("gen_ai.tool.call.result")
	// KeyErrorType is error.type, set on failed spans.
	KeyErrorType = attribute.Key("error.type")
	// KeyUserID is user.id, the instance's end user.
	KeyUserID = attribute.Key("user.id")
)

// Well-known values of gen_ai.operation.name.
const (
	// OperationChat is the operation of a chat completion.
	OperationChat = "chat"
	// OperationTextCompletion is the operation of a text completion.
	OperationTextCompletion = "text_completion"
	// OperationGenerateContent is the operation of a multimodal generation.
	OperationGenerateContent = "generate_content"
	// OperationEmbeddings is the operation of an embeddings request.
	OperationEmbeddings = "embeddings"
	// OperationExecuteTool is the operation of a tool execution.
	OperationExecuteTool = "execute_tool"
	// OperationInvokeAgent is the operation of an agent invocation.
	OperationInvokeAgent = "invoke_agent"
	// OperationCreateAgent is the operation of an agent creation.
	OperationCreateAgent = "create_agent"
)

// Attribute keys of the bridge itself, for what the GenAI conventions do
// not cover.
const (
	// KeyInstanceID is agenttrace.instance.id: the instance ULID, on every
	// span the exporter emits.
	KeyInstanceID = attribute.Key("agenttrace.instance.id")
	// KeyInstanceDefault is agenttrace.instance.default: true on the root
	// of a tracer's default instance.
	KeyInstanceDefault = attribute.Key("agenttrace.instance.default")
	// KeySpanID is agenttrace.span.id: the span ULID.
	KeySpanID = attribute.Key("agenttrace.span.id")
	// KeySpanType is agenttrace.span.type: the span's schema name.
	KeySpanType = attribute.Key("agenttrace.span.type")
	// KeySpanName is agenttrace.span.name: the span's human name
	// (agenttrace.WithName), when it has one.
	KeySpanName = attribute.Key("agenttrace.span.name")
	// KeySpanStatus is agenttrace.span.status: the final status of a span,
	// "complete", "failed" or "cancelled". OTel has no cancelled status:
	// a cancelled span keeps status Unset and says so here.
	KeySpanStatus = attribute.Key("agenttrace.span.status")
	// KeyInstanceStatus is agenttrace.instance.status: the final status of
	// an instance, on its root span.
	KeyInstanceStatus = attribute.Key("agenttrace.instance.status")
	// KeyCancelReason is agenttrace.cancel.reason: why a cancelled span
	// never ran.
	KeyCancelReason = attribute.Key("agenttrace.cancel.reason")
	// KeyUnfinished is agenttrace.unfinished: true on a span or instance
	// root that the exporter ended at Shutdown, or because too many spans
	// were open, without having seen its end.
	KeyUnfinished = attribute.Key("agenttrace.unfinished")
	// KeyActivatedAt is agenttrace.activated_at (RFC 3339): when a span
	// started pending became active.
	KeyActivatedAt = attribute.Key("agenttrace.activated_at")
	// KeyGroupID is agenttrace.group.id: the end user's group.
	KeyGroupID = attribute.Key("agenttrace.group.id")
	// KeyChannel is agenttrace.channel: where the run came from.
	KeyChannel = attribute.Key("agenttrace.channel")
	// KeyPurpose is agenttrace.purpose: live, smoke_test or eval.
	KeyPurpose = attribute.Key("agenttrace.purpose")
	// KeyTotalTokens is agenttrace.usage.total_tokens.
	KeyTotalTokens = attribute.Key("agenttrace.usage.total_tokens")
	// KeyCostTotal is agenttrace.cost.total.
	KeyCostTotal = attribute.Key("agenttrace.cost.total")
	// KeyCostCurrency is agenttrace.cost.currency.
	KeyCostCurrency = attribute.Key("agenttrace.cost.currency")
	// KeyLLMCalls is agenttrace.llm_calls: the number of LLM calls of an
	// instance.
	KeyLLMCalls = attribute.Key("agenttrace.llm_calls")
	// KeyTimeToFirstToken is agenttrace.time_to_first_token: an instance's
	// time to first token, in seconds.
	KeyTimeToFirstToken = attribute.Key("agenttrace.time_to_first_token")
	// KeyToolIsError is agenttrace.tool.is_error: the tool returned an
	// error result to the model.
	KeyToolIsError = attribute.Key("agenttrace.tool.is_error")
	// KeyPayloadError is agenttrace.payload_error: a payload could not be
	// encoded or redacted.
	KeyPayloadError = attribute.Key("agenttrace.payload_error")
	// KeyTruncated is agenttrace.truncated: the keys of attributes whose
	// values were cut to the length limit, or "attributes" when some were
	// left out.
	KeyTruncated = attribute.Key("agenttrace.truncated")
)

// Prefixes of the bridge's attribute families.
const (
	// PrefixPayload starts the flattened payload attributes of span types
	// without a GenAI mapping: agenttrace.payload.<path>.
	PrefixPayload = "agenttrace.payload."
	// PrefixResult starts the flattened result attributes:
	// agenttrace.result.<path>.
	PrefixResult = "agenttrace.result."
	// PrefixMetadata starts instance metadata: agenttrace.metadata.<key>.
	PrefixMetadata = "agenttrace.metadata."
	// PrefixSpanCounts starts an instance's span counts:
	// agenttrace.span_counts.<status>.
	PrefixSpanCounts = "agenttrace.span_counts."
	// PrefixUsageDetails starts token usage details without a GenAI key:
	// agenttrace.usage.<detail>.
	PrefixUsageDetails = "agenttrace.usage."
)

// ScopeName is the instrumentation scope of the spans the Exporter emits.
// The SpanProcessor ignores spans of this scope, so that a provider carrying
// both directions does not loop.
const ScopeName = "github.com/agenttrace/agenttrace/bridge/otel"

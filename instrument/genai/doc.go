// Package genai shows and tests tracing google.golang.org/genai (the Gemini
// API and Vertex AI) with llmhttp: the client's HTTPClient gets llmhttp's
// transport, and every GenerateContent and GenerateContentStream call
// records one llm span.
//
//	client, err := genai.NewClient(ctx, &genai.ClientConfig{
//		APIKey:     apiKey,
//		HTTPClient: &http.Client{Transport: llmhttp.NewTransport(tracer, nil)},
//	})
//
// For Vertex AI, wrap the Transport of the authenticated client instead of
// nil (llmhttp.NewTransport(tracer, authClient.Transport)). A stream the SDK
// continues automatically (finish reason CONTINUATION) is one span whose
// usage sums its requests; the SDK's HTTP retries (HTTPOptions.RetryOptions)
// are attempts of one span.
package genai

// Package benchmarks compares agenttrace with the OpenTelemetry Go SDK in
// the same run. It holds only benchmarks; see the README for the command.
package benchmarks

// Package e2e holds end-to-end tests of the server with clients it does not
// share code with: the official Prefactor TypeScript SDK (through
// interop/ts) and OpenTelemetry instrumentation over OTLP/HTTP (through
// bridge/otel/otlpreceiver), on SQLite and on PostgreSQL.
package e2e

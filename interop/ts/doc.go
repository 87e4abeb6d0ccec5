// Package tsinterop checks that the official Prefactor TypeScript SDK
// (@prefactor/core from npm, pinned in package.json and package-lock.json)
// can drive an agent run into the Go implementations of the Prefactor API:
// run.mjs makes the run, and the tests start a server on loopback, run the
// script with node against it and check what the server stored.
//
// The SDK is installed with npm ci into a cache directory
// ($AGENTTRACE_INTEROP_TS_DIR, or agenttrace/interop-ts/<lock hash> under
// the user cache directory) the first time. Without node or npm, or when
// the install fails (no registry), the tests skip and say why; with
// AGENTTRACE_INTEROP_TS=require (as in CI) they fail instead.
package tsinterop

// Package build is accord's one entry point for building: every front end
// (the CLI, the webhook server, a Tekton controller) describes what to
// build as a [Request], names the [Builder]s that build it, and calls a
// [Service]: [Service.Build] for one builder, [Service.Run] for a primary
// and its validators with the k-of-n vote, [Service.Rebuild] to reproduce
// a stored artifact from its signed provenance alone.
//
// The service fetches the source, resolves the pipeline from the catalog,
// runs it through an engine (the executor seam of package engine), checks
// and stores the artifacts, records the proof (in-toto links, SLSA
// provenance, SBOMs), compares builders with package consensus, marks
// what they agree on released and explains what they do not.
//
// Errors are typed: an [*InputError] is bad input (exit code 2 in the CLI),
// a [*RunError] a build that could not run (exit 3). A build that ran and
// failed is no error: its [Report] says Succeeded false.
package build

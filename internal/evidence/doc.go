// Package evidence reads what the store holds about an artifact, and
// decides which of it to believe: the artifact's bytes and digest, the
// attestations and link bundles stored beside it (for [verify.Artifact]),
// its SBOM, and the provenance of the builders a command trusts.
//
// Nothing stored is trusted for being stored: a document counts only once
// a trusted builder's key verifies it, by [verify.Envelope]'s rule.
// Evidence that cannot be read or is not trusted is skipped with a note,
// so that junk beside an artifact never hides the evidence that is good.
//
// Errors caused by the caller's input (an artifact not in the store, a
// policy or key file that cannot be read, no trusted key) are
// [*InputError]s.
package evidence

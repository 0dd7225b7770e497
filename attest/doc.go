// Package attest makes accord's proof: cosign-compatible keys and the signer
// seam (files or KMS through sigstore's signature providers), DSSE
// envelopes, SLSA v1 provenance for every artifact, in-toto link metadata
// for every step, and the in-toto layout of a catalog pipeline.
//
// Everything here is deterministic except what must not be: signatures
// (ECDSA is randomised) and runDetails.metadata (when a builder ran).
package attest

// Package attest will hold accord's attestations: in-toto links per step,
// SLSA v1 provenance, DSSE envelopes and the signer seam (issue 3).
package attest

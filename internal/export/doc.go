// Package export writes what accord stores about an artifact for use
// outside the store: a release bundle (the artifact, its trusted
// provenance, SBOM, signatures and step links, a README) and an SBOM in
// an SPDX encoding.
//
// It is apart from package evidence, which reads and judges what the
// store holds: export only writes files, and exports only what evidence
// says a trusted key signed.
package export

// Package sbom generates deterministic SPDX 2.3 documents with
// spdx/tools-golang: for a Go binary from its embedded build info (main
// module, every dependency with version, checksum and pkg:golang purl, the
// Go toolchain), and for an OCI image from the Go binaries in its layers.
//
// Deterministic: created is SOURCE_DATE_EPOCH, the namespace derives from
// the subject digest, packages and relationships are sorted, so two builders
// of the same artifact write byte-identical SBOMs.
package sbom

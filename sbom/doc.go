// Package sbom will generate deterministic SPDX 2.3 SBOMs (issue 3).
package sbom

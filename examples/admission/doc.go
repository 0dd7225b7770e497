// Package admission holds Kubernetes admission policies that enforce, when
// an image is deployed, what accord verify --policy checks after a build:
// a Kyverno ClusterPolicy and a sigstore policy-controller
// ClusterImagePolicy that require accord's SLSA v1 provenance and SPDX SBOM
// from two of three trusted builders (see README.md). The package has no
// code; its test decodes both policies strictly against the upstream
// schemas and checks them against accord's constants, the builders' keys in
// keys/ and the accord policy accord-policy.yaml.
package admission

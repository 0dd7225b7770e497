// Package admission holds Kubernetes admission policies that enforce, when
// an image is deployed, what accord verify --policy checks after a build:
// a Kyverno ClusterPolicy and a sigstore policy-controller
// ClusterImagePolicy that require accord's SLSA v1 provenance and SPDX SBOM
// from two of three trusted builders, and a variant of each that requires
// one SLSA verification summary signed by the release verifier (see
// README.md). The package has no code; its tests decode the policies
// strictly against the upstream schemas, check them against accord's
// constants, the keys in keys/ and the accord policy accord-policy.yaml,
// and run the real engines (policy-controller's policy-tester, the Kyverno
// CLI) on them against a local registry.
package admission

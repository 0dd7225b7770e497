// Package verify decides whether an artifact is proven: it runs named
// checks (signatures, provenance subject, SBOM subject, in-toto layout) over
// the evidence stored beside the artifact and reports each one with pass or
// fail and a reason. It imports neither Tekton nor Kubernetes (a test
// enforces that), so admission controllers and release tooling can use it.
package verify

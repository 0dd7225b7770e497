// Package engine defines the executor seam: a [Build] goes in, a [Result]
// comes out, whichever engine (local runc/crun, or Tekton on Kubernetes)
// runs it. It also reads Tekton Chains' type hints from task results, so
// every engine reports artifacts the same way.
package engine

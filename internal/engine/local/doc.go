// Package local is accord's embedded engine: it runs a Tekton Pipeline on
// this machine with Tekton's semantics, reusing Tekton's own code for the
// task graph (dag), parameter, context, workspace and result substitution,
// when expressions and param validation, StepAction resolution
// (GetStepActionsData), and runs every step in a fresh OCI container
// through package sandbox.
//
// A task's emptyDir volumes are fresh directories beneath its run
// directory, shared by its steps; step results are at Tekton's
// /tekton/steps/step-NAME/results, a directory each step sees read-only
// but for its own results, with the exit codes accord writes there.
//
// Workspaces and results are written by steps, so on the host the engine
// never follows a link in them: subPaths and working directories are made
// and chowned beneath their workspace one component at a time (package
// beneath), results are read as regular files only, size-checked first,
// and trees are hashed through descriptors. The runtime binds a subPath by
// name, so each is checked again just before the step with its workspace
// locked against steps that write it (see lockWorkspaces). Volume subPaths
// and step results are opened the same way.
//
// A task's sidecars run in containers of their own, started before its
// steps and stopped after them, in a sandbox pod: one loopback-only network
// namespace shared by the task's sidecars and steps and nothing else
// (sidecars.go).
package local

// Package local is accord's embedded engine: it runs a Tekton Pipeline on
// this machine with Tekton's semantics, reusing Tekton's own code for the
// task graph (dag), parameter, context, workspace and result substitution,
// when expressions and param validation, and runs every step in a fresh
// OCI container through package sandbox.
package local

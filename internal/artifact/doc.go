// Package artifact turns the outputs a build announced (Tekton Chains type
// hints) into stored artifacts. It never trusts a task's claim: it finds the
// bytes the run produced, computes their digest itself, refuses a claim that
// does not match, and stores what it verified.
package artifact

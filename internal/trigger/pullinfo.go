package trigger

import "context"

// This file carries the pull request view that H-policy declares in
// policy.go (same names and fields, from the lead's plan), so that
// internal/ghapi builds on its own branch. At merge: keep policy.go's
// declarations and delete this file.

// PullInfo is what the policy needs to know about a pull request.
type PullInfo struct {
	Number       int
	HeadSHA      string
	HeadRef      string
	HeadRepo     string
	HeadCloneURL string
	BaseRepo     string
	Title        string
	State        string
	Author       string
}

// PullRequests looks pull requests up (internal/ghapi implements it).
type PullRequests interface {
	PullRequest(ctx context.Context, repo string, number int) (PullInfo, error)
}

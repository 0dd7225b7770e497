package ghapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"

	"github.com/bradleyfalzon/ghinstallation/v2"
	"github.com/google/go-github/v88/github"

	"github.com/accord-build/accord/internal/trigger"
)

// ErrNotFound is returned (wrapped) when GitHub answers 404: the pull
// request, hook or check run is not there, or the credentials cannot see
// it. Not worth retrying.
var ErrNotFound = errors.New("not found on GitHub")

var _ trigger.PullRequests = (*Client)(nil)

// PullRequest fetches a pull request of repo (owner/name): its head
// commit, branch and repository (a fork's, for a pull request from a
// fork), base repository, title, state and author.
func (c *Client) PullRequest(ctx context.Context, repo string, number int) (trigger.PullInfo, error) {
	owner, name, err := splitRepo(repo)
	if err != nil {
		return trigger.PullInfo{}, err
	}
	if number <= 0 {
		return trigger.PullInfo{}, fmt.Errorf("pull request %s#%d: want a positive number", repo, number)
	}
	pr, resp, err := c.gh.PullRequests.Get(ctx, owner, name, number)
	if err != nil {
		return trigger.PullInfo{}, apiError(fmt.Sprintf("getting pull request %s#%d", repo, number), resp, err)
	}
	head, base := pr.GetHead(), pr.GetBase()
	info := trigger.PullInfo{
		Number:       pr.GetNumber(),
		HeadSHA:      head.GetSHA(),
		HeadRef:      head.GetRef(),
		HeadRepo:     head.GetRepo().GetFullName(),
		HeadCloneURL: head.GetRepo().GetCloneURL(),
		BaseRepo:     base.GetRepo().GetFullName(),
		Title:        pr.GetTitle(),
		State:        pr.GetState(),
		Author:       pr.GetUser().GetLogin(),
	}
	if info.HeadSHA == "" || info.BaseRepo == "" {
		return trigger.PullInfo{}, fmt.Errorf("getting pull request %s#%d: the answer has no head sha or base repository", repo, number)
	}
	return info, nil
}

// apiError wraps a go-github error with what was being done, and
// ErrNotFound for a 404.
func apiError(doing string, resp *github.Response, err error) error {
	if resp != nil && resp.StatusCode == http.StatusNotFound {
		return fmt.Errorf("%s: %w: %w", doing, ErrNotFound, err)
	}
	return fmt.Errorf("%s: %w", doing, err)
}

// IsTemporary says whether err is worth retrying later: GitHub
// unreachable, timing out, answering 5xx or rate-limiting (the
// installation token exchange included). A refusal (401, 403 other than a
// rate limit, 404, 422) or a bad argument is not: it needs a fix in the
// config or the App's permissions.
func IsTemporary(err error) bool {
	var rl *github.RateLimitError
	var arl *github.AbuseRateLimitError
	var he *ghinstallation.HTTPError
	var er *github.ErrorResponse
	var ue *url.Error
	switch {
	case err == nil:
		return false
	case errors.As(err, &rl), errors.As(err, &arl):
		return true
	case errors.As(err, &he):
		return he.Response == nil || he.Response.StatusCode >= 500
	case errors.As(err, &er):
		return er.Response != nil && er.Response.StatusCode >= 500
	case errors.As(err, &ue), errors.Is(err, context.DeadlineExceeded):
		return true
	}
	return false
}

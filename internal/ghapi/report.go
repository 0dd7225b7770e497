package ghapi

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/google/go-github/v88/github"

	"github.com/accord-build/accord/internal/queue"
)

// Limits GitHub puts on what a report carries.
const (
	// MaxOutput is the most characters of a check run's summary and of
	// its text (GitHub: 65,535; kept in bytes here, which is stricter).
	MaxOutput = 65535
	// MaxTitle bounds a check run's output title (ours: GitHub shows one
	// line).
	MaxTitle = 1000
	// MaxDescription is the most characters of a commit status
	// description.
	MaxDescription = 140
)

// Report tells GitHub where job is. As a GitHub App it creates the job's
// check run (when job.CheckRunID is 0) or updates it, and returns its id
// (store it with the job, so later reports update the same check run; if
// that check run is gone, a new one is made and its id returned); with
// a token it posts a commit status and returns job.CheckRunID unchanged;
// with neither it does nothing. runURL is the run's page on the server:
// the check run's details URL and the status's target URL, and, with
// "/evidence/<i>" added, the link to the record's i-th evidence.
//
// States map to check run conclusions and status states so that nothing
// but a verified success ever passes a required check:
//
//	queued     queued        pending
//	running    in_progress   pending
//	succeeded  success       success
//	failed     failure       failure
//	cancelled  cancelled     error
//	errored    failure       error
//
// Errored (infrastructure failure, attempts used up) is failure, not
// neutral: GitHub counts neutral as passing for a required check, and an
// errored run verified nothing.
func (c *Client) Report(ctx context.Context, job *queue.Job, runURL string) (int64, error) {
	if job == nil {
		return 0, fmt.Errorf("reporting: no job")
	}
	if c.mode == ModeNone {
		return job.CheckRunID, nil
	}
	owner, name, err := splitRepo(job.Request.Repo)
	if err != nil {
		return job.CheckRunID, fmt.Errorf("reporting run %s: %w", job.ID, err)
	}
	if !isSHA(job.Request.Commit) {
		return job.CheckRunID, fmt.Errorf("reporting run %s: commit %q is not a full SHA", job.ID, job.Request.Commit)
	}
	if runURL != "" {
		if u, err := url.Parse(runURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return job.CheckRunID, fmt.Errorf("reporting run %s: run URL %q is not an http(s) URL: set externalURL in the config", job.ID, runURL)
		}
	}
	if c.mode == ModeToken {
		return job.CheckRunID, c.status(ctx, owner, name, job, runURL)
	}
	return c.checkRun(ctx, owner, name, job, runURL)
}

// Name is the check run's name and the status's context for repo:
// "accord/<pipeline>", or "accord" when no pipeline is known.
func (c *Client) Name(repo string) string {
	if c.pipelineOf != nil {
		if p := c.pipelineOf(repo); p != "" {
			return truncate("accord/"+p, 100)
		}
	}
	return "accord"
}

// checkRun creates or updates the job's check run.
func (c *Client) checkRun(ctx context.Context, owner, name string, job *queue.Job, runURL string) (int64, error) {
	status, conclusion := checkState(job.State)
	out := &github.CheckRunOutput{
		Title:   github.Ptr(truncate(title(job), MaxTitle)),
		Summary: github.Ptr(summary(job, runURL)),
	}
	if text := logsText(job); text != "" {
		out.Text = github.Ptr(text)
	}
	var details *string
	if runURL != "" {
		details = github.Ptr(runURL)
	}
	var concl *string
	var completed *github.Timestamp
	if conclusion != "" {
		concl = github.Ptr(conclusion)
		if !job.Finished.IsZero() {
			completed = ts(job.Finished)
		}
	}
	if job.CheckRunID != 0 {
		opts := github.UpdateCheckRunOptions{
			Name: c.Name(job.Request.Repo), DetailsURL: details, ExternalID: github.Ptr(job.ID),
			Status: github.Ptr(status), Conclusion: concl, CompletedAt: completed, Output: out,
		}
		_, resp, err := c.gh.Checks.UpdateCheckRun(ctx, owner, name, job.CheckRunID, opts)
		if err == nil {
			return job.CheckRunID, nil
		}
		if err = apiError(fmt.Sprintf("updating check run %d of run %s on %s/%s", job.CheckRunID, job.ID, owner, name), resp, err); !errors.Is(err, ErrNotFound) {
			return job.CheckRunID, err
		}
		// The check run is gone (deleted with its suite): make a new one.
	}
	opts := github.CreateCheckRunOptions{
		Name: c.Name(job.Request.Repo), HeadSHA: job.Request.Commit, DetailsURL: details,
		ExternalID: github.Ptr(job.ID), Status: github.Ptr(status), Conclusion: concl,
		CompletedAt: completed, Output: out,
	}
	if !job.Started.IsZero() {
		opts.StartedAt = ts(job.Started)
	}
	cr, resp, err := c.gh.Checks.CreateCheckRun(ctx, owner, name, opts)
	if err != nil {
		return 0, apiError(fmt.Sprintf("creating the check run of run %s on %s/%s", job.ID, owner, name), resp, err)
	}
	return cr.GetID(), nil
}

// checkState maps a run's state to a check run's status and conclusion.
func checkState(s queue.JobState) (status, conclusion string) {
	switch s {
	case queue.Queued:
		return "queued", ""
	case queue.Running:
		return "in_progress", ""
	case queue.Succeeded:
		return "completed", "success"
	case queue.Cancelled:
		return "completed", "cancelled"
	}
	return "completed", "failure" // failed, errored, and any state not known here
}

// statusState maps a run's state to a commit status state.
func statusState(s queue.JobState) string {
	switch s {
	case queue.Queued, queue.Running:
		return "pending"
	case queue.Succeeded:
		return "success"
	case queue.Failed:
		return "failure"
	}
	return "error" // cancelled, errored, unknown
}

// status posts the job's commit status.
func (c *Client) status(ctx context.Context, owner, name string, job *queue.Job, runURL string) error {
	st := github.RepoStatus{
		State:       github.Ptr(statusState(job.State)),
		Context:     github.Ptr(c.Name(job.Request.Repo)),
		Description: github.Ptr(truncateRunes(oneLine(title(job)), MaxDescription)),
	}
	if runURL != "" {
		st.TargetURL = github.Ptr(runURL)
	}
	_, resp, err := c.gh.Repositories.CreateStatus(ctx, owner, name, job.Request.Commit, st)
	if err != nil {
		return apiError(fmt.Sprintf("posting the commit status of run %s on %s/%s", job.ID, owner, name), resp, err)
	}
	return nil
}

// title is the one-line outcome: the record's verdict once there is one,
// else where the run is.
func title(job *queue.Job) string {
	if job.Record != nil && job.Record.Verdict != "" && job.State.Final() {
		return job.Record.Verdict
	}
	switch job.State {
	case queue.Queued:
		if job.Attempt > 0 {
			return fmt.Sprintf("queued again after attempt %d", job.Attempt)
		}
		return "queued"
	case queue.Running:
		return fmt.Sprintf("running (attempt %d)", max(job.Attempt, 1))
	case queue.Cancelled:
		if job.SupersededBy != "" {
			return "cancelled: superseded by run " + job.SupersededBy
		}
		return "cancelled"
	case queue.Errored:
		return "infrastructure error: attempts used up"
	}
	return string(job.State)
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

func ts(t time.Time) *github.Timestamp {
	return &github.Timestamp{Time: t.UTC().Truncate(time.Second)}
}

func isSHA(s string) bool {
	if len(s) != 40 {
		return false
	}
	for _, r := range s {
		if !(r >= '0' && r <= '9' || r >= 'a' && r <= 'f') {
			return false
		}
	}
	return true
}

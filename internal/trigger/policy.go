package trigger

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"path"
	"strings"

	"github.com/google/go-github/v88/github"

	"github.com/accord-build/accord/internal/serve/config"
	"github.com/accord-build/accord/internal/source"
)

// PullInfo is what the server reads of a pull request through the API
// (an issue_comment carries no head commit).
type PullInfo struct {
	Number int
	// HeadSHA is the full commit hash of the pull request's head now.
	HeadSHA string
	// HeadRef is the head branch's name (in HeadRepo).
	HeadRef string
	// HeadRepo is the head repository's owner/name; empty when it is gone
	// (a deleted fork).
	HeadRepo string
	// HeadCloneURL is the head repository's clone URL.
	HeadCloneURL string
	// BaseRepo is the base repository's owner/name.
	BaseRepo string
	Title    string
	// State is "open" or "closed".
	State string
	// Author is the pull request's author's login.
	Author string
}

// PullRequests reads pull requests from GitHub.
type PullRequests interface {
	// PullRequest returns pull request number of repo (owner/name) as
	// GitHub has it now. An error is infrastructure trouble (the API is
	// unreachable), worth a retry.
	PullRequest(ctx context.Context, repo string, number int) (PullInfo, error)
}

// Runs finds the request an earlier run built, for reruns.
type Runs interface {
	// RequestOf returns the request of run runID; false when there is no
	// such run.
	RequestOf(ctx context.Context, runID string) (*Request, bool, error)
}

// Decider turns deliveries into build requests by the server's policy:
// the configuration's rules for the delivery's repository, never anything
// in the repository's tree. It is safe for concurrent use when its
// PullRequests, Runs and ResolveTag are.
type Decider struct {
	// Config holds the repositories and their rules.
	Config *config.Config
	// Pulls reads pull requests (for /ok-to-test and /retest); nil: those
	// comments build nothing.
	Pulls PullRequests
	// Runs finds earlier runs (for check_run rerequested); nil: reruns
	// build nothing.
	Runs Runs
	// ResolveTag resolves a tag to its commit; nil means [GitResolveTag].
	ResolveTag func(ctx context.Context, cloneURL, tag string) (string, error)
}

// retryableError marks infrastructure trouble worth a retry.
type retryableError struct{ err error }

func (e *retryableError) Error() string { return e.err.Error() }
func (e *retryableError) Unwrap() error { return e.err }

func retryable(err error) error { return &retryableError{err: err} }

// IsRetryable reports whether err (from [Decider.Decide] or
// [GitResolveTag]) is infrastructure trouble (git or the API unreachable,
// timed out) that a later attempt may get past; a payload that asks for
// nothing is never an error.
func IsRetryable(err error) bool {
	var r *retryableError
	return errors.As(err, &r)
}

// minApprovalSHA is the fewest hex digits of the head commit an
// /ok-to-test (or a fork's /retest) must give. GitHub shows 7 (28 bits):
// a fork's author can grind a commit with the same 7-digit prefix in
// minutes and push it right after the approval; 16 digits (64 bits)
// cannot be ground.
const minApprovalSHA = 16

// Decide returns the build requests delivery del makes under the
// server's policy, or none and a note saying why (an unknown repository,
// a branch that is not built, a fork waiting for approval). err is only
// infrastructure trouble worth a retry ([IsRetryable]): git or the API
// unreachable. The note may quote payload text (branch and tag names,
// logins): escape it wherever it is shown.
func (d *Decider) Decide(ctx context.Context, del Delivery) (reqs []Request, note string, err error) {
	if note, ok := d.SetAside(del); ok {
		return nil, note, nil
	}
	p, err := parsePayload(del.Event, del.Body)
	if err != nil {
		return nil, err.Error(), nil
	}
	var r *Request
	switch ev := p.(type) {
	case *github.PushEvent:
		r, note, err = d.push(ctx, ev)
	case *github.CreateEvent:
		r, note, err = d.create(ctx, ev)
	case *github.ReleaseEvent:
		r, note, err = d.release(ctx, ev)
	case *github.PullRequestEvent:
		r, note = d.pullRequest(ev)
	case *github.IssueCommentEvent:
		r, note, err = d.comment(ctx, ev)
	case *github.CheckRunEvent:
		r, note, err = d.checkRun(ctx, ev)
	default:
		return nil, fmt.Sprintf("event %q is not built", del.Event), nil
	}
	if err != nil || r == nil {
		return nil, note, err
	}
	r.DeliveryID = del.ID
	return []Request{*r}, note, nil
}

// SetAside says, from del's event and the repository the intake read
// (Delivery.Repo), without its body, whether it builds nothing, and why:
// an event not built, or a repository the server does not build. Decide
// does the same first; a dispatcher may ask before reading the body.
// The intake reads the repository from the signed body exactly as the
// decoding would: a repository the server does not build costs no
// decoding (a payload decoded by go-github is most of the dispatcher's
// time).
func (d *Decider) SetAside(del Delivery) (note string, ok bool) {
	if !Handles(del.Event) {
		return fmt.Sprintf("event %q is not built", del.Event), true
	}
	if del.Repo != "" {
		if _, ok := d.repo(del.Repo); !ok {
			return notConfigured(del.Repo), true
		}
	}
	return "", false
}

// repo returns the configuration of the repository named full
// (repository.full_name; GitHub's names are case-insensitive).
func (d *Decider) repo(full string) (*config.Repo, bool) {
	if d.Config == nil || full == "" {
		return nil, false
	}
	for i := range d.Config.Repos {
		if strings.EqualFold(d.Config.Repos[i].Name, full) {
			return &d.Config.Repos[i], true
		}
	}
	return nil, false
}

// notConfigured is the note of a delivery for a repository the server
// does not build.
func notConfigured(full string) string {
	return fmt.Sprintf("repository %q is not in the server's config", full)
}

// start is the part of a request every rule shares: the repository's
// configured name and where to fetch from (the configured mirror, else
// the payload's clone_url), or a note why nothing can be built.
func (d *Decider) start(p repoOf, kind Kind, sender string) (*config.Repo, *Request, string) {
	repo, ok := d.repo(p.FullName)
	if !ok {
		return nil, nil, notConfigured(p.FullName)
	}
	clone := repo.CloneURL
	if clone == "" {
		clone = p.CloneURL
	}
	if err := source.ValidateURI(clone); err != nil {
		return nil, nil, fmt.Sprintf("repository %s: clone URL not used: %v", repo.Name, err)
	}
	return repo, &Request{Repo: repo.Name, Kind: kind, CloneURL: clone, Sender: sender}, ""
}

// supersede is the key under which a newer request for ref cancels an
// older queued one, unless the repository turned that off.
func supersede(repo *config.Repo, ref string) string {
	if repo.CancelSuperseded != nil && !*repo.CancelSuperseded {
		return ""
	}
	return repo.Name + " " + ref
}

// matchAny reports whether name matches one of globs (path.Match: "*"
// does not cross "/"; a malformed glob matches nothing).
func matchAny(globs []string, name string) bool {
	for _, g := range globs {
		if ok, err := path.Match(g, name); err == nil && ok {
			return true
		}
	}
	return false
}

func (d *Decider) push(ctx context.Context, ev *github.PushEvent) (*Request, string, error) {
	repo, r, note := d.start(fromPushRepository(ev.GetRepo()), KindPush, ev.GetSender().GetLogin())
	if r == nil {
		return nil, note, nil
	}
	ref, after := ev.GetRef(), strings.ToLower(ev.GetAfter())
	if ev.GetDeleted() || after == zeroSHA {
		return nil, fmt.Sprintf("%s was deleted: nothing to build", ref), nil
	}
	if tag, ok := strings.CutPrefix(ref, "refs/tags/"); ok {
		if !ev.GetCreated() {
			return nil, fmt.Sprintf("tag %s was moved: only new tags are built", tag), nil
		}
		return d.tag(ctx, repo, r, KindTag, tag, titleOf(ev.GetHeadCommit().GetMessage()))
	}
	branch, ok := strings.CutPrefix(ref, "refs/heads/")
	if !ok {
		return nil, fmt.Sprintf("ref %q is neither a branch nor a tag", ref), nil
	}
	if !matchAny(repo.Branches, branch) {
		return nil, fmt.Sprintf("branch %q is not built for %s (branches: %s)", branch, repo.Name, strings.Join(repo.Branches, ", ")), nil
	}
	if err := source.ValidateRevision(ref); err != nil {
		return nil, fmt.Sprintf("branch not built: %v", err), nil
	}
	if !isFullSHA(after) {
		return nil, fmt.Sprintf("push to %s names no commit (after %q)", ref, ev.GetAfter()), nil
	}
	r.Ref, r.Commit = ref, after
	r.Title = titleOf(ev.GetHeadCommit().GetMessage())
	r.Supersede = supersede(repo, ref)
	return r, fmt.Sprintf("push to %s at %s", ref, after), nil
}

func (d *Decider) create(ctx context.Context, ev *github.CreateEvent) (*Request, string, error) {
	repo, r, note := d.start(fromRepository(ev.GetRepo()), KindTag, ev.GetSender().GetLogin())
	if r == nil {
		return nil, note, nil
	}
	if t := ev.GetRefType(); t != "tag" {
		return nil, fmt.Sprintf("create of a %s is not built (a branch is built by its push)", t), nil
	}
	return d.tag(ctx, repo, r, KindTag, ev.GetRef(), "tag "+ev.GetRef())
}

func (d *Decider) release(ctx context.Context, ev *github.ReleaseEvent) (*Request, string, error) {
	repo, r, note := d.start(fromRepository(ev.GetRepo()), KindRelease, ev.GetSender().GetLogin())
	if r == nil {
		return nil, note, nil
	}
	if a := ev.GetAction(); a != "published" {
		return nil, fmt.Sprintf("release %s is not built (only published releases are)", a), nil
	}
	rel := ev.GetRelease()
	title := rel.GetName()
	if title == "" {
		title = "release " + rel.GetTagName()
	}
	return d.tag(ctx, repo, r, KindRelease, rel.GetTagName(), titleOf(title))
}

// tag finishes r as a build of tag, resolved to its commit with git (a
// create or release payload carries no commit; a pushed annotated tag
// names the tag object).
func (d *Decider) tag(ctx context.Context, repo *config.Repo, r *Request, kind Kind, tag, title string) (*Request, string, error) {
	if !matchAny(repo.Tags, tag) {
		return nil, fmt.Sprintf("tag %q is not built for %s (tags: %s)", tag, repo.Name, strings.Join(repo.Tags, ", ")), nil
	}
	if err := validateTagName(tag); err != nil {
		return nil, err.Error(), nil
	}
	resolve := d.ResolveTag
	if resolve == nil {
		resolve = GitResolveTag
	}
	commit, err := resolve(ctx, r.CloneURL, tag)
	switch {
	case errors.Is(err, ErrTagNotFound):
		return nil, fmt.Sprintf("tag %s is not at %s (deleted since?)", tag, r.CloneURL), nil
	case err != nil:
		return nil, "", retryable(fmt.Errorf("resolving tag %s of %s: %w", tag, repo.Name, err))
	case !isFullSHA(commit):
		return nil, fmt.Sprintf("tag %s resolved to %q, not a commit hash", tag, commit), nil
	}
	r.Kind, r.Ref, r.Commit, r.Title = kind, "refs/tags/"+tag, commit, title
	return r, fmt.Sprintf("%s %s at %s", kind, tag, commit), nil
}

// samePullRepo reports whether a pull request's head is in the base
// repository itself (not a fork): same full name, and same id when both
// are given. A missing head repository (a deleted fork) is not.
func samePullRepo(head, base *github.Repository) bool {
	if head == nil || base == nil || head.GetFullName() == "" || head.GetFullName() != base.GetFullName() {
		return false
	}
	return head.GetID() == 0 || base.GetID() == 0 || head.GetID() == base.GetID()
}

func (d *Decider) pullRequest(ev *github.PullRequestEvent) (*Request, string) {
	payloadRepo := fromRepository(ev.GetRepo())
	repo, r, note := d.start(payloadRepo, KindPullRequest, ev.GetSender().GetLogin())
	if r == nil {
		return nil, note
	}
	switch a := ev.GetAction(); a {
	case "opened", "synchronize", "reopened":
	default:
		return nil, fmt.Sprintf("pull_request %s is not built", a)
	}
	if !repo.PullRequests {
		return nil, fmt.Sprintf("pull requests are not built for %s", repo.Name)
	}
	pr := ev.GetPullRequest()
	n, head := pr.GetNumber(), strings.ToLower(pr.GetHead().GetSHA())
	if n <= 0 || !isFullSHA(head) {
		return nil, "pull request names no number or head commit"
	}
	base := pr.GetBase().GetRepo()
	if base.GetFullName() != payloadRepo.FullName {
		return nil, fmt.Sprintf("pull request #%d's base %q is not the repository %q", n, base.GetFullName(), payloadRepo.FullName)
	}
	if !samePullRepo(pr.GetHead().GetRepo(), base) {
		return nil, forkNote(repo, n, head)
	}
	r.Ref, r.Commit, r.PullRequest = fmt.Sprintf("refs/pull/%d/head", n), head, n
	r.Title = titleOf(pr.GetTitle())
	r.Supersede = supersede(repo, r.Ref)
	return r, fmt.Sprintf("pull request #%d at %s", n, head)
}

// forkNote says why a fork's pull request is not built now.
func forkNote(repo *config.Repo, n int, head string) string {
	if repo.Forks == "never" {
		return fmt.Sprintf("pull request #%d is from a fork: %s never builds forks", n, repo.Name)
	}
	return fmt.Sprintf("pull request #%d is from a fork: waiting for /ok-to-test %s from a maintainer", n, head)
}

// sameHost reports whether two clone URLs are on the same scheme and
// host (a fork lives where its base does). Two file:// URLs are one host:
// the server's own disk (a mirror, a test).
func sameHost(a, b string) bool {
	ua, errA := url.Parse(a)
	ub, errB := url.Parse(b)
	if errA == nil && errB == nil && ua.Scheme == "file" && ub.Scheme == "file" && ua.Host == "" && ub.Host == "" {
		return true
	}
	return errA == nil && errB == nil && ua.Host != "" &&
		strings.EqualFold(ua.Scheme, ub.Scheme) && strings.EqualFold(ua.Host, ub.Host)
}

// chatCommand is a maintainer's command in a comment.
type chatCommand struct {
	name string // "/ok-to-test" or "/retest"
	sha  string // the head commit named, lower case; "" if none
	bad  string // why the command is malformed; "" if it is not
}

// commandOf finds the first line of body that is a command: a line
// starting with /ok-to-test or /retest (a quoted "> /ok-to-test" is not).
func commandOf(body string) (chatCommand, bool) {
	for _, line := range strings.Split(body, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || (f[0] != "/ok-to-test" && f[0] != "/retest") {
			continue
		}
		c := chatCommand{name: f[0]}
		switch {
		case len(f) > 2:
			c.bad = fmt.Sprintf("%s takes one argument, the head commit: %s <sha>", c.name, c.name)
		case len(f) == 2:
			c.sha = strings.ToLower(f[1])
			if !isHexPrefix(c.sha) {
				c.bad = fmt.Sprintf("%s %q: not a commit hash (give %d to 40 hex digits of the head commit)", c.name, f[1], minApprovalSHA)
			}
		case c.name == "/ok-to-test":
			c.bad = "/ok-to-test needs the head commit: /ok-to-test <sha>"
		}
		return c, true
	}
	return chatCommand{}, false
}

// isHexPrefix reports whether s is 1 to 40 lower-case hex digits.
func isHexPrefix(s string) bool {
	if s == "" || len(s) > 40 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !strings.ContainsRune("0123456789abcdef", rune(s[i])) {
			return false
		}
	}
	return true
}

func (d *Decider) comment(ctx context.Context, ev *github.IssueCommentEvent) (*Request, string, error) {
	author := ev.GetComment().GetUser().GetLogin()
	payloadRepo := fromRepository(ev.GetRepo())
	repo, r, note := d.start(payloadRepo, KindPullRequest, author)
	if r == nil {
		return nil, note, nil
	}
	if a := ev.GetAction(); a != "created" {
		return nil, fmt.Sprintf("issue_comment %s is not read (only new comments are)", a), nil
	}
	if ev.GetIssue() == nil || !ev.GetIssue().IsPullRequest() { // IsPullRequest has a value receiver: nil panics
		return nil, "comment on an issue, not a pull request", nil
	}
	n := ev.GetIssue().GetNumber()
	c, ok := commandOf(ev.GetComment().GetBody())
	switch {
	case !ok:
		return nil, fmt.Sprintf("comment on #%d has no command", n), nil
	case !isMaintainer(repo, author) || !strings.EqualFold(ev.GetSender().GetLogin(), author):
		return nil, fmt.Sprintf("%s on #%d by %q ignored: not a maintainer of %s", c.name, n, author, repo.Name), nil
	case c.bad != "":
		return nil, c.bad, nil
	case !repo.PullRequests:
		return nil, fmt.Sprintf("pull requests are not built for %s", repo.Name), nil
	case d.Pulls == nil:
		return nil, fmt.Sprintf("%s on #%d: the server cannot read pull requests", c.name, n), nil
	}
	pr, err := d.Pulls.PullRequest(ctx, repo.Name, n)
	if err != nil {
		return nil, "", retryable(fmt.Errorf("reading pull request #%d of %s: %w", n, repo.Name, err))
	}
	return d.approved(repo, r, pr, n, c, payloadRepo.CloneURL)
}

// isMaintainer reports whether login is one of repo's maintainers
// (GitHub logins are case-insensitive).
func isMaintainer(repo *config.Repo, login string) bool {
	for _, m := range repo.Maintainers {
		if login != "" && strings.EqualFold(m, login) {
			return true
		}
	}
	return false
}

// approved finishes r as a build of pull request pr's head, asked for by
// a maintainer's command c: the head must be the commit the command
// names (required for forks), and a fork's head is built untrusted, from
// the fork, which must be on the host of the base (baseClone).
func (d *Decider) approved(repo *config.Repo, r *Request, pr PullInfo, n int, c chatCommand, baseClone string) (*Request, string, error) {
	head := strings.ToLower(pr.HeadSHA)
	fork := pr.HeadRepo == "" || pr.HeadRepo != pr.BaseRepo
	switch {
	case pr.Number != n || !strings.EqualFold(pr.BaseRepo, repo.Name):
		return nil, fmt.Sprintf("pull request #%d read back as #%d of %q: not built", n, pr.Number, pr.BaseRepo), nil
	case pr.State != "open":
		return nil, fmt.Sprintf("pull request #%d is %s: not built", n, pr.State), nil
	case !isFullSHA(head):
		return nil, fmt.Sprintf("pull request #%d has no head commit", n), nil
	case fork && repo.Forks == "never":
		return nil, forkNote(repo, n, head), nil
	case fork && repo.Untrusted == nil:
		return nil, fmt.Sprintf("pull request #%d is from a fork and %s has no untrusted builders", n, repo.Name), nil
	case fork && c.sha == "":
		return nil, fmt.Sprintf("pull request #%d is from a fork: name the head to build it: %s %s", n, c.name, head), nil
	case c.sha != "" && len(c.sha) < minApprovalSHA:
		return nil, fmt.Sprintf("%s %s: give at least %d hex digits of the head commit (%s %s)", c.name, c.sha, minApprovalSHA, c.name, head), nil
	case c.sha != "" && !strings.HasPrefix(head, c.sha):
		return nil, fmt.Sprintf("approval for %s does not match head %s: not built", c.sha, head), nil
	}
	if fork {
		if err := source.ValidateURI(pr.HeadCloneURL); err != nil || !sameHost(pr.HeadCloneURL, baseClone) {
			return nil, fmt.Sprintf("pull request #%d: the fork's clone URL %q is not used", n, pr.HeadCloneURL), nil
		}
		r.CloneURL, r.Untrusted = pr.HeadCloneURL, true
	}
	r.Ref, r.Commit, r.PullRequest = fmt.Sprintf("refs/pull/%d/head", n), head, n
	r.Title = titleOf(pr.Title)
	r.Supersede = supersede(repo, r.Ref)
	return r, fmt.Sprintf("%s by %s: pull request #%d at %s", c.name, r.Sender, n, head), nil
}

func (d *Decider) checkRun(ctx context.Context, ev *github.CheckRunEvent) (*Request, string, error) {
	repo, r, note := d.start(fromRepository(ev.GetRepo()), KindPush, ev.GetSender().GetLogin())
	if r == nil {
		return nil, note, nil
	}
	cr := ev.GetCheckRun()
	id := cr.GetExternalID()
	switch {
	case ev.GetAction() != "rerequested":
		return nil, fmt.Sprintf("check_run %s is not built", ev.GetAction()), nil
	case id == "":
		return nil, "check run has no external_id: not one of this server's runs", nil
	case d.Config.GitHub.App != nil && cr.GetApp().GetID() != 0 && cr.GetApp().GetID() != d.Config.GitHub.App.ID:
		return nil, fmt.Sprintf("check run belongs to app %d, not this server's", cr.GetApp().GetID()), nil
	case d.Runs == nil:
		return nil, "the server cannot look up runs", nil
	}
	orig, ok, err := d.Runs.RequestOf(ctx, id)
	switch {
	case err != nil:
		return nil, "", retryable(fmt.Errorf("looking up run %q: %w", id, err))
	case !ok || orig == nil:
		return nil, fmt.Sprintf("check run names run %q, which the server does not have", id), nil
	case !strings.EqualFold(orig.Repo, repo.Name):
		return nil, fmt.Sprintf("run %q is of %s, not %s: not built", id, orig.Repo, repo.Name), nil
	case cr.GetHeadSHA() != "" && !strings.EqualFold(cr.GetHeadSHA(), orig.Commit):
		return nil, fmt.Sprintf("check run is for %s but run %q built %s: not built", cr.GetHeadSHA(), id, orig.Commit), nil
	case orig.Untrusted && repo.Forks == "never":
		return nil, fmt.Sprintf("run %q built a fork, and %s never builds forks now", id, repo.Name), nil
	}
	again := *orig
	again.Rerun, again.Sender = id, r.Sender
	// A rerun of an older commit must not cancel a newer queued run.
	again.Supersede = ""
	return &again, fmt.Sprintf("rerun of %s by %s", id, r.Sender), nil
}

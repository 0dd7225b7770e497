package trigger

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/accord-build/accord/internal/serve/config"
)

func TestHandles(t *testing.T) {
	for ev, want := range map[string]bool{
		"push": true, "create": true, "release": true, "pull_request": true, "issue_comment": true, "check_run": true,
		"ping": false, "issues": false, "delete": false, "check_suite": false, "pull_request_target": false,
		"pull_request_review": false, "workflow_run": false, "": false, "PUSH": false, "push ": false,
	} {
		if got := Handles(ev); got != want {
			t.Errorf("Handles(%q) = %v, want %v", ev, got, want)
		}
	}
}

func TestDecidePullRequests(t *testing.T) {
	pr7 := func(head string) *Request {
		return &Request{Repo: "acme/widget", Kind: KindPullRequest, CloneURL: widgetClone, Ref: "refs/pull/7/head", Commit: head,
			PullRequest: 7, Sender: "bob", Title: "Speed up size parsing", Supersede: "acme/widget refs/pull/7/head"}
	}
	headRepo := func(f func(r map[string]any)) func(m map[string]any) {
		return func(m map[string]any) { f(jsonObj(m, "pull_request", "head", "repo")) }
	}
	for _, tc := range []policyCase{
		{name: "opened", event: "pull_request", file: "pull_request-opened.json", want: pr7(shaPRHead)},
		{name: "synchronize", event: "pull_request", file: "pull_request-synchronize.json", want: pr7(shaPRHead2)},
		{name: "reopened", event: "pull_request", file: "pull_request-reopened.json", want: pr7(shaPRHead2)},
		{name: "closed", event: "pull_request", file: "pull_request-closed.json", note: "pull_request closed is not built"},
		{name: "labeled", event: "pull_request", file: "pull_request-opened.json", edit: func(m map[string]any) { m["action"] = "labeled" }, note: "not built"},
		{name: "pull requests off", event: "pull_request", file: "pull_request-opened.json",
			cfg: func(c *config.Config) { c.Repos[0].PullRequests = false }, note: "pull requests are not built"},
		{name: "fork opened", event: "pull_request", file: "pull_request-fork-opened.json",
			note: "from a fork: waiting for /ok-to-test " + shaForkHead + " from a maintainer"},
		{name: "fork pushed again", event: "pull_request", file: "pull_request-fork-synchronize.json",
			note: "waiting for /ok-to-test " + shaForkHead2},
		{name: "forks never built", event: "pull_request", file: "pull_request-fork-opened.json",
			cfg: func(c *config.Config) { c.Repos[0].Forks = "never" }, note: "never builds forks"},
		{name: "fork whose name is the base's but id is not", event: "pull_request", file: "pull_request-fork-opened.json",
			edit: headRepo(func(r map[string]any) { r["full_name"] = "acme/widget" }), note: "from a fork"},
		{name: "fork whose name differs in case", event: "pull_request", file: "pull_request-fork-opened.json",
			edit: headRepo(func(r map[string]any) { r["full_name"], r["id"] = "Acme/widget", 1296269 }), note: "from a fork"},
		{name: "fork deleted (head repo null)", event: "pull_request", file: "pull_request-fork-opened.json",
			edit: func(m map[string]any) { jsonObj(m, "pull_request", "head")["repo"] = nil }, note: "from a fork"},
		{name: "head repo without a name", event: "pull_request", file: "pull_request-opened.json",
			edit: headRepo(func(r map[string]any) { delete(r, "full_name") }), note: "from a fork"},
		{name: "fork that claims fork=false", event: "pull_request", file: "pull_request-fork-opened.json",
			edit: headRepo(func(r map[string]any) { r["fork"] = false }), note: "from a fork"},
		{name: "base is another repository", event: "pull_request", file: "pull_request-opened.json",
			edit: func(m map[string]any) {
				jsonObj(m, "pull_request", "base", "repo")["full_name"] = "acme/other"
				jsonObj(m, "pull_request", "head", "repo")["full_name"] = "acme/other"
			}, note: "is not the repository"},
		{name: "no head sha", event: "pull_request", file: "pull_request-opened.json",
			edit: func(m map[string]any) { delete(jsonObj(m, "pull_request", "head"), "sha") }, note: "names no number or head commit"},
		{name: "unknown repository", event: "pull_request", file: "pull_request-opened.json",
			edit: func(m map[string]any) { jsonObj(m, "repository")["full_name"] = "acme/unknown" }, note: "not in the server's config"},
		{name: "title with markup stays raw text", event: "pull_request", file: "pull_request-opened.json",
			edit: func(m map[string]any) {
				jsonObj(m, "pull_request")["title"] = "<img src=x onerror=alert(1)>\nsecond line"
			},
			want: func() *Request { r := pr7(shaPRHead); r.Title = "<img src=x onerror=alert(1)>"; return r }()},
	} {
		t.Run(tc.name, func(t *testing.T) { runPolicyCase(t, tc) })
	}
}

// setComment sets an issue_comment payload's body.
func setComment(body string) func(m map[string]any) {
	return func(m map[string]any) { jsonObj(m, "comment")["body"] = body }
}

func TestDecideComments(t *testing.T) {
	fork8 := func(head string) *Request {
		return &Request{Repo: "acme/widget", Kind: KindPullRequest, CloneURL: forkClone, Ref: "refs/pull/8/head", Commit: head,
			PullRequest: 8, Untrusted: true, Sender: "alice", Title: "Add a totally harmless cache", Supersede: "acme/widget refs/pull/8/head"}
	}
	same7 := &Request{Repo: "acme/widget", Kind: KindPullRequest, CloneURL: widgetClone, Ref: "refs/pull/7/head", Commit: shaPRHead2,
		PullRequest: 7, Sender: "alice", Title: "Speed up size parsing", Supersede: "acme/widget refs/pull/7/head"}
	pulls := func(prs ...PullInfo) map[int]PullInfo {
		m := map[int]PullInfo{}
		for _, p := range prs {
			m[p.Number] = p
		}
		return m
	}
	withPull := func(f func(p *PullInfo)) map[int]PullInfo {
		p := forkPull(shaForkHead)
		f(&p)
		return map[int]PullInfo{7: samePull(shaPRHead2), 8: p}
	}
	for _, tc := range []policyCase{
		{name: "ok-to-test names the head", event: "issue_comment", file: "issue_comment-ok-to-test.json", want: fork8(shaForkHead)},
		{name: "a comment without an issue (found by FuzzDecide: it panicked)", event: "issue_comment", file: "issue_comment-ok-to-test.json",
			edit: func(m map[string]any) { delete(m, "issue") }, note: "not a pull request"},
		{name: "ok-to-test with 16 digits", event: "issue_comment", file: "issue_comment-ok-to-test.json",
			edit: setComment("/ok-to-test " + shaForkHead[:16]), want: fork8(shaForkHead)},
		{name: "ok-to-test in upper case hex", event: "issue_comment", file: "issue_comment-ok-to-test.json",
			edit: setComment("/ok-to-test " + strings.ToUpper(shaForkHead)), want: fork8(shaForkHead)},
		{name: "maintainer login in another case", event: "issue_comment", file: "issue_comment-ok-to-test.json",
			cfg: func(c *config.Config) { c.Repos[0].Maintainers = []string{"ALICE"} }, want: fork8(shaForkHead)},
		// The race /ok-to-test <sha> closes: the fork pushes right after
		// the approval; the approval does not carry over.
		{name: "push after the approval", event: "issue_comment", file: "issue_comment-ok-to-test.json",
			pulls: pulls(forkPull(shaForkHead2)), note: "approval for " + shaForkHead + " does not match head " + shaForkHead2},
		{name: "approval of a later commit than the head", event: "issue_comment", file: "issue_comment-ok-to-test-stale.json",
			note: "does not match head " + shaForkHead},
		{name: "approval of a prefix that is not the head's", event: "issue_comment", file: "issue_comment-ok-to-test.json",
			edit: setComment("/ok-to-test " + shaForkHead2[:20]), note: "does not match head"},
		{name: "GitHub's 7-digit short sha", event: "issue_comment", file: "issue_comment-ok-to-test-short.json", note: "at least 16 hex digits"},
		{name: "a 15-digit prefix of the head", event: "issue_comment", file: "issue_comment-ok-to-test.json",
			edit: setComment("/ok-to-test " + shaForkHead[:15]), note: "at least 16 hex digits"},
		{name: "ok-to-test without a sha", event: "issue_comment", file: "issue_comment-ok-to-test.json",
			edit: setComment("/ok-to-test"), note: "needs the head commit"},
		{name: "ok-to-test with a ref, not a sha", event: "issue_comment", file: "issue_comment-ok-to-test.json",
			edit: setComment("/ok-to-test main"), note: "not a commit hash"},
		{name: "ok-to-test with a longer-than-sha argument", event: "issue_comment", file: "issue_comment-ok-to-test.json",
			edit: setComment("/ok-to-test " + shaForkHead + "00"), note: "not a commit hash"},
		{name: "ok-to-test with extra words", event: "issue_comment", file: "issue_comment-ok-to-test.json",
			edit: setComment("/ok-to-test " + shaForkHead + " and the next one"), note: "takes one argument"},
		{name: "quoted ok-to-test", event: "issue_comment", file: "issue_comment-ok-to-test.json",
			edit: setComment("> /ok-to-test " + shaForkHead + "\n\nwhy did you say that?"), note: "has no command"},
		{name: "ok-to-test inside a word", event: "issue_comment", file: "issue_comment-ok-to-test.json",
			edit: setComment("x/ok-to-test " + shaForkHead), note: "has no command"},
		{name: "not a maintainer", event: "issue_comment", file: "issue_comment-ok-to-test-not-maintainer.json", note: `by "mallory" ignored: not a maintainer`},
		{name: "sender other than the comment's author", event: "issue_comment", file: "issue_comment-ok-to-test.json",
			edit: func(m map[string]any) { jsonObj(m, "sender")["login"] = "mallory" }, note: "not a maintainer"},
		{name: "no maintainers", event: "issue_comment", file: "issue_comment-ok-to-test.json",
			cfg: func(c *config.Config) { c.Repos[0].Maintainers = nil }, note: "not a maintainer"},
		{name: "empty login with an empty maintainer", event: "issue_comment", file: "issue_comment-ok-to-test.json",
			cfg:  func(c *config.Config) { c.Repos[0].Maintainers = []string{""} },
			edit: func(m map[string]any) { jsonObj(m, "sender")["login"], jsonObj(m, "comment", "user")["login"] = "", "" }, note: "not a maintainer"},
		{name: "on an issue", event: "issue_comment", file: "issue_comment-issue.json", note: "not a pull request"},
		{name: "edited comment", event: "issue_comment", file: "issue_comment-edited.json", note: "only new comments"},
		{name: "other text", event: "issue_comment", file: "issue_comment-other.json", note: "has no command"},
		{name: "forks never built", event: "issue_comment", file: "issue_comment-ok-to-test.json",
			cfg: func(c *config.Config) { c.Repos[0].Forks = "never" }, note: "never builds forks"},
		{name: "no untrusted builders", event: "issue_comment", file: "issue_comment-ok-to-test.json",
			cfg: func(c *config.Config) { c.Repos[0].Untrusted = nil }, note: "no untrusted builders"},
		{name: "pull requests off", event: "issue_comment", file: "issue_comment-ok-to-test.json",
			cfg: func(c *config.Config) { c.Repos[0].PullRequests = false }, note: "pull requests are not built"},
		{name: "pull request closed", event: "issue_comment", file: "issue_comment-ok-to-test.json",
			pulls: withPull(func(p *PullInfo) { p.State = "closed" }), note: "is closed"},
		{name: "fork deleted", event: "issue_comment", file: "issue_comment-ok-to-test.json",
			pulls: withPull(func(p *PullInfo) { p.HeadRepo, p.HeadCloneURL = "", "" }), note: "clone URL"},
		{name: "fork clone URL on another host", event: "issue_comment", file: "issue_comment-ok-to-test.json",
			pulls: withPull(func(p *PullInfo) { p.HeadCloneURL = "https://evil.example/widget.git" }), note: "clone URL"},
		{name: "fork clone URL a transport helper", event: "issue_comment", file: "issue_comment-ok-to-test.json",
			pulls: withPull(func(p *PullInfo) { p.HeadCloneURL = "ext::sh -c touch% /tmp/pwned" }), note: "clone URL"},
		{name: "fork clone URL an option", event: "issue_comment", file: "issue_comment-ok-to-test.json",
			pulls: withPull(func(p *PullInfo) { p.HeadCloneURL = "-uhttps://github.com/mallory/widget.git" }), note: "clone URL"},
		{name: "API answers for another repository", event: "issue_comment", file: "issue_comment-ok-to-test.json",
			pulls: withPull(func(p *PullInfo) { p.BaseRepo = "acme/widget"; p.Number = 9 }), note: "read back as #9"},
		{name: "API has no head sha", event: "issue_comment", file: "issue_comment-ok-to-test.json",
			pulls: withPull(func(p *PullInfo) { p.HeadSHA = "" }), note: "has no head commit"},
		{name: "API unreachable", event: "issue_comment", file: "issue_comment-ok-to-test.json", pullErr: errors.New("502 Bad Gateway"), retryable: true},
		{name: "ok-to-test on a pull request from the repository", event: "issue_comment", file: "issue_comment-ok-to-test.json",
			edit: func(m map[string]any) { jsonObj(m, "issue")["number"] = 7; setComment("/ok-to-test " + shaPRHead2)(m) }, want: same7},
		{name: "retest of a pull request from the repository", event: "issue_comment", file: "issue_comment-retest.json", want: same7},
		{name: "retest of a fork without the sha", event: "issue_comment", file: "issue_comment-retest-fork.json",
			note: "from a fork: name the head to build it: /retest " + shaForkHead},
		{name: "retest of a fork naming the head", event: "issue_comment", file: "issue_comment-retest-fork.json",
			edit: setComment("/retest " + shaForkHead), want: fork8(shaForkHead)},
		{name: "retest of a fork naming an old head", event: "issue_comment", file: "issue_comment-retest-fork.json",
			edit: setComment("/retest " + shaForkHead2), note: "does not match head"},
		{name: "retest by someone else", event: "issue_comment", file: "issue_comment-retest.json",
			edit: func(m map[string]any) {
				jsonObj(m, "sender")["login"], jsonObj(m, "comment", "user")["login"] = "bob", "bob"
			}, note: "not a maintainer"},
	} {
		t.Run(tc.name, func(t *testing.T) { runPolicyCase(t, tc) })
	}
}

func TestDecideCommentsWithoutPulls(t *testing.T) {
	d := &Decider{Config: policyConfig()}
	reqs, note, err := d.Decide(context.Background(), Delivery{ID: "d", Event: "issue_comment", Body: policyFixture(t, "issue_comment-ok-to-test.json")})
	if err != nil || len(reqs) != 0 || !strings.Contains(note, "cannot read pull requests") {
		t.Fatalf("Decide = %v, %q, %v; want nothing, the server cannot read pull requests", reqs, note, err)
	}
}

func TestDecideCheckRuns(t *testing.T) {
	orig := Request{DeliveryID: "first", Repo: "acme/widget", Kind: KindPush, CloneURL: widgetClone, Ref: "refs/heads/main", Commit: shaMain,
		Sender: "bob", Title: "Parse widget sizes in one place", Supersede: "acme/widget refs/heads/main"}
	forkRun := Request{DeliveryID: "first", Repo: "acme/widget", Kind: KindPullRequest, CloneURL: forkClone, Ref: "refs/pull/8/head",
		Commit: shaMain, PullRequest: 8, Untrusted: true, Sender: "alice", Supersede: "acme/widget refs/pull/8/head"}
	rerun := func(r Request) *Request { r.Rerun, r.Sender, r.Supersede = "r1", "alice", ""; return &r }
	runs := func(r Request) map[string]Request { return map[string]Request{"r1": r} }
	setRun := func(f func(cr map[string]any)) func(m map[string]any) {
		return func(m map[string]any) { f(jsonObj(m, "check_run")) }
	}
	for _, tc := range []policyCase{
		{name: "rerequested", event: "check_run", file: "check_run-rerequested.json", runs: runs(orig), want: rerun(orig)},
		{name: "a fork's run stays untrusted", event: "check_run", file: "check_run-rerequested.json", runs: runs(forkRun), want: rerun(forkRun)},
		{name: "a fork's run when forks are never built now", event: "check_run", file: "check_run-rerequested.json", runs: runs(forkRun),
			cfg: func(c *config.Config) { c.Repos[0].Forks = "never" }, note: "never builds forks"},
		{name: "completed", event: "check_run", file: "check_run-completed.json", runs: runs(orig), note: "check_run completed is not built"},
		{name: "unknown run", event: "check_run", file: "check_run-rerequested.json", note: `names run "r1", which the server does not have`},
		{name: "no external_id", event: "check_run", file: "check_run-rerequested.json", runs: runs(orig),
			edit: setRun(func(cr map[string]any) { delete(cr, "external_id") }), note: "no external_id"},
		{name: "run of another repository", event: "check_run", file: "check_run-rerequested.json",
			runs: runs(func() Request { r := orig; r.Repo = "acme/other"; return r }()), note: "is of acme/other"},
		{name: "check run for another commit", event: "check_run", file: "check_run-rerequested.json", runs: runs(orig),
			edit: setRun(func(cr map[string]any) { cr["head_sha"] = shaPRHead }), note: "not built"},
		{name: "check run of another app", event: "check_run", file: "check_run-rerequested.json", runs: runs(orig),
			edit: setRun(func(cr map[string]any) { jsonObj(cr, "app")["id"] = 1 }), note: "belongs to app 1"},
		{name: "unknown repository", event: "check_run", file: "check_run-rerequested.json", runs: runs(orig),
			edit: func(m map[string]any) { jsonObj(m, "repository")["full_name"] = "acme/unknown" }, note: "not in the server's config"},
		{name: "queue unreachable", event: "check_run", file: "check_run-rerequested.json", runsErr: errors.New("database closed"), retryable: true},
	} {
		t.Run(tc.name, func(t *testing.T) { runPolicyCase(t, tc) })
	}
}

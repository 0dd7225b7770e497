package trigger

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/accord-build/accord/internal/serve/config"
	"github.com/accord-build/accord/internal/source"
)

// The commits the fixtures in testdata name.
const (
	shaMain      = "0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c"
	shaPipeFile  = "b6a1c0e3f35c1c7b1b8c1d1e0a3c2f4b5d6e7f80"
	shaMarkup    = "9c1185a5c5e9fc54612808977ee8f548b2258d31"
	shaTagObject = "5f0c6e7d8a9b0c1d2e3f40516273849506a7b8c9"
	shaRelease   = "a94a8fe5ccb19ba61c4c0873d391e987982fbbd3"
	shaPRHead    = "e5bd3914e2e596debea16f433f57875b5b90bcd6"
	shaPRHead2   = "de9f2c7fd25e1b3afad3e85a0bd17d9b100db4b3"
	shaForkHead  = "3f786850e387550fdab836ed7e6dc881de23001b"
	shaForkHead2 = "89e6c98d92887913cadf06b2adb97f26cde4849b"

	widgetClone = "https://github.com/acme/widget.git"
	forkClone   = "https://github.com/mallory/widget.git"
)

// policyConfig is the server config of the tests: acme/widget builds
// main and release/*, tags v*, pull requests, forks after approval by
// alice.
func policyConfig() *config.Config {
	return &config.Config{
		StateDir: "/var/lib/accord",
		GitHub:   config.GitHub{App: &config.App{ID: 424242, InstallationID: 4200042, PrivateKeyFile: "app.pem"}},
		Repos: []config.Repo{{
			Name:         "acme/widget",
			Pipeline:     "go-build",
			Params:       map[string]string{"package": "./cmd/widget"},
			Branches:     []string{"main", "release/*"},
			Tags:         []string{"v*"},
			PullRequests: true,
			Maintainers:  []string{"alice"},
			Builders:     config.BuilderSet{File: "builders.yaml", Count: 3, Threshold: 2},
			Untrusted:    &config.BuilderSet{File: "untrusted.yaml", Count: 2},
			Policy:       "policy.yaml",
		}, {
			Name:     "acme/other",
			Pipeline: "go-build",
			Branches: []string{"*"},
			Builders: config.BuilderSet{File: "builders.yaml"},
			Policy:   "policy.yaml",
		}},
	}
}

// stubPulls is GitHub's pull requests as the tests set them.
type stubPulls struct {
	prs   map[int]PullInfo
	err   error
	calls int
}

func (s *stubPulls) PullRequest(ctx context.Context, repo string, n int) (PullInfo, error) {
	s.calls++
	if s.err != nil {
		return PullInfo{}, s.err
	}
	pr, ok := s.prs[n]
	if !ok || !strings.EqualFold(repo, pr.BaseRepo) {
		return PullInfo{}, errors.New("404 Not Found")
	}
	return pr, nil
}

// stubRuns is the queue's runs as the tests set them.
type stubRuns struct {
	reqs map[string]Request
	err  error
}

func (s *stubRuns) RequestOf(ctx context.Context, id string) (*Request, bool, error) {
	if s.err != nil {
		return nil, false, s.err
	}
	r, ok := s.reqs[id]
	if !ok {
		return nil, false, nil
	}
	return &r, true, nil
}

// stubTags resolves tags from a map and counts the calls.
type stubTags struct {
	mu    sync.Mutex
	tags  map[string]string
	err   error
	calls []string
}

func (s *stubTags) resolve(ctx context.Context, url, tag string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = append(s.calls, url+" "+tag)
	if s.err != nil {
		return "", s.err
	}
	c, ok := s.tags[tag]
	if !ok {
		return "", ErrTagNotFound
	}
	return c, nil
}

// policyFixture reads testdata/name.
func policyFixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// editPayload decodes body, lets edit change it and encodes it again.
func editPayload(t testing.TB, body []byte, edit func(m map[string]any)) []byte {
	t.Helper()
	if edit == nil {
		return body
	}
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatal(err)
	}
	edit(m)
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// jsonObj walks m along keys (objects only) and returns the object there.
func jsonObj(m map[string]any, keys ...string) map[string]any {
	for _, k := range keys {
		m = m[k].(map[string]any)
	}
	return m
}

// forkPull is fork pull request #8 as the API has it.
func forkPull(head string) PullInfo {
	return PullInfo{Number: 8, HeadSHA: head, HeadRef: "main", HeadRepo: "mallory/widget", HeadCloneURL: forkClone,
		BaseRepo: "acme/widget", Title: "Add a totally harmless cache", State: "open", Author: "mallory"}
}

// samePull is pull request #7, from a branch of acme/widget.
func samePull(head string) PullInfo {
	return PullInfo{Number: 7, HeadSHA: head, HeadRef: "speedup", HeadRepo: "acme/widget", HeadCloneURL: widgetClone,
		BaseRepo: "acme/widget", Title: "Speed up size parsing", State: "open", Author: "bob"}
}

// policyCase is one delivery and what Decide must make of it.
type policyCase struct {
	name    string
	event   string
	file    string
	edit    func(m map[string]any)
	cfg     func(c *config.Config)
	pulls   map[int]PullInfo
	pullErr error
	tagErr  error
	runs    map[string]Request
	runsErr error
	// want is the request made (DeliveryID filled in by the test), nil
	// for none; note is a part of the note when there is none.
	want      *Request
	note      string
	retryable bool
	// noResolve: the tag must not even be looked up.
	noResolve bool
}

func runPolicyCase(t *testing.T, tc policyCase) {
	t.Helper()
	cfg := policyConfig()
	if tc.cfg != nil {
		tc.cfg(cfg)
	}
	pulls := &stubPulls{prs: tc.pulls, err: tc.pullErr}
	if pulls.prs == nil {
		pulls.prs = map[int]PullInfo{7: samePull(shaPRHead2), 8: forkPull(shaForkHead)}
	}
	tags := &stubTags{tags: map[string]string{"v1.2.0": shaRelease}, err: tc.tagErr}
	d := &Decider{Config: cfg, Pulls: pulls, Runs: &stubRuns{reqs: tc.runs, err: tc.runsErr}, ResolveTag: tags.resolve}
	del := Delivery{ID: "72d3162e-cc78-11e3-81ab-4c9367dc0958", Event: tc.event, Body: editPayload(t, policyFixture(t, tc.file), tc.edit)}
	// Each case is decided as stored by the intake, with the repository
	// it read from the body, and as stored without it (older queue
	// records): the two must decide alike.
	for _, hint := range []bool{true, false} {
		if hint {
			_, del.Repo = scanObject(del.Body)
		} else {
			del.Repo = ""
		}
		t.Run(fmt.Sprintf("repo hint %v", hint), func(t *testing.T) { checkPolicyCase(t, d, tags, del, tc) })
	}
}

func checkPolicyCase(t *testing.T, d *Decider, tags *stubTags, del Delivery, tc policyCase) {
	t.Helper()
	tags.calls = nil
	reqs, note, err := d.Decide(context.Background(), del)
	switch {
	case tc.retryable:
		if err == nil || !IsRetryable(err) {
			t.Fatalf("Decide: err %v (retryable %v), want a retryable error", err, IsRetryable(err))
		}
		return
	case err != nil:
		t.Fatalf("Decide: %v", err)
	}
	if tc.noResolve && len(tags.calls) > 0 {
		t.Errorf("tag resolved (%v), want no git at all", tags.calls)
	}
	if tc.want == nil {
		if len(reqs) != 0 {
			t.Fatalf("Decide made %+v, want nothing (note %q)", reqs, note)
		}
		if !strings.Contains(note, tc.note) {
			t.Errorf("note %q, want it to say %q", note, tc.note)
		}
		return
	}
	want := *tc.want
	want.DeliveryID = del.ID
	if diff := cmp.Diff([]Request{want}, reqs); diff != "" {
		t.Errorf("requests (-want +got):\n%s\nnote: %s", diff, note)
	}
}

// setRef sets a push payload's ref, after and created.
func setRef(ref, after string, created bool) func(m map[string]any) {
	return func(m map[string]any) { m["ref"], m["after"], m["created"] = ref, after, created }
}

func TestDecidePushTagsReleases(t *testing.T) {
	mainPush := &Request{Repo: "acme/widget", Kind: KindPush, CloneURL: widgetClone, Ref: "refs/heads/main", Commit: shaMain,
		Sender: "alice", Title: "Parse widget sizes in one place", Supersede: "acme/widget refs/heads/main"}
	with := func(r *Request, f func(r *Request)) *Request { c := *r; f(&c); return &c }
	tagReq := &Request{Repo: "acme/widget", Kind: KindTag, CloneURL: widgetClone, Ref: "refs/tags/v1.2.0", Commit: shaRelease, Sender: "alice"}
	for _, tc := range []policyCase{
		{name: "push to main", event: "push", file: "push-branch.json", want: mainPush},
		{name: "push to a branch matching a glob", event: "push", file: "push-branch.json", edit: setRef("refs/heads/release/1.0", shaMain, false),
			want: with(mainPush, func(r *Request) { r.Ref, r.Supersede = "refs/heads/release/1.0", "acme/widget refs/heads/release/1.0" })},
		{name: "glob does not cross /", event: "push", file: "push-branch.json", edit: setRef("refs/heads/release/1/hotfix", shaMain, false), note: "not built"},
		{name: "push to a branch not built", event: "push", file: "push-branch-other.json", note: `branch "feature/x" is not built`},
		{name: "branch deleted", event: "push", file: "push-deleted.json", note: "deleted"},
		{name: "tag deleted", event: "push", file: "push-tag-deleted.json", note: "deleted", noResolve: true},
		{name: "all-zero after without deleted", event: "push", file: "push-branch.json", edit: setRef("refs/heads/main", zeroSHA, false), note: "deleted"},
		{name: "after not a commit", event: "push", file: "push-branch.json", edit: setRef("refs/heads/main", "HEAD~1", false), note: "names no commit"},
		{name: "after short", event: "push", file: "push-branch.json", edit: setRef("refs/heads/main", shaMain[:12], false), note: "names no commit"},
		{name: "after upper case", event: "push", file: "push-branch.json", edit: setRef("refs/heads/main", strings.ToUpper(shaMain), false), want: mainPush},
		{name: "ref neither branch nor tag", event: "push", file: "push-branch.json", edit: setRef("refs/notes/commits", shaMain, false), note: "neither a branch nor a tag"},
		{name: "branch name git could misread", event: "push", file: "push-branch.json", cfg: func(c *config.Config) { c.Repos[0].Branches = []string{"*"} },
			edit: setRef("refs/heads/a..b", shaMain, false), note: "branch not built"},
		{name: "unknown repository", event: "push", file: "push-branch.json",
			edit: func(m map[string]any) { jsonObj(m, "repository")["full_name"] = "mallory/widget" }, note: `"mallory/widget" is not in the server's config`},
		{name: "no repository", event: "push", file: "push-branch.json", edit: func(m map[string]any) { delete(m, "repository") }, note: "not in the server's config"},
		{name: "repository name in another case", event: "push", file: "push-branch.json",
			edit: func(m map[string]any) { jsonObj(m, "repository")["full_name"] = "ACME/Widget" }, want: mainPush},
		{name: "configured mirror wins over the payload", event: "push", file: "push-branch.json",
			cfg:  func(c *config.Config) { c.Repos[0].CloneURL = "https://git.acme.example/widget.git" },
			want: with(mainPush, func(r *Request) { r.CloneURL = "https://git.acme.example/widget.git" })},
		{name: "payload clone_url an option", event: "push", file: "push-branch.json",
			edit: func(m map[string]any) { jsonObj(m, "repository")["clone_url"] = "--upload-pack=touch /tmp/pwned" }, note: "clone URL not used"},
		{name: "payload clone_url a transport helper", event: "push", file: "push-branch.json",
			edit: func(m map[string]any) { jsonObj(m, "repository")["clone_url"] = "ext::sh -c touch% /tmp/pwned" }, note: "clone URL not used"},
		{name: "payload clone_url plain http", event: "push", file: "push-branch.json",
			edit: func(m map[string]any) { jsonObj(m, "repository")["clone_url"] = "http://github.com/acme/widget.git" }, note: "clone URL not used"},
		{name: "cancelSuperseded false", event: "push", file: "push-branch.json",
			cfg:  func(c *config.Config) { f := false; c.Repos[0].CancelSuperseded = &f },
			want: with(mainPush, func(r *Request) { r.Supersede = "" })},
		{name: "commit message with markup stays raw text", event: "push", file: "push-branch-markup.json",
			want: with(mainPush, func(r *Request) {
				r.Commit, r.Title = shaMarkup, `<script>alert(1)</script>"><img src=x onerror=alert(2)> fix & <b>bold</b>`
			})},
		{name: "tag pushed", event: "push", file: "push-tag-created.json",
			want: with(tagReq, func(r *Request) { r.Title = "Parse widget sizes in one place" })},
		{name: "tag moved", event: "push", file: "push-tag-created.json", edit: setRef("refs/tags/v1.2.0", shaTagObject, false), note: "moved", noResolve: true},
		{name: "tag not built", event: "push", file: "push-tag-created.json", edit: setRef("refs/tags/nightly", shaTagObject, true), note: `tag "nightly" is not built`, noResolve: true},
		{name: "tag name git could misread", event: "push", file: "push-tag-created.json", cfg: func(c *config.Config) { c.Repos[0].Tags = []string{"*"} },
			edit: setRef("refs/tags/-uevil", shaTagObject, true), note: "not built", noResolve: true},
		{name: "tag name a revision expression", event: "push", file: "push-tag-created.json", cfg: func(c *config.Config) { c.Repos[0].Tags = []string{"*"} },
			edit: setRef("refs/tags/v1^{}", shaTagObject, true), note: "not built", noResolve: true},
		{name: "tag gone by now", event: "push", file: "push-tag-created.json", edit: setRef("refs/tags/v9.9.9", shaTagObject, true), note: "is not at"},
		{name: "git unreachable", event: "push", file: "push-tag-created.json", tagErr: errors.New("git ls-remote: Could not resolve host"), retryable: true},
		{name: "tag created", event: "create", file: "create-tag.json", want: with(tagReq, func(r *Request) { r.Title = "tag v1.2.0" })},
		{name: "created tag not built", event: "create", file: "create-tag.json", edit: func(m map[string]any) { m["ref"] = "nightly" }, note: "not built", noResolve: true},
		{name: "branch created", event: "create", file: "create-branch.json", note: "create of a branch is not built", noResolve: true},
		{name: "create of an unknown repository", event: "create", file: "create-tag.json",
			edit: func(m map[string]any) { jsonObj(m, "repository")["full_name"] = "acme/unknown" }, note: "not in the server's config", noResolve: true},
		{name: "create, git unreachable", event: "create", file: "create-tag.json", tagErr: errors.New("timed out"), retryable: true},
		{name: "release published", event: "release", file: "release-published.json",
			want: with(tagReq, func(r *Request) { r.Kind, r.Title = KindRelease, "Widget 1.2.0" })},
		{name: "release published without a name", event: "release", file: "release-published.json",
			edit: func(m map[string]any) { jsonObj(m, "release")["name"] = nil },
			want: with(tagReq, func(r *Request) { r.Kind, r.Title = KindRelease, "release v1.2.0" })},
		{name: "release created", event: "release", file: "release-created.json", note: "release created is not built", noResolve: true},
		{name: "release of a tag not built", event: "release", file: "release-published.json",
			edit: func(m map[string]any) { jsonObj(m, "release")["tag_name"] = "nightly" }, note: "not built", noResolve: true},
		{name: "release, git unreachable", event: "release", file: "release-published.json", tagErr: errors.New("connection refused"), retryable: true},
		{name: "ping", event: "ping", file: "ping.json", note: `event "ping" is not built`},
		{name: "event not built", event: "issues", file: "ping.json", note: `event "issues" is not built`},
		{name: "payload not the event's shape", event: "push", file: "push-branch.json",
			edit: func(m map[string]any) { m["ref"] = 42 }, note: "reading the push payload"},
	} {
		t.Run(tc.name, func(t *testing.T) { runPolicyCase(t, tc) })
	}
}

// TestDecideIgnoresTheTree: a pushed commit that adds .tekton/ and
// pipeline files is built exactly as the server's config says. A
// Request has no field that could carry a pipeline, params or builders,
// and nothing the commit added appears in it.
// TestDecideFromTheRepoHint: a delivery for a repository the server does
// not build is set aside from the repository the intake read, without
// decoding the payload (here one go-github cannot decode).
func TestDecideFromTheRepoHint(t *testing.T) {
	d := &Decider{Config: policyConfig()}
	body := []byte(`{"ref":5,"repository":{"full_name":"mallory/widget"}}`)
	for _, tc := range []struct {
		repo, note string
	}{
		{"mallory/widget", `repository "mallory/widget" is not in the server's config`},
		{"", "reading the push payload"},
	} {
		_, note, err := d.Decide(context.Background(), Delivery{ID: "1", Event: "push", Body: body, Repo: tc.repo})
		if err != nil || !strings.Contains(note, tc.note) {
			t.Errorf("repo %q: note %q, err %v; want a note saying %q", tc.repo, note, err, tc.note)
		}
	}
}

func TestDecideIgnoresTheTree(t *testing.T) {
	d := &Decider{Config: policyConfig()}
	body := policyFixture(t, "push-branch-pipeline-file.json")
	reqs, note, err := d.Decide(context.Background(), Delivery{ID: "d1", Event: "push", Body: body})
	if err != nil || len(reqs) != 1 {
		t.Fatalf("Decide = %v, %q, %v; want one request", reqs, note, err)
	}
	want := Request{DeliveryID: "d1", Repo: "acme/widget", Kind: KindPush, CloneURL: widgetClone, Ref: "refs/heads/main",
		Commit: shaPipeFile, Sender: "bob", Title: "Build with our own pipeline", Supersede: "acme/widget refs/heads/main"}
	if diff := cmp.Diff(want, reqs[0]); diff != "" {
		t.Errorf("request (-want +got):\n%s", diff)
	}
	b, err := json.Marshal(reqs[0])
	if err != nil {
		t.Fatal(err)
	}
	var fields map[string]any
	if err := json.Unmarshal(b, &fields); err != nil {
		t.Fatal(err)
	}
	allowed := map[string]bool{"deliveryId": true, "repo": true, "kind": true, "cloneURL": true, "ref": true, "commit": true,
		"pullRequest": true, "untrusted": true, "sender": true, "title": true, "supersede": true, "rerun": true}
	for k := range fields {
		if !allowed[k] {
			t.Errorf("Request has field %q: a request must carry nothing but what to fetch (the pipeline comes from the config)", k)
		}
	}
	for _, s := range []string{".tekton", "pipeline.yaml", "accord.yaml", "go-build", "builders.yaml"} {
		if strings.Contains(string(b), s) {
			t.Errorf("request %s carries %q", b, s)
		}
	}
}

// fuzzEvents are the events FuzzDecide delivers.
var fuzzEvents = []string{"push", "create", "release", "pull_request", "issue_comment", "check_run", "ping"}

// fuzzOracle is what FuzzDecide reads of a payload itself (decoded as
// encoding/json decodes structs, as the code under test does).
type fuzzOracle struct {
	Repository struct {
		FullName string `json:"full_name"`
	} `json:"repository"`
	PullRequest struct {
		Head struct {
			Repo *struct {
				FullName string `json:"full_name"`
				ID       int64  `json:"id"`
			} `json:"repo"`
		} `json:"head"`
		Base struct {
			Repo *struct {
				FullName string `json:"full_name"`
				ID       int64  `json:"id"`
			} `json:"repo"`
		} `json:"base"`
	} `json:"pull_request"`
	Comment struct {
		Body string `json:"body"`
	} `json:"comment"`
}

// FuzzDecide: whatever the payload, Decide never panics, never makes a
// request for a repository the config does not have, never a trusted
// request for a fork's code, and never an untrusted one without an
// approval naming the head.
func FuzzDecide(f *testing.F) {
	seeds := map[string]string{}
	entries, err := os.ReadDir("testdata")
	if err != nil {
		f.Fatal(err)
	}
	for _, e := range entries {
		name := e.Name()
		event, _, _ := strings.Cut(strings.TrimSuffix(name, ".json"), "-")
		seeds[name] = event
	}
	for name, event := range seeds {
		for i, ev := range fuzzEvents {
			if ev == event {
				body := policyFixture(f, name)
				f.Add(uint8(i), body, true)
				f.Add(uint8(i), body, false)
			}
		}
	}
	f.Fuzz(func(t *testing.T, which uint8, body []byte, fork bool) {
		event := fuzzEvents[int(which)%len(fuzzEvents)]
		d, checkTag := fuzzDecider(t, fork)
		del := Delivery{ID: "fuzz-delivery", Event: event, Body: body}
		reqs, note, err := d.Decide(context.Background(), del)
		if err != nil {
			t.Fatalf("Decide: %v (no stub fails: nothing is retryable)", err)
		}
		if len(reqs) == 0 {
			if note == "" {
				t.Fatal("nothing built and no note saying why")
			}
			return
		}
		var o fuzzOracle
		if err := json.Unmarshal(body, &o); err != nil {
			t.Fatalf("a request from a payload that does not decode: %v", err)
		}
		for _, r := range reqs {
			checkFuzzRequest(t, del, r, o, fork)
		}
		checkTag()
	})
}

// fuzzDecider is a Decider over policyConfig whose every pull request's
// head is shaForkHead (from the fork when fork is set) and whose run r1
// built main (a fork's when fork is set). checkTag fails the test if a
// tag or URL that was not checked reached ResolveTag.
func fuzzDecider(t *testing.T, fork bool) (*Decider, func()) {
	head, clone := "acme/widget", widgetClone
	if fork {
		head, clone = "mallory/widget", forkClone
	}
	pulls := &fuzzPulls{head: head, clone: clone}
	runs := &stubRuns{reqs: map[string]Request{"r1": {DeliveryID: "first", Repo: "acme/widget", Kind: KindPullRequest,
		CloneURL: clone, Ref: "refs/pull/8/head", Commit: shaMain, PullRequest: 8, Untrusted: fork}}}
	var bad []string
	resolve := func(ctx context.Context, url, tag string) (string, error) {
		if validateTagName(tag) != nil || source.ValidateURI(url) != nil {
			bad = append(bad, url+" "+tag)
		}
		return shaRelease, nil
	}
	return &Decider{Config: policyConfig(), Pulls: pulls, Runs: runs, ResolveTag: resolve}, func() {
		if len(bad) > 0 {
			t.Fatalf("unchecked input reached ResolveTag: %q", bad)
		}
	}
}

// fuzzPulls answers every pull request with head shaForkHead.
type fuzzPulls struct{ head, clone string }

func (p *fuzzPulls) PullRequest(ctx context.Context, repo string, n int) (PullInfo, error) {
	return PullInfo{Number: n, HeadSHA: shaForkHead, HeadRef: "main", HeadRepo: p.head, HeadCloneURL: p.clone,
		BaseRepo: repo, Title: "t", State: "open", Author: "mallory"}, nil
}

func checkFuzzRequest(t *testing.T, del Delivery, r Request, o fuzzOracle, fork bool) {
	t.Helper()
	if r.Repo != "acme/widget" && r.Repo != "acme/other" {
		t.Fatalf("request for %q, not a configured repository: %+v", r.Repo, r)
	}
	if !strings.EqualFold(r.Repo, o.Repository.FullName) {
		t.Fatalf("request for %q from a payload of %q", r.Repo, o.Repository.FullName)
	}
	if r.DeliveryID != del.ID || !isFullSHA(r.Commit) || source.ValidateURI(r.CloneURL) != nil || source.ValidateRevision(r.Ref) != nil {
		t.Fatalf("malformed request %+v", r)
	}
	if r.CloneURL == forkClone && !r.Untrusted {
		t.Fatalf("trusted request from the fork's clone URL: %+v", r)
	}
	switch del.Event {
	case "pull_request":
		h, b := o.PullRequest.Head.Repo, o.PullRequest.Base.Repo
		if r.Untrusted || h == nil || b == nil || h.FullName != b.FullName || b.FullName != o.Repository.FullName ||
			(h.ID != 0 && b.ID != 0 && h.ID != b.ID) {
			t.Fatalf("pull_request built as %+v, but head %+v, base %+v", r, h, b)
		}
	case "issue_comment":
		if r.Untrusted != fork || r.Commit != shaForkHead {
			t.Fatalf("comment built %+v (fork %v)", r, fork)
		}
		if fork && !strings.Contains(strings.ToLower(o.Comment.Body), shaForkHead[:minApprovalSHA]) {
			t.Fatalf("fork built without an approval naming its head: %+v, comment %q", r, o.Comment.Body)
		}
	case "check_run":
		if r.Untrusted != fork || r.Rerun != "r1" || r.Supersede != "" {
			t.Fatalf("rerun %+v (fork %v)", r, fork)
		}
	case "push", "create", "release":
		if r.Untrusted || (r.Kind != KindPush && r.Kind != KindTag && r.Kind != KindRelease) {
			t.Fatalf("%s built %+v", del.Event, r)
		}
	default:
		t.Fatalf("%s built %+v", del.Event, r)
	}
}

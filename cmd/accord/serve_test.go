package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/accord-build/accord/internal/build"
	"github.com/accord-build/accord/internal/queue"
	"github.com/accord-build/accord/internal/serve"
	"github.com/accord-build/accord/internal/serve/config"
	"github.com/accord-build/accord/internal/testutil/fakegithub"
	"github.com/accord-build/accord/internal/trigger"
)

// gitRepo is a working repository and the bare repository it pushes to,
// its "GitHub".
type gitRepo struct {
	t          *testing.T
	work, bare string
}

func newGitRepo(t *testing.T, name string) *gitRepo {
	t.Helper()
	dir := t.TempDir()
	g := &gitRepo{t: t, work: filepath.Join(dir, "work"), bare: filepath.Join(dir, name+".git")}
	g.git(dir, "init", "-q", "-b", "main", g.work)
	g.git(dir, "init", "-q", "--bare", g.bare)
	return g
}

func (g *gitRepo) url() string { return "file://" + g.bare }

func (g *gitRepo) git(dir string, args ...string) string {
	g.t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_AUTHOR_DATE=@1700000000 +0000", "GIT_COMMITTER_DATE=@1700000000 +0000", "GIT_CONFIG_GLOBAL=/dev/null",
		"GIT_AUTHOR_NAME=a", "GIT_AUTHOR_EMAIL=a@example.com", "GIT_COMMITTER_NAME=a", "GIT_COMMITTER_EMAIL=a@example.com")
	out, err := cmd.CombinedOutput()
	if err != nil {
		g.t.Fatalf("git %v: %v\n%s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

// commit writes files, commits them on branch and pushes; it returns the
// commit.
func (g *gitRepo) commit(branch, msg string, files map[string]string) string {
	g.t.Helper()
	for name, body := range files {
		p := filepath.Join(g.work, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			g.t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			g.t.Fatal(err)
		}
	}
	g.git(g.work, "add", "-A")
	g.git(g.work, "commit", "-q", "--allow-empty", "-m", msg)
	g.git(g.work, "push", "-q", g.bare, "HEAD:refs/heads/"+branch)
	return g.git(g.work, "rev-parse", "HEAD")
}

// serveWorld is a running server with its fake GitHub and repositories.
type serveWorld struct {
	t       *testing.T
	url     string
	secret  []byte
	gh      *fakegithub.Server
	app     *gitRepo
	fork    *gitRepo
	cfg     *config.Config
	stop    func()
	stopped chan error
}

const serveRepo = "acme/app"

// newServeWorld writes a config (two trusted builders, one untrusted,
// the GitHub App on the fake), starts the server and waits until ready.
func newServeWorld(t *testing.T) *serveWorld {
	t.Helper()
	stDir := builderStore(t)
	t.Setenv("ACCORD_NO_DIFFOSCOPE", "1")
	trusted := testBuilders(t, 1)
	untrusted := filepath.Join(t.TempDir(), "untrusted")
	if _, stderr, err := accord(t, "builders", "init", untrusted, "--validators", "0"); err != nil {
		t.Fatalf("builders init: %v\n%s", err, stderr)
	}
	// Their own identity: evidence is replaced by builder id, and the
	// server refuses an untrusted builder under a release builder's.
	uf := filepath.Join(untrusted, "builders.yaml")
	b, err := os.ReadFile(uf)
	if err != nil {
		t.Fatal(err)
	}
	write(t, uf, strings.Replace(string(b), "name: primary", "name: forks", 1))
	dir := t.TempDir()
	ctx := context.Background()
	pipeline, _ := filepath.Abs("testdata/from-source.yaml")
	resolved, err := build.Resolve(ctx, pipeline, false)
	if err != nil {
		t.Fatal(err)
	}
	policy := filepath.Join(trusted, "serve-policy.yaml")
	doc := "apiVersion: accord.dev/v1alpha1\nkind: Policy\nthreshold: 2\nsbom: optional\nbuilders:\n" +
		"  - {id: https://accord.dev/builders/primary, key: primary.pub}\n  - {id: https://accord.dev/builders/validator-1, key: validator-1.pub}\n" +
		"pipelines: [" + resolved.Digest + "]\n"
	write(t, policy, doc)
	w := &serveWorld{t: t, secret: []byte("It's a Secret to Everybody"), gh: fakegithub.New(t), app: newGitRepo(t, "app"), fork: newGitRepo(t, "fork")}
	write(t, filepath.Join(dir, "webhook-secret"), string(w.secret)+"\n")
	// The verifier's key, with the builders' (empty) password: the server
	// has one ACCORD_PASSWORD.
	wd, _ := os.Getwd()
	if err := os.Chdir(dir); err != nil {
		t.Fatal(err)
	}
	_, stderr, err := accord(t, "keys", "generate", "verifier")
	os.Chdir(wd)
	if err != nil {
		t.Fatalf("keys generate: %v %s", err, stderr)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	w.url = "http://" + ln.Addr().String()
	cfgText := fmt.Sprintf(`apiVersion: accord.dev/v1alpha1
kind: ServerConfig
listen: %s
externalURL: %s
stateDir: state
store: %s
secrets: [{file: webhook-secret}, {env: ACCORD_TEST_OLD_SECRET}]
github:
  apiURL: %s
  app: {id: %d, installationID: %d, privateKeyFile: %s}
  redeliver: {hooks: [{repo: %s, id: 1}]}
verifier: {key: verifier.key, id: https://accord.example.com/verifiers/release}
repos:
- name: %s
  pipeline: %s
  branches: [main]
  pullRequests: true
  maintainers: [alice]
  builders: {file: %s}
  untrusted: {file: %s}
  policy: %s
- name: acme/flaky
  pipeline: %s
  branches: [main]
  builders: {file: %s}
  policy: %s
`, ln.Addr(), w.url, stDir, w.gh.GHESURL, w.gh.AppID, w.gh.InstallationID, w.gh.PrivateKeyFile, serveRepo, serveRepo, pipeline,
		filepath.Join(trusted, "builders.yaml"), filepath.Join(untrusted, "builders.yaml"), policy,
		strings.TrimSuffix(pipeline, ".yaml")+"-random.yaml", filepath.Join(trusted, "builders.yaml"), policy)
	cfgFile := filepath.Join(dir, "serve.yaml")
	write(t, cfgFile, cfgText)
	t.Setenv("ACCORD_TEST_OLD_SECRET", "the secret before rotation")
	// A delivery that failed while the server was down: on start, the
	// server asks GitHub to redeliver it, and GitHub does.
	w.gh.AddRepoDelivery(serveRepo, 1, fakegithub.Delivery{GUID: "missed-1", StatusCode: 502, Event: "issues", Action: "opened",
		Payload: []byte(`{"action":"opened","repository":{"full_name":"acme/app"}}`), DeliveredAt: time.Now().Add(-time.Hour)})
	w.gh.DeliverTo(w.url+"/webhooks/github", w.secret)
	if w.cfg, err = config.Load(cfgFile); err != nil {
		t.Fatal(err)
	}
	w.start(ln)
	return w
}

func (w *serveWorld) start(ln net.Listener) {
	t := w.t
	logFile := filepath.Join(t.TempDir(), "serve.log")
	lf, err := os.Create(logFile)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		lf.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logFile)
			t.Logf("server log:\n%s", b)
		}
	})
	srv, err := serve.New(context.Background(), w.cfg, serve.Options{Version: "test", Listener: ln, ShutdownGrace: 5 * time.Second, Logger: slog.New(slog.NewTextHandler(lf, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	w.stopped = make(chan error, 1)
	go func() { w.stopped <- srv.Run(ctx) }()
	w.stop = func() {
		cancel()
		if err := <-w.stopped; err != nil {
			t.Errorf("server: %v", err)
		}
	}
	t.Cleanup(func() {
		if ctx.Err() == nil {
			w.stop()
		}
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		if resp, err := http.Get(w.url + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("server not ready after 20s")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func write(t *testing.T, file, body string) {
	t.Helper()
	if err := os.WriteFile(file, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
}

// deliver posts a payload as GitHub would, signed with secret.
func (w *serveWorld) deliver(event, id string, payload any, secret []byte) (int, string) {
	w.t.Helper()
	body, err := json.Marshal(payload)
	if err != nil {
		w.t.Fatal(err)
	}
	req, _ := http.NewRequest("POST", w.url+"/webhooks/github", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-GitHub-Event", event)
	req.Header.Set("X-GitHub-Delivery", id)
	req.Header.Set("User-Agent", "GitHub-Hookshot/test")
	if secret != nil {
		req.Header.Set("X-Hub-Signature-256", trigger.Sign(secret, body))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		w.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func (w *serveWorld) get(path string) (int, string) {
	w.t.Helper()
	resp, err := http.Get(w.url + path)
	if err != nil {
		w.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// waitRun waits until run id is final and returns it.
func (w *serveWorld) waitRun(id string) *queue.Job {
	w.t.Helper()
	deadline := time.Now().Add(4 * time.Minute)
	for time.Now().Before(deadline) {
		if code, body := w.get("/runs/" + id + ".json"); code == 200 {
			var j queue.Job
			if err := json.Unmarshal([]byte(body), &j); err != nil {
				w.t.Fatalf("run %s: %v\n%s", id, err, body)
			}
			if j.State.Final() {
				return &j
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	w.t.Fatalf("run %s not finished after 4 minutes", id)
	return nil
}

// pushPayload is a push event to branch of acme/app (GitHub's shape, the
// fields the server reads and a few more).
func (w *serveWorld) pushPayload(branch, before, after, msg string) map[string]any {
	return map[string]any{
		"ref": "refs/heads/" + branch, "before": before, "after": after, "created": false, "deleted": false, "forced": false,
		"repository":  map[string]any{"id": 1, "name": "app", "full_name": serveRepo, "clone_url": w.app.url(), "owner": map[string]any{"login": "acme"}},
		"pusher":      map[string]any{"name": "bob"},
		"sender":      map[string]any{"login": "bob"},
		"head_commit": map[string]any{"id": after, "message": msg},
		"commits":     []any{map[string]any{"id": after, "message": msg}},
	}
}

// TestServe drives the server as GitHub would: a signed push is built by
// both builders, released, verified and summarised, with a check run on
// the fake GitHub; a redelivery starts nothing; a commit that adds its
// own pipeline is built exactly as configured; a fork's pull request
// waits for a maintainer's /ok-to-test, is then built by the untrusted
// builders and never released; forged deliveries are refused; the status
// page and metrics show it all.
func TestServe(t *testing.T) {
	w := newServeWorld(t)
	c1 := w.app.commit("main", "first <script>alert(1)</script>", map[string]string{"which": "one\n"})

	// Refused: no signature, a wrong one, the SHA-1 header alone.
	if code, _ := w.deliver("push", "forged-1", w.pushPayload("main", "", c1, "x"), nil); code != 401 {
		t.Errorf("unsigned push: %d, want 401", code)
	}
	if code, _ := w.deliver("push", "forged-2", w.pushPayload("main", "", c1, "x"), []byte("wrong")); code != 401 {
		t.Errorf("wrongly signed push: %d, want 401", code)
	}
	if code, body := w.deliver("ping", "ping-1", map[string]any{"zen": "Keep it logically awesome.", "hook_id": 1}, w.secret); code != 200 {
		t.Errorf("ping: %d %s, want 200", code, body)
	}

	code, body := w.deliver("push", "d-1", w.pushPayload("main", "", c1, "first <script>alert(1)</script>"), w.secret)
	if code != 202 || !strings.Contains(body, "accepted") {
		t.Fatalf("push: %d %s, want 202 accepted", code, body)
	}
	if code, body := w.deliver("push", "d-1", w.pushPayload("main", "", c1, "first"), w.secret); code != 200 || !strings.Contains(body, "duplicate") {
		t.Errorf("redelivery: %d %s, want 200 duplicate", code, body)
	}
	// The rotated-out secret still signs, while it is configured.
	if code, body := w.deliver("issues", "d-issues", map[string]any{"action": "opened"}, []byte("the secret before rotation")); code != 202 || !strings.Contains(body, "ignored") {
		t.Errorf("issues event signed with the old secret: %d %s, want 202 ignored", code, body)
	}
	r1 := w.waitRun("r1")
	if r1.State != queue.Succeeded || r1.Record == nil || r1.Record.Verdict != "released" || !r1.Record.Verified || !r1.Record.Consensus {
		t.Fatalf("r1: %s %+v", r1.State, r1.Record)
	}
	if r1.Request.Commit != c1 || len(r1.Record.Builders) != 2 || len(r1.Record.Artifacts) != 1 || !r1.Record.Artifacts[0].Released {
		t.Errorf("r1 built %s by %v: %+v", r1.Request.Commit, r1.Record.Builders, r1.Record.Artifacts)
	}
	if !hasEvidence(r1.Record, "vsa") || !hasEvidence(r1.Record, "provenance") {
		t.Errorf("r1 evidence: %+v", r1.Record.Evidence)
	}
	w.checkRunsOf(t, c1, "success")

	// A commit that brings its own pipeline and Tekton files: built by the
	// configured pipeline only.
	c2 := w.app.commit("main", "bring my own pipeline", map[string]string{
		"which": "two\n", ".tekton/pipeline.yaml": "apiVersion: tekton.dev/v1\nkind: Pipeline\nmetadata: {name: evil}\n", "pipeline.yaml": "kind: Pipeline\n",
	})
	if code, _ := w.deliver("push", "d-2", w.pushPayload("main", c1, c2, "bring my own pipeline"), w.secret); code != 202 {
		t.Fatalf("second push: %d", code)
	}
	r2 := w.waitRun("r2")
	if r2.State != queue.Succeeded || r2.Record.PipelineDigest != r1.Record.PipelineDigest || r2.Request.Commit != c2 {
		t.Errorf("r2: %s, pipeline %s (r1 %s), commit %s", r2.State, r2.Record.PipelineDigest, r1.Record.PipelineDigest, r2.Request.Commit)
	}

	w.forkPullRequest(t)
	w.disagreement(t)

	// GitHub's "Re-run": the same request again, as a new run.
	rerun := map[string]any{"action": "rerequested", "repository": map[string]any{"id": 1, "full_name": serveRepo, "clone_url": w.app.url()},
		"sender":    map[string]any{"login": "alice"},
		"check_run": map[string]any{"id": 9001, "head_sha": c1, "external_id": "r1", "status": "completed", "app": map[string]any{"id": w.gh.AppID}}}
	if code, body := w.deliver("check_run", "d-rerun", rerun, w.secret); code != 202 {
		t.Fatalf("check_run rerequested: %d %s", code, body)
	}
	r5 := w.waitRun("r5")
	if r5.State != queue.Succeeded || r5.Request.Rerun != "r1" || r5.Request.Commit != c1 || r5.Record.Artifacts[0].Digest != r1.Record.Artifacts[0].Digest {
		t.Errorf("rerun r5: %s %+v %+v", r5.State, r5.Request, r5.Record)
	}

	w.samePullRequest(t)

	found := false
	for _, a := range w.gh.RedeliveryAttempts() {
		found = found || a.GUID == "missed-1" && a.StatusCode == 202
	}
	if !found {
		t.Errorf("the missed delivery was not redelivered: %+v", w.gh.RedeliveryAttempts())
	}
	w.pages(t)
}

// completedCheckRuns waits until the check runs of sha are completed
// (the server reports a run's end just after recording it) and returns
// them.
func (w *serveWorld) completedCheckRuns(repo, sha string) []fakegithub.CheckRun {
	w.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var found []fakegithub.CheckRun
		done := true
		for _, cr := range w.gh.CheckRuns(repo) {
			if cr.HeadSHA == sha {
				found = append(found, cr)
				done = done && cr.Status == "completed"
			}
		}
		if done && len(found) > 0 || time.Now().After(deadline) {
			return found
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func hasEvidence(r *queue.Record, kind string) bool {
	for _, e := range r.Evidence {
		if e.Kind == kind {
			return true
		}
	}
	return false
}

// checkRunsOf checks the fake GitHub got one check run for sha, completed
// with conclusion, after queued and in_progress updates.
func (w *serveWorld) checkRunsOf(t *testing.T, sha, conclusion string) {
	t.Helper()
	found := w.completedCheckRuns(serveRepo, sha)
	if len(found) != 1 {
		t.Fatalf("check runs for %s: %+v, want one", sha, found)
	}
	cr := found[0]
	if cr.Status != "completed" || cr.Conclusion != conclusion || cr.Updates < 2 || !strings.HasPrefix(cr.DetailsURL, w.url+"/runs/") {
		t.Errorf("check run: %+v", cr)
	}
	if strings.Contains(cr.Summary, "<script>") {
		t.Errorf("check run summary carries the commit's markup unescaped:\n%s", cr.Summary)
	}
}

// forkPullRequest: a fork's pull request is not built until a maintainer
// approves its head by sha; then the untrusted builders build it and
// nothing is released.
func (w *serveWorld) forkPullRequest(t *testing.T) {
	t.Helper()
	head := w.fork.commit("speedup", "faster", map[string]string{"which": "fork\n"})
	pr := map[string]any{
		"number": 8, "state": "open", "title": "Make it fast",
		"user": map[string]any{"login": "mallory"},
		"head": map[string]any{"ref": "speedup", "sha": head, "repo": map[string]any{"id": 2, "full_name": "mallory/app", "clone_url": w.fork.url()}},
		"base": map[string]any{"ref": "main", "repo": map[string]any{"id": 1, "full_name": serveRepo, "clone_url": w.app.url()}},
	}
	repo := map[string]any{"id": 1, "name": "app", "full_name": serveRepo, "clone_url": w.app.url()}
	if code, _ := w.deliver("pull_request", "d-pr", map[string]any{"action": "opened", "number": 8, "pull_request": pr, "repository": repo, "sender": map[string]any{"login": "mallory"}}, w.secret); code != 202 {
		t.Fatalf("fork pull request: %d", code)
	}
	w.gh.AddPull(fakegithub.Pull{Repo: serveRepo, Number: 8, Title: "Make it fast", Author: "mallory", HeadRepo: "mallory/app", HeadCloneURL: w.fork.url(), HeadRef: "speedup", HeadSHA: head})
	comment := func(id, login, body string) {
		p := map[string]any{"action": "created", "repository": repo, "sender": map[string]any{"login": login},
			"issue":   map[string]any{"number": 8, "pull_request": map[string]any{"url": "x"}, "user": map[string]any{"login": "mallory"}},
			"comment": map[string]any{"body": body, "user": map[string]any{"login": login}}}
		if code, _ := w.deliver("issue_comment", id, p, w.secret); code != 202 {
			t.Fatalf("comment %s: %d", id, code)
		}
	}
	comment("d-self-approve", "mallory", "/ok-to-test "+head)
	comment("d-approve", "alice", "/ok-to-test "+head)
	r3 := w.waitRun("r3")
	if r3.State != queue.Succeeded || !r3.Request.Untrusted || r3.Record.Verdict != "built (untrusted, not released)" || r3.Request.Commit != head {
		t.Fatalf("r3: %s untrusted=%v %+v", r3.State, r3.Request.Untrusted, r3.Record)
	}
	for _, a := range r3.Record.Artifacts {
		if a.Released {
			t.Errorf("an untrusted build released %s", a.Name)
		}
	}
	if len(r3.Record.Builders) != 1 || r3.Record.Builders[0] != "forks" {
		t.Errorf("r3 builders %v, want the untrusted file's one builder", r3.Record.Builders)
	}
	if code, body := w.get("/runs/r4.json"); code != 404 {
		t.Errorf("a run beyond the approved one exists: %d %s", code, body)
	}
}

// samePullRequest: a pull request from a branch of the repository itself
// is built by the release builders and compared, but never released and
// never given a verification summary: only configured branches and tags
// are released.
func (w *serveWorld) samePullRequest(t *testing.T) {
	t.Helper()
	head := w.app.commit("speedup", "faster, from a branch", map[string]string{"which": "branch\n"})
	repo := map[string]any{"id": 1, "name": "app", "full_name": serveRepo, "clone_url": w.app.url()}
	pr := map[string]any{
		"number": 7, "state": "open", "title": "Make it fast", "user": map[string]any{"login": "bob"},
		"head": map[string]any{"ref": "speedup", "sha": head, "repo": repo},
		"base": map[string]any{"ref": "main", "repo": repo},
	}
	if code, body := w.deliver("pull_request", "d-pr-same", map[string]any{"action": "opened", "number": 7, "pull_request": pr, "repository": repo, "sender": map[string]any{"login": "bob"}}, w.secret); code != 202 {
		t.Fatalf("pull request: %d %s", code, body)
	}
	r := w.waitRun("r6")
	if r.State != queue.Succeeded || r.Request.Untrusted || r.Record.Verdict != "built (pull request, not released)" || !r.Record.Consensus || hasEvidence(r.Record, "vsa") {
		t.Fatalf("r6: %s untrusted=%v %+v", r.State, r.Request.Untrusted, r.Record)
	}
	for _, a := range r.Record.Artifacts {
		if a.Released {
			t.Errorf("a pull request released %s", a.Name)
		}
	}
}

// disagreement: builders that disagree release nothing; the run fails
// with the divergence report as its evidence, and so does its check run.
func (w *serveWorld) disagreement(t *testing.T) {
	t.Helper()
	c := w.app.commit("flaky", "random bytes", map[string]string{"which": "flaky\n"})
	p := w.pushPayload("main", "", c, "random bytes")
	p["repository"] = map[string]any{"id": 3, "name": "flaky", "full_name": "acme/flaky", "clone_url": w.app.url()}
	if code, body := w.deliver("push", "d-flaky", p, w.secret); code != 202 {
		t.Fatalf("flaky push: %d %s", code, body)
	}
	r := w.waitRun("r4")
	if r.State != queue.Failed || r.Record.Verdict != "builders disagree" || r.Record.Consensus || !hasEvidence(r.Record, "divergence") || hasEvidence(r.Record, "vsa") {
		t.Fatalf("r4: %s %+v", r.State, r.Record)
	}
	for _, a := range r.Record.Artifacts {
		if a.Released {
			t.Errorf("released %s without agreement", a.Name)
		}
	}
	for _, cr := range w.completedCheckRuns("acme/flaky", c) {
		if cr.Conclusion != "failure" {
			t.Errorf("check run of a disagreement: %s/%s", cr.Status, cr.Conclusion)
		}
	}
	if code, ev := w.get("/runs/r4/evidence/" + evidenceIndex(r.Record, "divergence")); code != 200 || !strings.Contains(ev, "payload") {
		t.Errorf("divergence evidence: %d %.200s", code, ev)
	}
}

func evidenceIndex(r *queue.Record, kind string) string {
	for i, e := range r.Evidence {
		if e.Kind == kind {
			return fmt.Sprint(i)
		}
	}
	return "none"
}

// pages: the status page lists the runs with the payload's markup as
// text, a run page shows its steps, the metrics count the deliveries.
func (w *serveWorld) pages(t *testing.T) {
	t.Helper()
	code, index := w.get("/")
	if code != 200 || !strings.Contains(index, "/runs/r1") || !strings.Contains(index, "/runs/r3") {
		t.Errorf("index: %d\n%s", code, index)
	}
	if strings.Contains(index, "<script>alert") {
		t.Errorf("index carries the commit's markup unescaped")
	}
	if code, page := w.get("/runs/r1"); code != 200 || !strings.Contains(page, "emit") {
		t.Errorf("run page: %d\n%s", code, page)
	}
	if code, ev := w.get("/runs/r1/evidence/0"); code != 200 || !strings.Contains(ev, "payload") {
		t.Errorf("evidence: %d %.200s", code, ev)
	}
	_, m := w.get("/metrics")
	for _, want := range []string{`accord_webhook_deliveries_total{event="push",verdict="accepted"} 3`, `accord_webhook_deliveries_total{event="unverified",verdict="unauthorized"} 2`, `accord_runs_total{result="succeeded"} 5`, `accord_runs_total{result="failed"} 1`, `accord_webhook_deliveries_total{event="issues",verdict="ignored"} 2`, "accord_queue_commits_total ", "accord_queue_deliveries_stored_total "} {
		if !strings.Contains(m, want) {
			var lines []string
			for _, l := range strings.Split(m, "\n") {
				if strings.HasPrefix(l, "accord_") {
					lines = append(lines, l)
				}
			}
			t.Errorf("metrics lack %s:\n%s", want, strings.Join(lines, "\n"))
		}
	}
}

// TestDoctorServeConfig: doctor names each of the server's missing
// prerequisites with its field and fix, and a config error with its file
// and field.
func TestDoctorServeConfig(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "serve.yaml")
	write(t, cfg, `apiVersion: accord.dev/v1alpha1
kind: ServerConfig
listen: 127.0.0.1:0
stateDir: state
secrets: [{file: no-such-secret}]
repos:
- name: acme/app
  pipeline: go-image
  branches: [main]
  builders: {file: no-such-builders.yaml}
  policy: no-such-policy.yaml
`)
	stdout, _, err := accord(t, "doctor", "--serve-config", cfg, "-o", "json")
	if exitCode(err) != exitNotVerified {
		t.Fatalf("doctor: exit %d (%v), want 1\n%s", exitCode(err), err, stdout)
	}
	var rep struct {
		Checks []check `json:"checks"`
	}
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, stdout)
	}
	got := map[string]check{}
	for _, c := range rep.Checks {
		got[c.Name] = c
	}
	for _, tc := range []struct {
		name string
		ok   bool
		in   string
	}{
		{"serve config", true, cfg},
		{"webhook secrets", false, "no-such-secret"},
		{"state directory", true, "state"},
		{"listen address", true, "127.0.0.1:0"},
		{"repositories", false, "repos[0].policy"},
	} {
		c, ok := got[tc.name]
		if !ok || c.OK != tc.ok || !strings.Contains(c.Detail, tc.in) || !c.OK && c.Fix == "" {
			t.Errorf("check %q = %+v, want ok=%v, detail with %q and a fix when not ok", tc.name, c, tc.ok, tc.in)
		}
	}

	write(t, cfg, "apiVersion: accord.dev/v1alpha1\nkind: ServerConfig\nstateDir: s\nsecrets: [{file: x}]\nrepos: [{name: app}]\n")
	stdout, _, _ = accord(t, "doctor", "--serve-config", cfg)
	if !strings.Contains(stdout, "field repos[0].name") || !strings.Contains(stdout, "fix:") {
		t.Errorf("doctor on a malformed config:\n%s", stdout)
	}
}

// TestServeRefusesSharedBuilders: fork code must never be built by a
// release builder: the server refuses to start when an untrusted builder
// has a release builder's key, or its identity (evidence is replaced by
// identity, so it would overwrite the release's provenance).
func TestServeRefusesSharedBuilders(t *testing.T) {
	t.Setenv("ACCORD_PASSWORD", "")
	pipeline, _ := filepath.Abs("testdata/from-source.yaml")
	initDir := func(name string) string {
		d := filepath.Join(t.TempDir(), name)
		if _, stderr, err := accord(t, "builders", "init", d, "--validators", "0"); err != nil {
			t.Fatalf("builders init: %v\n%s", err, stderr)
		}
		return d
	}
	trusted := initDir("trusted")
	sameID := initDir("same-id") // its own key, but named primary as well
	sameKey := filepath.Join(t.TempDir(), "same-key")
	if err := os.MkdirAll(sameKey, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"primary.key", "primary.pub"} {
		b, err := os.ReadFile(filepath.Join(trusted, f))
		if err != nil {
			t.Fatal(err)
		}
		write(t, filepath.Join(sameKey, f), string(b))
	}
	b, _ := os.ReadFile(filepath.Join(trusted, "builders.yaml"))
	write(t, filepath.Join(sameKey, "builders.yaml"), strings.Replace(string(b), "name: primary", "name: forks", 1))
	for _, tc := range []struct{ name, untrusted, want string }{
		{"same key", sameKey, "release key"},
		{"same identity", sameID, "identity https://accord.dev/builders/primary"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			write(t, filepath.Join(dir, "secret"), "s3cret-value")
			cfgFile := filepath.Join(dir, "serve.yaml")
			write(t, cfgFile, fmt.Sprintf(`apiVersion: accord.dev/v1alpha1
kind: ServerConfig
stateDir: state
secrets: [{file: secret}]
repos:
- name: acme/app
  pipeline: %s
  branches: [main]
  pullRequests: true
  builders: {file: %s}
  untrusted: {file: %s}
  policy: %s
`, pipeline, filepath.Join(trusted, "builders.yaml"), filepath.Join(tc.untrusted, "builders.yaml"), filepath.Join(trusted, "policy.yaml")))
			cfg, err := config.Load(cfgFile)
			if err != nil {
				t.Fatal(err)
			}
			_, err = serve.New(context.Background(), cfg, serve.Options{})
			var ce *config.Error
			if !errors.As(err, &ce) || ce.Field != "repos[0].untrusted.file" || !strings.Contains(ce.Msg, tc.want) || ce.Fix == "" {
				t.Fatalf("serve.New = %v, want a config error on repos[0].untrusted.file naming %q", err, tc.want)
			}
		})
	}
}

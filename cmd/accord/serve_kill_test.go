package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	ggcrv1 "github.com/google/go-containerregistry/pkg/v1"
	"sigs.k8s.io/yaml"

	"github.com/accord-build/accord/internal/build"
	"github.com/accord-build/accord/internal/queue"
	"github.com/accord-build/accord/internal/store"
)

// These tests run 'accord serve' as a real child process (this test
// binary re-executed as accord, see TestMain), kill it, stop it and start
// it again, and check in its queue and store what became of every
// delivery: real builds of testdata/from-source.yaml with one builder.

// killWorld is what one 'accord serve' needs: a bare repository with a
// branch per build, builders and their policy, a secret and a config.
type killWorld struct {
	dir, config, stateDir, store, secret, addr string
	cloneURL                                   string
	commits                                    map[string]string // branch -> commit
	contents                                   map[string]string // branch -> the file "which"
	main                                       string            // the commit of main
	procs                                      int
}

// newKillWorld prepares a server whose repository acme/app has the given
// branches (each with its own commit); branches matching b* are built.
func newKillWorld(t *testing.T, branches ...string) *killWorld {
	t.Helper()
	w := &killWorld{dir: t.TempDir(), store: builderStore(t), commits: map[string]string{}, contents: map[string]string{}}
	t.Setenv("ACCORD_PASSWORD", "")
	bdir := filepath.Join(w.dir, "builders")
	if _, stderr, err := accord(t, "builders", "init", bdir, "--validators", "0"); err != nil {
		t.Fatalf("builders init: %v\n%s", err, stderr)
	}
	w.servePolicy(t, filepath.Join(bdir, "policy.yaml"))
	w.gitBranches(t, branches)
	w.secret = "kill-test-" + hex.EncodeToString(randomBytes(t, 8))
	if err := os.WriteFile(filepath.Join(w.dir, "webhook-secret"), []byte(w.secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	w.addr = ln.Addr().String()
	ln.Close()
	pipeline, err := filepath.Abs("testdata/from-source.yaml")
	if err != nil {
		t.Fatal(err)
	}
	w.stateDir = filepath.Join(w.dir, "state")
	w.config = filepath.Join(w.dir, "serve.yaml")
	cfg := fmt.Sprintf(`apiVersion: accord.dev/v1alpha1
kind: ServerConfig
listen: %s
stateDir: state
store: %s
secrets: [{file: webhook-secret}]
workers: 1
retry: {attempts: 3, backoff: 1s}
repos:
- name: acme/app
  cloneURL: %s
  pipeline: %s
  branches: ["b*"]
  builders: {file: %s}
  policy: %s
`, w.addr, w.store, w.cloneURL, pipeline, filepath.Join(bdir, "builders.yaml"), filepath.Join(bdir, "policy.yaml"))
	if err := os.WriteFile(w.config, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return w
}

func randomBytes(t *testing.T, n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// servePolicy rewrites the policy 'builders init' wrote to pin the test
// pipeline's digest (its file artifacts have no SBOM).
func (w *killWorld) servePolicy(t *testing.T, file string) {
	t.Helper()
	pipeline, err := filepath.Abs("testdata/from-source.yaml")
	if err != nil {
		t.Fatal(err)
	}
	r, err := build.Resolve(context.Background(), pipeline, false)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	doc["pipelines"], doc["sbom"] = []string{r.Digest}, "optional"
	if b, err = yaml.Marshal(doc); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// gitBranches makes a bare repository with main and, for each branch,
// one commit of its own on top of main.
func (w *killWorld) gitBranches(t *testing.T, branches []string) {
	t.Helper()
	work, bare := filepath.Join(w.dir, "work"), filepath.Join(w.dir, "app.git")
	env := append(os.Environ(), "GIT_AUTHOR_DATE=@1700000000 +0000", "GIT_COMMITTER_DATE=@1700000000 +0000", "GIT_CONFIG_GLOBAL=/dev/null",
		"GIT_AUTHOR_NAME=a", "GIT_AUTHOR_EMAIL=a@example.com", "GIT_COMMITTER_NAME=a", "GIT_COMMITTER_EMAIL=a@example.com")
	git := func(dir string, args ...string) string {
		cmd := exec.Command("git", args...)
		cmd.Dir, cmd.Env = dir, env
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	commit := func(branch, content string) string {
		if err := os.WriteFile(filepath.Join(work, "which"), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		git(work, "add", "which")
		git(work, "commit", "-q", "-m", "commit of "+branch)
		return git(work, "rev-parse", "HEAD")
	}
	git(w.dir, "init", "-q", "-b", "main", work)
	w.main = commit("main", "main\n")
	for _, b := range branches {
		git(work, "checkout", "-q", "-b", b, "main")
		w.contents[b] = "branch " + b + "\n"
		w.commits[b] = commit(b, w.contents[b])
	}
	git(w.dir, "clone", "-q", "--bare", work, bare)
	w.cloneURL = "file://" + bare
}

// server is one 'accord serve' process.
type server struct {
	cmd  *exec.Cmd
	log  string
	done chan error
}

// start runs 'accord serve' and waits until it is ready.
func (w *killWorld) start(t *testing.T, extra ...string) *server {
	t.Helper()
	w.procs++
	s := &server{log: filepath.Join(w.dir, fmt.Sprintf("serve-%d.log", w.procs)), done: make(chan error, 1)}
	logf, err := os.Create(s.log)
	if err != nil {
		t.Fatal(err)
	}
	s.cmd = exec.Command(os.Args[0], append([]string{"serve", "--config", w.config}, extra...)...)
	s.cmd.Env = append(os.Environ(), runMainEnv+"=1")
	s.cmd.Stdout, s.cmd.Stderr = logf, logf
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { s.done <- s.cmd.Wait(); logf.Close() }()
	t.Cleanup(func() { s.cmd.Process.Kill(); <-s.done; s.done <- nil })
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-s.done:
			s.done <- err
			t.Fatalf("accord serve exited at start: %v\n%s", err, readFile(t, s.log))
		default:
		}
		if resp, err := http.Get("http://" + w.addr + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("accord serve not ready after 60s\n%s", readFile(t, s.log))
	return nil
}

// kill sends SIGKILL and waits for the process to be gone.
func (s *server) kill(t *testing.T) {
	t.Helper()
	if err := s.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	err := <-s.done
	s.done <- err
}

// stop sends SIGTERM and wants a clean exit within timeout.
func (s *server) stop(t *testing.T, timeout time.Duration) {
	t.Helper()
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-s.done:
		s.done <- err
		if err != nil {
			t.Fatalf("accord serve after SIGTERM: %v\n%s", err, readFile(t, s.log))
		}
	case <-time.After(timeout):
		t.Fatalf("accord serve still running %s after SIGTERM\n%s", timeout, readFile(t, s.log))
	}
}

func readFile(t *testing.T, f string) string {
	b, err := os.ReadFile(f)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// delivery is one signed webhook delivery.
type delivery struct {
	id, event string
	body      []byte
	branch    string // the branch a built push builds
}

func newGUID(t *testing.T) string {
	b := randomBytes(t, 16)
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

// push is a push of commit to branch of acme/app, as GitHub sends it.
func (w *killWorld) push(t *testing.T, branch, commit string) delivery {
	p := map[string]any{
		"ref": "refs/heads/" + branch, "before": strings.Repeat("0", 40), "after": commit,
		"created": true, "deleted": false, "forced": false, "compare": "https://github.com/acme/app/compare/" + commit[:12],
		"repository": map[string]any{"id": 1, "name": "app", "full_name": "acme/app", "clone_url": "https://github.com/acme/app.git", "default_branch": "main"},
		"pusher":     map[string]any{"name": "alice", "email": "alice@example.com"},
		"sender":     map[string]any{"login": "alice", "id": 2},
		"head_commit": map[string]any{"id": commit, "message": "commit of " + branch + "\n\nmore", "timestamp": "2026-12-01T10:00:00Z",
			"author": map[string]any{"name": "alice", "email": "alice@example.com"}},
	}
	b, _ := json.Marshal(p)
	d := delivery{id: newGUID(t), event: "push", body: b}
	if strings.HasPrefix(branch, "b") {
		d.branch = branch
	}
	return d
}

// issue is an issues event, which the server does not build.
func issue(t *testing.T, n int) delivery {
	b, _ := json.Marshal(map[string]any{
		"action": "opened", "issue": map[string]any{"number": n, "title": fmt.Sprintf("issue %d <b>markup</b>", n), "state": "open"},
		"repository": map[string]any{"id": 1, "name": "app", "full_name": "acme/app"}, "sender": map[string]any{"login": "bob"},
	})
	return delivery{id: newGUID(t), event: "issues", body: b}
}

// send posts d signed with secret; it returns the status (0: no reply).
func send(client *http.Client, url, secret string, d delivery) (int, error) {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(d.body)
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(d.body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-GitHub-Event", d.event)
	req.Header.Set("X-GitHub-Delivery", d.id)
	req.Header.Set("X-GitHub-Hook-ID", "1")
	req.Header.Set("X-Hub-Signature-256", "sha256="+hex.EncodeToString(mac.Sum(nil)))
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}

// job reads run id from the server's JSON view; ok is false on 404.
func (w *killWorld) job(t *testing.T, id string) (*queue.Job, bool) {
	t.Helper()
	resp, err := http.Get("http://" + w.addr + "/runs/" + id + ".json")
	if err != nil {
		t.Fatalf("GET /runs/%s.json: %v", id, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		return nil, false
	}
	var j queue.Job
	if err := json.NewDecoder(resp.Body).Decode(&j); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /runs/%s.json: %d %v", id, resp.StatusCode, err)
	}
	return &j, true
}

// waitFinal polls the server until its runs are all final and no new one
// appeared for a few seconds (the dispatcher's tick is 2s); for 20 s when
// there are fewer than n (the checks after it then say what is missing).
func (w *killWorld) waitFinal(t *testing.T, s *server, n int, timeout time.Duration) {
	t.Helper()
	deadline, stableSince, last := time.Now().Add(timeout), time.Time{}, -1
	for time.Now().Before(deadline) {
		count, final := 0, true
		for i := 1; ; i++ {
			j, ok := w.job(t, fmt.Sprintf("r%d", i))
			if !ok {
				break
			}
			count++
			final = final && j.State.Final()
		}
		stable := 3 * time.Second
		if count < n {
			stable = 20 * time.Second
		}
		switch {
		case count != last || !final:
			last, stableSince = count, time.Now()
		case time.Since(stableSince) > stable:
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("runs not all final after %s (%d runs, want %d)\n%s", timeout, last, n, readFile(t, s.log))
}

// logEvents counts, across the processes' JSON logs, the lines with msg
// per run id.
func logEvents(t *testing.T, logs []string, msg string) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, f := range logs {
		fh, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(fh)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			var line struct{ Msg, Run string }
			if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == msg {
				out[line.Run]++
			}
		}
		fh.Close()
	}
	return out
}

// checkReleased wants job to have released and verified the content of
// its branch, and returns how many released markers its artifact has.
func (w *killWorld) checkReleased(t *testing.T, st store.Store, j *queue.Job, branch string) int {
	t.Helper()
	rec := j.Record
	if j.State != queue.Succeeded || rec == nil || rec.Verdict != "released" || !rec.Verified || !rec.Consensus || len(rec.Artifacts) != 1 {
		t.Errorf("run %s (branch %s): state %s, record %+v; want succeeded, released, verified", j.ID, branch, j.State, rec)
		return 0
	}
	a := rec.Artifacts[0]
	sum := sha256.Sum256([]byte(w.contents[branch]))
	if want := "sha256:" + hex.EncodeToString(sum[:]); a.Digest != want || !a.Released {
		t.Errorf("run %s (branch %s): artifact %+v, want digest %s released", j.ID, branch, a, want)
	}
	for _, ev := range rec.Evidence {
		if ev.Kind != "provenance" {
			continue
		}
		name, dg, _ := strings.Cut(ev.Ref, "@")
		if !released(t, st, name, dg) {
			t.Errorf("run %s: %s carries no released marker in the store", j.ID, ev.Ref)
		}
		h, err := ggcrv1.NewHash(dg)
		if err != nil {
			t.Fatal(err)
		}
		layers, _ := store.Layers(context.Background(), st, store.AttachmentRef(store.Name(st, name), h, releasedSuffix))
		return len(layers)
	}
	t.Errorf("run %s: no provenance in its record %+v", j.ID, rec.Evidence)
	return 0
}

// burst is the kill test's deliveries: a built push to each branch, pushes
// to branches that are not built, issues events (not built either), and,
// at the end, redeliveries (same id) of the first few built pushes.
func (w *killWorld) burst(t *testing.T, branches []string, redeliveries int) []delivery {
	var out []delivery
	for _, b := range branches {
		out = append(out, w.push(t, b, w.commits[b]))
	}
	for i := 0; i < 140; i++ {
		out = append(out, issue(t, i), w.push(t, fmt.Sprintf("other-%d", i), w.main))
	}
	r := mrand.New(mrand.NewPCG(1, 2))
	r.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	n := 0
	for _, d := range out {
		if d.branch != "" && n < redeliveries {
			out, n = append(out, d), n+1
		}
	}
	return out
}

// reply is what one delivery of the burst got, and from which process.
type reply struct {
	code, proc int
}

func ok2xx(code int) bool { return code >= 200 && code < 300 }

// fireBurst sends ds from 8 goroutines; when half are acknowledged it
// kills the server with SIGKILL and starts it again, holding the senders
// back until the new process is ready (what was in flight fails). It
// returns each delivery's reply and the new server.
func (w *killWorld) fireBurst(t *testing.T, s *server, ds []delivery) ([]reply, *server) {
	t.Helper()
	url := "http://" + w.addr + "/webhooks/github"
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 8}}
	replies := make([]reply, len(ds))
	var gate atomic.Pointer[chan struct{}]
	open := make(chan struct{})
	close(open)
	gate.Store(&open)
	var next, acked atomic.Int64
	var proc atomic.Int32
	proc.Store(1)
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= len(ds) {
					return
				}
				<-*gate.Load()
				p := int(proc.Load())
				code, _ := send(client, url, w.secret, ds[i])
				replies[i] = reply{code, p}
				if ok2xx(code) {
					acked.Add(1)
				}
				time.Sleep(3 * time.Millisecond)
			}
		}()
	}
	for acked.Load() < int64(len(ds)/2) && next.Load() < int64(len(ds)) {
		time.Sleep(time.Millisecond)
	}
	held := make(chan struct{})
	gate.Store(&held)
	s.kill(t)
	proc.Store(2)
	t.Logf("SIGKILL after %d of %d deliveries were acknowledged", acked.Load(), len(ds))
	s = w.start(t)
	close(held)
	wg.Wait()
	return replies, s
}

// TestServeKill: a burst of 300 signed deliveries (20 pushes to built
// branches, each its own commit; pushes to other branches; issues events;
// redeliveries of built pushes) from 8 connections; the server is killed
// with SIGKILL when half are acknowledged and started again, and the rest
// goes to the new process; what got no reply is then redelivered, as the
// server's redelivery would ask GitHub to. Every delivery that got a 2xx
// is in the queue and was dispatched; each built commit has exactly one
// run, which finished exactly once (the server's logs of both processes),
// succeeded, released and verified the branch's content; only the run
// the kill interrupted was started twice, and nothing else was released
// twice.
func TestServeKill(t *testing.T) {
	var branches []string
	for i := 1; i <= 20; i++ {
		branches = append(branches, fmt.Sprintf("b%02d", i))
	}
	w := newKillWorld(t, branches...)
	ds := w.burst(t, branches, 10)
	s1 := w.start(t)
	replies, s2 := w.fireBurst(t, s1, ds)
	before, after, failed := 0, 0, 0
	for i, r := range replies {
		switch {
		case !ok2xx(r.code):
			failed++
			if r.code != 0 && r.code != http.StatusServiceUnavailable {
				t.Errorf("delivery %s (%s): status %d, want a 2xx, or no reply at the kill", ds[i].id, ds[i].event, r.code)
			}
		case r.proc == 1:
			before++
		default:
			after++
		}
	}
	t.Logf("acknowledged by the killed process %d, by the new one %d, no reply %d", before, after, failed)
	if before == 0 || after == 0 {
		t.Fatalf("the kill was not mid-burst: %d acknowledged before, %d after", before, after)
	}
	// What got no reply is redelivered: stored already (200 duplicate)
	// or not (202).
	url := "http://" + w.addr + "/webhooks/github"
	dupOfLost := 0
	for i := range ds {
		if ok2xx(replies[i].code) {
			continue
		}
		code, err := send(http.DefaultClient, url, w.secret, ds[i])
		if !ok2xx(code) {
			t.Fatalf("redelivery of %s: %d %v", ds[i].id, code, err)
		}
		if code == http.StatusOK {
			dupOfLost++
		}
		replies[i] = reply{code, 3}
	}
	t.Logf("of the %d without a reply, %d had been stored before the kill", failed, dupOfLost)
	w.waitFinal(t, s2, len(branches), 3*time.Minute)
	s2.stop(t, time.Minute)
	w.checkKillQueue(t, ds, replies, branches, []string{s1.log, s2.log})
}

// checkKillQueue checks the queue and store after TestServeKill.
func (w *killWorld) checkKillQueue(t *testing.T, ds []delivery, replies []reply, branches []string, logs []string) {
	t.Helper()
	q, err := queue.Open(filepath.Join(w.stateDir, "queue.db"), queue.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	checkDeliveries(t, q, ds, replies)
	w.checkRuns(t, q, branches, logs)
}

// checkDeliveries wants every delivery that got a 2xx in the queue,
// dispatched, each built push with one run, and no id accepted twice.
func checkDeliveries(t *testing.T, q *queue.Queue, ds []delivery, replies []reply) {
	t.Helper()
	ctx := context.Background()
	codes := map[string][]int{}
	for i, d := range ds {
		codes[d.id] = append(codes[d.id], replies[i].code)
		sd, ok, err := q.Delivery(ctx, d.id)
		if err != nil || !ok {
			t.Errorf("delivery %s (%s) got %d but is not in the queue: %v", d.id, d.event, replies[i].code, err)
			continue
		}
		want := queue.DeliveryIgnored // issues, pushes to branches not built
		if d.branch != "" {
			want = queue.DeliveryDispatched
		}
		if sd.State != want {
			t.Errorf("delivery %s (%s %s) is %s (%s), want %s", d.id, d.event, d.branch, sd.State, sd.Note, want)
		}
		if d.branch != "" {
			if jobs, err := q.JobsOf(ctx, d.id); err != nil || len(jobs) != 1 {
				t.Errorf("push to %s (delivery %s): %d runs (%v), want 1", d.branch, d.id, len(jobs), err)
			}
		}
	}
	for id, cs := range codes {
		if len(cs) == 2 && cs[0] == http.StatusAccepted && cs[1] == http.StatusAccepted {
			t.Errorf("delivery %s sent twice got %v: accepted twice, want the second a 200 duplicate", id, cs)
		}
	}
}

// checkRuns wants one run per built branch, each finished once (the logs
// of every process), released and verified; only the run the kill
// interrupted may have started twice.
func (w *killWorld) checkRuns(t *testing.T, q *queue.Queue, branches []string, logs []string) {
	t.Helper()
	ctx := context.Background()
	jobs, err := q.Jobs(ctx, 1000)
	if err != nil {
		t.Fatal(err)
	}
	branchOf := map[string]string{}
	for b, c := range w.commits {
		branchOf[c] = b
	}
	finished, started := logEvents(t, logs, "run finished"), logEvents(t, logs, "run started")
	perBranch, restarted := map[string]int{}, 0
	st, err := store.Open(w.store)
	if err != nil {
		t.Fatal(err)
	}
	for i := range jobs {
		j := &jobs[i]
		b := branchOf[j.Request.Commit]
		perBranch[b]++
		if finished[j.ID] != 1 {
			t.Errorf("run %s (branch %s) finished %d times in the logs, want once", j.ID, b, finished[j.ID])
		}
		markers := w.checkReleased(t, st, j, b)
		switch {
		case started[j.ID] == 1 && markers != 1:
			t.Errorf("run %s started once but its artifact has %d released markers", j.ID, markers)
		case started[j.ID] > 1:
			restarted++
			t.Logf("run %s was interrupted by the kill and run again (started %d times, attempt %d, %d released markers)", j.ID, started[j.ID], j.Attempt, markers)
		}
	}
	if restarted > 1 {
		t.Errorf("%d runs were started twice; with one worker only the one the kill interrupted may be", restarted)
	}
	for _, b := range branches {
		if perBranch[b] != 1 {
			t.Errorf("branch %s (commit %s): %d runs, want exactly 1", b, w.commits[b], perBranch[b])
		}
	}
	if len(jobs) != len(branches) {
		t.Errorf("%d runs, want %d (one per built push)", len(jobs), len(branches))
	}
}

// TestServeSigterm: SIGTERM while a run is in progress. With a grace
// period shorter than the build, the run is stopped and queued again, the
// process exits 0, and the next process runs it from the start to a
// release; with a longer one, the run finishes before the process exits
// and the next process does not run it again. Either way it finished
// exactly once.
func TestServeSigterm(t *testing.T) {
	for _, tc := range []struct {
		name, grace string
		finishFirst bool
	}{
		{"grace too short: requeued", "1ms", false},
		{"within the grace: finished", "2m", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newKillWorld(t, "b1")
			s1 := w.start(t, "--shutdown-grace", tc.grace)
			code, err := send(http.DefaultClient, "http://"+w.addr+"/webhooks/github", w.secret, w.push(t, "b1", w.commits["b1"]))
			if code != http.StatusAccepted {
				t.Fatalf("push: %d %v", code, err)
			}
			w.waitState(t, s1, "r1", queue.Running)
			s1.stop(t, 90*time.Second)
			interrupted := logEvents(t, []string{s1.log}, "run interrupted by shutdown; queued again")["r1"]
			finished := logEvents(t, []string{s1.log}, "run finished")["r1"]
			if tc.finishFirst != (finished == 1) || tc.finishFirst == (interrupted == 1) {
				t.Fatalf("grace %s: r1 finished %d, interrupted %d times in the first process, want finished %v\n%s", tc.grace, finished, interrupted, tc.finishFirst, readFile(t, s1.log))
			}
			q, err := queue.Open(filepath.Join(w.stateDir, "queue.db"), queue.Options{})
			if err != nil {
				t.Fatal(err)
			}
			j, _, err := q.Job(context.Background(), "r1")
			q.Close()
			if want := map[bool]queue.JobState{true: queue.Succeeded, false: queue.Queued}[tc.finishFirst]; err != nil || j.State != want {
				t.Fatalf("after SIGTERM r1 is %v (%v), want %s", j, err, want)
			}
			s2 := w.start(t)
			w.waitFinal(t, s2, 1, 2*time.Minute)
			s2.stop(t, time.Minute)
			logs := []string{s1.log, s2.log}
			if n := logEvents(t, logs, "run finished")["r1"]; n != 1 {
				t.Errorf("r1 finished %d times, want once", n)
			}
			if n := logEvents(t, []string{s2.log}, "run started")["r1"]; n != map[bool]int{true: 0, false: 1}[tc.finishFirst] {
				t.Errorf("the second process started r1 %d times", n)
			}
			q, err = queue.Open(filepath.Join(w.stateDir, "queue.db"), queue.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer q.Close()
			jobs, err := q.Jobs(context.Background(), 10)
			if err != nil || len(jobs) != 1 {
				t.Fatalf("%d runs (%v), want 1", len(jobs), err)
			}
			st, err := store.Open(w.store)
			if err != nil {
				t.Fatal(err)
			}
			w.checkReleased(t, st, &jobs[0], "b1")
		})
	}
}

// waitState polls run id until it is in state.
func (w *killWorld) waitState(t *testing.T, s *server, id string, state queue.JobState) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		if j, ok := w.job(t, id); ok && j.State == state {
			return
		} else if ok && j.State.Final() {
			t.Fatalf("run %s is already %s, want %s\n%s", id, j.State, state, readFile(t, s.log))
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("run %s not %s after a minute\n%s", id, state, readFile(t, s.log))
}

package web

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"sync"
	"time"

	"github.com/accord-build/accord/internal/queue"
	"github.com/accord-build/accord/internal/trigger"
)

// fakeRuns is an in-test Runs: jobs newest first, as the queue keeps them.
type fakeRuns struct {
	mu     sync.Mutex
	jobs   []queue.Job
	err    error
	limits []int
}

func (f *fakeRuns) Jobs(ctx context.Context, limit int) ([]queue.Job, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.limits = append(f.limits, limit)
	if f.err != nil {
		return nil, f.err
	}
	n := min(limit, len(f.jobs))
	return append([]queue.Job(nil), f.jobs[:n]...), nil
}

func (f *fakeRuns) Job(ctx context.Context, id string) (*queue.Job, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return nil, false, f.err
	}
	for i := range f.jobs {
		if f.jobs[i].ID == id {
			j := f.jobs[i]
			return &j, true, nil
		}
	}
	return nil, false, nil
}

// fakeEvidence is an in-test Evidence; the ref "broken" fails as a store
// that cannot be reached would.
type fakeEvidence map[string][]byte

func (f fakeEvidence) Fetch(ctx context.Context, _ *queue.Job, ev queue.RecordEvidence) ([]byte, error) {
	ref := ev.Ref
	if ref == "broken" {
		return nil, errors.New("store unreachable")
	}
	b, ok := f[ref]
	if !ok {
		return nil, fmt.Errorf("evidence %s: %w", ref, fs.ErrNotExist)
	}
	return b, nil
}

const (
	digestApp   = "sha256:4b825dc642cb6eb9a060e54bf8d69288fbee4904e3a3b6c1d4e2f0a9b8c7d6e5"
	digestApp2  = "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
	digestPipe  = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
	commitMain  = "8d3c1f0e5b7a9c2d4e6f8a0b1c3d5e7f9a1b3c5d"
	commitEvil  = "0123456789abcdef0123456789abcdef01234567"
	commitFork  = "feedfacecafebeefdeadbeef0123456789abcdef"
	hostileText = `fix: <script>alert(1)</script> "><img src=x onerror=alert(2)>`
	hostileRef  = `refs/heads/"><img src=x onerror=alert(3)>`
	hostileLog  = "step 2/3: RUN make\n</pre><script>alert(4)</script>\nerror: exit status 2\n"
)

var provenanceJSON = []byte(`{"_type":"https://in-toto.io/Statement/v1","predicateType":"https://slsa.dev/provenance/v1","subject":[{"name":"ghcr.io/acme/app","digest":{"sha256":"4b825dc642cb6eb9a060e54bf8d69288fbee4904e3a3b6c1d4e2f0a9b8c7d6e5"}}]}`)

var testEvidence = fakeEvidence{
	"oci:store@sha256:prov3": provenanceJSON,
	"oci:store@sha256:sbom3": []byte(`{"spdxVersion":"SPDX-2.3","name":"app"}`),
	"oci:store@sha256:vsa3":  []byte(`{"predicateType":"https://slsa.dev/verification_summary/v1"}`),
	"oci:store@sha256:div2":  []byte("--- a/app\n+++ b/app\n<b>not json</b>\n"),
}

func at(min, sec int) time.Time {
	return time.Date(2026, 12, 1, 14, min, sec, 0, time.FixedZone("CET", 3600))
}

// testJobs are four realistic runs, newest first: a fork pull request
// running untrusted, a released push, a push whose builders disagreed and
// whose commit message and branch carry markup, and the older push that it
// superseded.
func testJobs() []queue.Job {
	return []queue.Job{{
		ID: "r4", State: queue.Queued, Attempt: 1, Created: at(20, 0), Started: at(20, 2), NotBefore: at(21, 0),
		Error: "attempt 1: builder crun-b: runtime crun: not found in PATH",
		Request: trigger.Request{
			DeliveryID: "d4", Repo: "acme/app", Kind: trigger.KindPullRequest, PullRequest: 7,
			CloneURL: "https://github.com/contrib/app.git", Ref: "refs/pull/7/head", Commit: commitFork,
			Untrusted: true, Sender: "maintainer", Title: "Add a faster parser",
		},
	}, {
		ID: "r3", State: queue.Succeeded, Attempt: 1, Created: at(10, 0), Started: at(10, 1), Finished: at(11, 25),
		Request: trigger.Request{
			DeliveryID: "d3", Repo: "acme/app", Kind: trigger.KindPush, CloneURL: "https://github.com/acme/app.git",
			Ref: "refs/heads/main", Commit: commitMain, Sender: "alice", Title: "Release the parser (https://github.com/acme/app/issues/1234567890/comments/abcdefghijklmnopqrstuvwxyz0123456789)",
			Supersede: "acme/app refs/heads/main",
		},
		Record: releasedRecord(),
	}, {
		ID: "r2", State: queue.Failed, Attempt: 2, Created: at(5, 0), Started: at(6, 0), Finished: at(7, 30),
		Error: "attempt 1: fetching source: git: connection reset",
		Request: trigger.Request{
			DeliveryID: "d2", Repo: "acme/app", Kind: trigger.KindPush, CloneURL: "javascript:alert(5)//x/y",
			Ref: hostileRef, Commit: commitEvil, Sender: "mallory", Title: hostileText,
			Supersede: "acme/app " + hostileRef,
		},
		Record: disagreeRecord(),
	}, {
		ID: "r1", State: queue.Cancelled, Created: at(4, 0), SupersededBy: "r2",
		Error: "superseded by r2",
		Request: trigger.Request{
			DeliveryID: "d1", Repo: "acme/app", Kind: trigger.KindPush, CloneURL: "https://github.com/acme/app.git",
			Ref: hostileRef, Commit: "1111111111111111111111111111111111111111", Sender: "mallory", Title: "wip",
			Supersede: "acme/app " + hostileRef,
		},
	}}
}

func releasedRecord() *queue.Record {
	return &queue.Record{
		Pipeline: "go-app", PipelineDigest: digestPipe, Builders: []string{"runc-a", "crun-b"},
		Verdict: "released", Consensus: true, Verified: true, Seconds: 84.2,
		Artifacts: []queue.RecordArtifact{{Name: "ghcr.io/acme/app", Digest: digestApp, Released: true}},
		Tasks: []queue.RecordTask{
			task("runc-a", "fetch-source", "Succeeded", 2.1, step("clone", 0, 2.0, "Cloning into 'source'...\nHEAD is now at 8d3c1f0\n")),
			task("runc-a", "build", "Succeeded", 61.5, step("compile", 0, 58.3, "go build -ldflags=-X=main.version="+strings.Repeat("0123456789abcdef", 16)+" ./...\n"), step("image", 0, 3.2, "")),
			task("crun-b", "fetch-source", "Succeeded", 2.4, step("clone", 0, 2.3, "Cloning into 'source'...\n")),
			task("crun-b", "build", "Succeeded", 63.0, step("compile", 0, 60.1, "go build ./...\n"), step("image", 0, 2.9, "")),
		},
		Evidence: []queue.RecordEvidence{
			{Kind: "provenance", Artifact: "ghcr.io/acme/app", Ref: "oci:store@sha256:prov3"},
			{Kind: "sbom", Artifact: "ghcr.io/acme/app", Ref: "oci:store@sha256:sbom3"},
			{Kind: "vsa", Artifact: "ghcr.io/acme/app", Ref: "oci:store@sha256:vsa3"},
		},
	}
}

func disagreeRecord() *queue.Record {
	return &queue.Record{
		Pipeline: "go-app", PipelineDigest: digestPipe, Builders: []string{"runc-a", "crun-b"},
		Verdict: "builders disagree", Seconds: 90.5,
		Reason: "runc-a built " + digestApp + " and crun-b built " + digestApp2 + ": not released",
		Artifacts: []queue.RecordArtifact{
			{Name: "ghcr.io/acme/app", Digest: digestApp},
			{Name: "ghcr.io/acme/app (crun-b)", Digest: digestApp2},
		},
		Tasks: []queue.RecordTask{
			task("runc-a", "build", "Succeeded", 40.0, step("compile", 0, 39.5, "ok\n")),
			task("crun-b", "build", "Failed", 41.2, step("compile", 2, 41.0, hostileLog)),
		},
		Evidence: []queue.RecordEvidence{
			{Kind: "divergence", Artifact: "ghcr.io/acme/app", Ref: "oci:store@sha256:div2"},
			{Kind: "provenance", Artifact: "ghcr.io/acme/app", Ref: "oci:store@sha256:gone"},
			{Kind: "sbom", Artifact: "ghcr.io/acme/app", Ref: "broken"},
		},
	}
}

func task(builder, name, status string, secs float64, steps ...queue.RecordStep) queue.RecordTask {
	return queue.RecordTask{Builder: builder, Name: name, Status: status, Seconds: secs, Steps: steps}
}

func step(name string, exit int, secs float64, log string) queue.RecordStep {
	status := "Succeeded"
	if exit != 0 {
		status = "Failed"
	}
	return queue.RecordStep{Name: name, Status: status, ExitCode: exit, Seconds: secs, Log: log}
}

// hostile is every payload-borne field of the runs set to markup (for the
// escaping tests): what an attacker controls through a push or a pull
// request.
func hostile(jobs []queue.Job, s string) []queue.Job {
	for i := range jobs {
		q := &jobs[i].Request
		q.Title, q.Ref, q.Sender, q.Repo = s, s, s, s
		q.CloneURL = "https://github.com/" + strings.ReplaceAll(s, " ", "") + ".git"
		jobs[i].Error = s
		if r := jobs[i].Record; r != nil {
			r.Reason = s
			for j := range r.Tasks {
				for k := range r.Tasks[j].Steps {
					r.Tasks[j].Steps[k].Log = s
				}
			}
		}
	}
	return jobs
}

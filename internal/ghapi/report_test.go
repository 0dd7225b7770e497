package ghapi

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"

	"github.com/accord-build/accord/internal/queue"
	"github.com/accord-build/accord/internal/testutil/fakegithub"
	"github.com/accord-build/accord/internal/trigger"
)

const runURL = "https://ci.example/runs/r1"

var t0 = time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)

func testJob() *queue.Job {
	return &queue.Job{
		ID: "r1", State: queue.Queued, Created: t0,
		Request: trigger.Request{
			DeliveryID: "d-1", Repo: "acme/app", Kind: trigger.KindPush,
			CloneURL: "https://github.com/acme/app.git", Ref: "refs/heads/main",
			Commit: headSHA, Title: "Add the widget",
		},
	}
}

// finished makes job a finished run with a full record.
func finished(job *queue.Job, state queue.JobState, verdict string) {
	job.State, job.Attempt = state, 1
	job.Started, job.Finished = t0.Add(time.Minute), t0.Add(3*time.Minute)
	job.Record = &queue.Record{
		Pipeline: "go-app", Builders: []string{"primary", "validator"}, Verdict: verdict,
		Consensus: state == queue.Succeeded, Verified: state == queue.Succeeded,
		Artifacts: []queue.RecordArtifact{{Name: "app-image", Digest: "sha256:" + strings.Repeat("ab", 32), Released: state == queue.Succeeded}},
		Tasks: []queue.RecordTask{
			{Builder: "primary", Name: "build", Status: "Succeeded", Seconds: 61.5, Steps: []queue.RecordStep{{Name: "compile", Status: "Succeeded", Seconds: 60}}},
			{Builder: "validator", Name: "build", Status: "Failed", Seconds: 12, Steps: []queue.RecordStep{
				{Name: "compile", Status: "Failed", ExitCode: 2, Seconds: 11, Log: "go build ./...\nmain.go:3: undefined: x\n"},
			}},
		},
		Evidence: []queue.RecordEvidence{
			{Kind: "provenance", Artifact: "app-image", Ref: "sha256:01"},
			{Kind: "sbom", Artifact: "app-image", Ref: "sha256:02"},
			{Kind: "vsa", Artifact: "app-image", Ref: "sha256:03"},
		},
		Seconds: 120,
	}
}

// TestReportCheckRun follows one run from queued to each final state:
// one check run, created then updated, with the mapped status and
// conclusion and the summary's parts.
func TestReportCheckRun(t *testing.T) {
	for _, tc := range []struct {
		state      queue.JobState
		verdict    string
		conclusion string
	}{
		{queue.Succeeded, "released", "success"},
		{queue.Failed, "builders disagree", "failure"},
		{queue.Cancelled, "", "cancelled"},
		{queue.Errored, "", "failure"},
	} {
		t.Run(string(tc.state), func(t *testing.T) {
			fake := fakegithub.New(t)
			c := newClient(t, fake, ModeApp, false, WithPipelineOf(func(repo string) string {
				if repo == "acme/app" {
					return "go-app"
				}
				return ""
			}))
			ctx := context.Background()
			job := testJob()
			id, err := c.Report(ctx, job, runURL)
			if err != nil {
				t.Fatal(err)
			}
			job.CheckRunID = id
			job.State, job.Attempt, job.Started = queue.Running, 1, t0.Add(time.Minute)
			if got, err := c.Report(ctx, job, runURL); err != nil || got != id {
				t.Fatalf("Report(running) = %d, %v; want %d", got, err, id)
			}
			runs := fake.CheckRuns("acme/app")
			if len(runs) != 1 || runs[0].Status != "in_progress" || runs[0].Title != "running (attempt 1)" {
				t.Fatalf("after running: %+v", runs)
			}
			finished(job, tc.state, tc.verdict)
			if _, err := c.Report(ctx, job, runURL); err != nil {
				t.Fatal(err)
			}
			runs = fake.CheckRuns("acme/app")
			if len(runs) != 1 {
				t.Fatalf("%d check runs, want 1", len(runs))
			}
			cr := runs[0]
			want := fakegithub.CheckRun{
				ID: id, Repo: "acme/app", Name: "accord/go-app", HeadSHA: headSHA, Status: "completed",
				Conclusion: tc.conclusion, ExternalID: "r1", DetailsURL: runURL,
				CompletedAt: "2026-12-01T10:03:00Z", Title: title(job), Updates: 2,
			}
			got := cr
			got.Summary, got.Text, got.StartedAt = "", "", ""
			if d := cmp.Diff(want, got); d != "" {
				t.Errorf("check run (-want +got):\n%s", d)
			}
			for _, part := range []string{
				"[r1](" + runURL + ")", "`" + headSHA + "`", "`sha256:" + strings.Repeat("ab", 32) + "`",
				"| primary | build | Succeeded | 61.5 |", "| validator | build | Failed | 12.0 |",
				"[provenance of app\\-image](" + runURL + "/evidence/0)", "[vsa of app\\-image](" + runURL + "/evidence/2)",
				"Add the widget",
			} {
				if !strings.Contains(cr.Summary, part) {
					t.Errorf("summary lacks %q:\n%s", part, cr.Summary)
				}
			}
			if !strings.Contains(cr.Text, "main.go:3: undefined: x") || !strings.Contains(cr.Text, "validator / build / compile (exit 2") {
				t.Errorf("text lacks the failed step's log:\n%s", cr.Text)
			}
			assertCheckCalls(t, fake, id)
		})
	}
}

// assertCheckCalls checks the calls' endpoints, auth and bodies.
func assertCheckCalls(t *testing.T, fake *fakegithub.Server, id int64) {
	t.Helper()
	var eps []fakegithub.Endpoint
	for _, call := range fake.Calls() {
		eps = append(eps, call.Endpoint)
		if call.Endpoint != fakegithub.AccessToken && call.Auth != fakegithub.AuthInstallation {
			t.Errorf("%s with %s credentials, want an installation token", call.Endpoint, call.Auth)
		}
	}
	want := []fakegithub.Endpoint{fakegithub.AccessToken, fakegithub.CreateCheckRun, fakegithub.UpdateCheckRun, fakegithub.UpdateCheckRun}
	if d := cmp.Diff(want, eps); d != "" {
		t.Errorf("calls (-want +got):\n%s", d)
	}
	var create map[string]any
	if err := json.Unmarshal(fake.CallsTo(fakegithub.CreateCheckRun)[0].Body, &create); err != nil {
		t.Fatal(err)
	}
	if create["status"] != "queued" || create["external_id"] != "r1" || create["head_sha"] != headSHA || create["conclusion"] != nil {
		t.Errorf("create body %v: want status queued, external_id r1, head_sha, no conclusion", create)
	}
	for _, call := range fake.CallsTo(fakegithub.UpdateCheckRun) {
		if !strings.HasSuffix(call.Path, "/check-runs/"+itoa(id)) {
			t.Errorf("update path %s, want check run %d", call.Path, id)
		}
	}
}

func itoa(n int64) string { b, _ := json.Marshal(n); return string(b) }

func TestReportStatus(t *testing.T) {
	for _, tc := range []struct {
		state   queue.JobState
		verdict string
		want    string
	}{
		{queue.Queued, "", "pending"},
		{queue.Running, "", "pending"},
		{queue.Succeeded, "released", "success"},
		{queue.Failed, "build failed", "failure"},
		{queue.Cancelled, "", "error"},
		{queue.Errored, "", "error"},
	} {
		t.Run(string(tc.state), func(t *testing.T) {
			fake := fakegithub.New(t)
			c := newClient(t, fake, ModeToken, true, WithPipelineOf(func(string) string { return "go-app" }))
			job := testJob()
			job.CheckRunID = 0
			if tc.state.Final() {
				finished(job, tc.state, tc.verdict)
			} else {
				job.State = tc.state
			}
			got, err := c.Report(context.Background(), job, runURL)
			if err != nil || got != 0 {
				t.Fatalf("Report = %d, %v", got, err)
			}
			sts := fake.Statuses("acme/app", headSHA)
			want := []fakegithub.Status{{Repo: "acme/app", SHA: headSHA, State: tc.want, TargetURL: runURL, Description: title(job), Context: "accord/go-app"}}
			if d := cmp.Diff(want, sts); d != "" {
				t.Errorf("statuses (-want +got):\n%s", d)
			}
			calls := fake.Calls()
			if len(calls) != 1 || calls[0].Auth != fakegithub.AuthToken || !calls[0].GHES || calls[0].Path != "/repos/acme/app/statuses/"+headSHA {
				t.Errorf("calls %+v, want one POST /api/v3/repos/acme/app/statuses/<sha> with the token", calls)
			}
		})
	}
}

// TestReportStatusDescription: a verdict over 140 characters is cut (the
// fake refuses longer ones, as GitHub does), to one line.
func TestReportStatusDescription(t *testing.T) {
	fake := fakegithub.New(t)
	c := newClient(t, fake, ModeToken, false)
	job := testJob()
	finished(job, queue.Failed, "not verified:\n"+strings.Repeat("é", 300))
	if _, err := c.Report(context.Background(), job, ""); err != nil {
		t.Fatal(err)
	}
	st := fake.Statuses("acme/app", headSHA)[0]
	if n := utf8.RuneCountInString(st.Description); n != MaxDescription || strings.Contains(st.Description, "\n") || st.Context != "accord" || st.TargetURL != "" {
		t.Errorf("status %+v (%d characters): want 140 on one line, context accord, no target", st, n)
	}
}

func TestReportNone(t *testing.T) {
	fake := fakegithub.New(t)
	c := newClient(t, fake, ModeNone, false)
	job := testJob()
	job.CheckRunID = 5
	if id, err := c.Report(context.Background(), job, runURL); err != nil || id != 5 {
		t.Errorf("Report = %d, %v; want 5, nil", id, err)
	}
	if n := len(fake.Calls()); n != 0 {
		t.Errorf("%d calls, want none", n)
	}
}

func TestReportRefusesBadJobs(t *testing.T) {
	fake := fakegithub.New(t)
	c := newClient(t, fake, ModeApp, false)
	for name, mut := range map[string]func(*queue.Job){
		"short sha":    func(j *queue.Job) { j.Request.Commit = "1f0c3d5" },
		"upper sha":    func(j *queue.Job) { j.Request.Commit = strings.ToUpper(headSHA) },
		"bad repo":     func(j *queue.Job) { j.Request.Repo = "acme/app/../x" },
		"path in repo": func(j *queue.Job) { j.Request.Repo = "acme/app%2F..%2Fx" },
	} {
		job := testJob()
		mut(job)
		if _, err := c.Report(context.Background(), job, runURL); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	if _, err := c.Report(context.Background(), testJob(), "javascript:alert(1)"); err == nil || !strings.Contains(err.Error(), "externalURL") {
		t.Errorf("javascript: run URL: %v, want a refusal naming externalURL", err)
	}
	if _, err := c.Report(context.Background(), nil, runURL); err == nil {
		t.Errorf("nil job: no error")
	}
	if n := len(fake.Calls()); n != 0 {
		t.Errorf("%d calls, want none", n)
	}
}

// TestReportEscapes: text from payloads (commit title, ref, artifact and
// step names) lands in the summary as text: no HTML, no links, no
// mentions, no table breaks.
func TestReportEscapes(t *testing.T) {
	attacks := []string{
		"<script>alert(1)</script>",
		`"><img src=x onerror=alert(1)>`,
		"[click](javascript:alert(1))",
		"![x](https://evil.example/t.png)",
		"@acme/admins please merge",
		"a | b |\n|---|\n| c",
		"<details open><summary>hi</summary>",
		"https://evil.example/phish",
		"`code` **bold** _em_ ~strike~",
	}
	for _, attack := range attacks {
		t.Run(attack, func(t *testing.T) {
			fake := fakegithub.New(t)
			c := newClient(t, fake, ModeApp, false)
			job := testJob()
			job.Request.Title = attack
			job.Request.Ref = "refs/heads/" + attack
			finished(job, queue.Failed, "build failed")
			job.Record.Artifacts[0].Name = attack
			job.Record.Tasks[1].Steps[0].Name = attack
			job.Record.Reason = attack
			if _, err := c.Report(context.Background(), job, runURL); err != nil {
				t.Fatal(err)
			}
			cr := fake.CheckRuns("acme/app")[0]
			for _, field := range []string{cr.Summary, cr.Text} {
				for _, bad := range []string{"<script", "<img", "<details", "](javascript", "![x](", "https://evil", "| b |", "`code`", "**bold**"} {
					if strings.Contains(field, bad) {
						t.Errorf("%q shows unescaped in:\n%s", bad, field)
					}
				}
				if strings.Contains(strings.ReplaceAll(field, `\@`, ""), "@") {
					t.Errorf("an unescaped @ (a mention) in:\n%s", field)
				}
			}
			if got := strings.Count(cr.Summary, "\n| "); got != 5 {
				t.Errorf("%d table rows, want 5 (2 headers, 1 artifact, 2 tasks):\n%s", got, cr.Summary)
			}
		})
	}
}

// TestReportLongLogs: logs far over GitHub's limits are cut to their tail,
// the text stays within 65,535 characters (the fake refuses more), and a
// log full of backticks cannot close its code block.
func TestReportLongLogs(t *testing.T) {
	fake := fakegithub.New(t)
	c := newClient(t, fake, ModeApp, false)
	job := testJob()
	finished(job, queue.Failed, "build failed")
	long := strings.Repeat("line of output ````` with backticks\n", 20000) + "THE END\n"
	var steps []queue.RecordStep
	for i := range 30 {
		steps = append(steps, queue.RecordStep{Name: "step" + itoa(int64(i)), Status: "Failed", ExitCode: 1, Log: long})
	}
	job.Record.Tasks[1].Steps = steps
	if _, err := c.Report(context.Background(), job, runURL); err != nil {
		t.Fatal(err)
	}
	cr := fake.CheckRuns("acme/app")[0]
	if len(cr.Text) > MaxOutput || len(cr.Summary) > MaxOutput {
		t.Errorf("text %d, summary %d bytes: over %d", len(cr.Text), len(cr.Summary), MaxOutput)
	}
	if !strings.Contains(cr.Text, "THE END") || !strings.Contains(cr.Text, "More on the run page") {
		t.Errorf("text lacks the logs' end or the note that more is on the run page")
	}
	if !strings.Contains(cr.Text, "\n``````text\n") {
		t.Errorf("code fence not longer than the log's backtick runs")
	}
	shown := strings.Count(cr.Text, "#### ")
	if n := strings.Count(cr.Text, "line of output"); shown == 0 || shown == 30 || n > shown*LogLines {
		t.Errorf("%d log lines in %d steps shown, want at most %d per step and not all 30 steps", n, shown, LogLines)
	}
}

// TestReportCheckRunGone: when the run's check run was deleted, the next
// report makes a new one and returns its id.
func TestReportCheckRunGone(t *testing.T) {
	fake := fakegithub.New(t)
	c, err := New(context.Background(), fake.AppConfig(false), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	job := testJob()
	id, err := c.Report(context.Background(), job, runURL)
	if err != nil {
		t.Fatal(err)
	}
	fake.DeleteCheckRuns("acme/app")
	job.CheckRunID = id
	finished(job, queue.Succeeded, "released")
	id2, err := c.Report(context.Background(), job, runURL)
	if err != nil || id2 == id || id2 == 0 {
		t.Fatalf("Report after deletion = %d, %v; want a new check run", id2, err)
	}
	runs := fake.CheckRuns("acme/app")
	if len(runs) != 1 || runs[0].ID != id2 || runs[0].Conclusion != "success" || runs[0].StartedAt == "" {
		t.Errorf("check runs %+v, want the new one, completed with success", runs)
	}
}

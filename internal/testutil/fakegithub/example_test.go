package fakegithub_test

import (
	"context"
	"testing"
	"time"

	"github.com/accord-build/accord/internal/ghapi"
	"github.com/accord-build/accord/internal/queue"
	"github.com/accord-build/accord/internal/serve/config"
	"github.com/accord-build/accord/internal/testutil/fakegithub"
	"github.com/accord-build/accord/internal/trigger"
)

// TestExample shows the fake as another package's test uses it: start it,
// point a client at it, act, assert on what GitHub was told.
func TestExample(t *testing.T) {
	fake := fakegithub.New(t) // fails the test at its end on unknown or refused calls
	fake.AddPull(fakegithub.Pull{Repo: "acme/app", Number: 7, HeadSHA: "1111111111111111111111111111111111111111", HeadRepo: "fork/app"})
	now := time.Now()
	fake.AddRepoDelivery("acme/app", 1, fakegithub.Delivery{GUID: "lost", DeliveredAt: now.Add(-time.Hour), StatusCode: 503})

	c, err := ghapi.New(context.Background(), fake.AppConfig(false), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	pr, err := c.PullRequest(context.Background(), "acme/app", 7)
	if err != nil || pr.HeadRepo != "fork/app" {
		t.Fatalf("PullRequest = %+v, %v", pr, err)
	}
	job := &queue.Job{ID: "r1", State: queue.Queued, Request: trigger.Request{Repo: "acme/app", Commit: pr.HeadSHA, Ref: "refs/pull/7/head"}}
	if _, err := c.Report(context.Background(), job, "http://127.0.0.1:8080/runs/r1"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Redeliver(context.Background(), []config.Hook{{Repo: "acme/app", ID: 1}}, 72*time.Hour, now, nil); err != nil {
		t.Fatal(err)
	}

	if runs := fake.CheckRuns("acme/app"); len(runs) != 1 || runs[0].Status != "queued" || runs[0].ExternalID != "r1" {
		t.Errorf("check runs %+v", runs)
	}
	if at := fake.RedeliveryAttempts(); len(at) != 1 || at[0].GUID != "lost" {
		t.Errorf("redeliveries %+v", at)
	}
	if n := len(fake.CallsTo(fakegithub.AccessToken)); n != 1 {
		t.Errorf("%d token exchanges, want 1", n)
	}
}

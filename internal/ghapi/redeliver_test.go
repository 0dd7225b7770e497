package ghapi

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/accord-build/accord/internal/serve/config"
	"github.com/accord-build/accord/internal/testutil/fakegithub"
)

// seenSet is the server's record of the deliveries it stored.
func seenSet(guids ...string) func(string) (bool, error) {
	m := map[string]bool{}
	for _, g := range guids {
		m[g] = true
	}
	return func(g string) (bool, error) { return m[g], nil }
}

// addHistory fills a repository hook with deliveries covering every case,
// one minute apart (newest last), and returns the ids that must be
// redelivered, by GUID.
func addHistory(fake *fakegithub.Server, now time.Time) map[string]int64 {
	at := func(min int) time.Time { return now.Add(-time.Duration(min) * time.Minute) }
	add := func(guid string, min, code int) int64 {
		return fake.AddRepoDelivery("acme/app", 11, fakegithub.Delivery{GUID: guid, DeliveredAt: at(min), StatusCode: code})
	}
	want := map[string]int64{}
	want["g-failed"] = add("g-failed", 5, 503)
	add("g-recovered", 30, 502) // failed, then redelivered fine
	add("g-recovered", 20, 202)
	add("g-ok", 6, 200)
	add("g-seen", 7, 500) // stored by the server, but the reply came too late
	add("g-twice", 50, 0) // timed out, then failed again: the newest attempt is redelivered
	want["g-twice"] = add("g-twice", 40, 502)
	add("g-old", 73*60, 500) // outside the window
	add("g-ok-then-failed", 60, 200)
	add("g-ok-then-failed", 10, 500)
	for i := range 9 { // filler, to push the rest onto later pages
		add("g-fill-"+string(rune('a'+i)), 100+i, 200)
	}
	want["g-deep"] = add("g-deep", 200, 400)
	add("g-older", 72*60+1, 503) // just outside the window
	return want
}

// TestRedeliver: exactly the failed, unseen, never-succeeded deliveries in
// the window are redelivered, once each, across pages, for a repository
// hook (installation token) and the App's hook (JWT); a second scan finds
// nothing left to do.
func TestRedeliver(t *testing.T) {
	fake := fakegithub.New(t)
	fake.SetPageSize(4)
	now := time.Now().UTC().Truncate(time.Second)
	want := addHistory(fake, now)
	appFailed := fake.AddAppDelivery(fakegithub.Delivery{GUID: "a-failed", DeliveredAt: now.Add(-time.Hour), StatusCode: 504, Event: "pull_request", Action: "opened"})
	fake.AddAppDelivery(fakegithub.Delivery{GUID: "a-ok", DeliveredAt: now.Add(-2 * time.Hour), StatusCode: 200})
	c := newClient(t, fake, ModeApp, false)
	hooks := []config.Hook{{Repo: "acme/app", ID: 11}, {App: true}}
	ctx := context.Background()

	got, err := c.Redeliver(ctx, hooks, 72*time.Hour, now, seenSet("g-seen"))
	if err != nil {
		t.Fatal(err)
	}
	wantGUIDs := []string{"g-failed", "g-twice", "g-deep", "a-failed"}
	if d := cmp.Diff(wantGUIDs, got); d != "" {
		t.Errorf("redelivered (-want +got):\n%s", d)
	}
	wantAttempts := []fakegithub.Attempt{
		{Hook: "acme/app#11", DeliveryID: want["g-failed"], GUID: "g-failed", StatusCode: 200},
		{Hook: "acme/app#11", DeliveryID: want["g-twice"], GUID: "g-twice", StatusCode: 200},
		{Hook: "acme/app#11", DeliveryID: want["g-deep"], GUID: "g-deep", StatusCode: 200},
		{Hook: "app", DeliveryID: appFailed, GUID: "a-failed", StatusCode: 200},
	}
	if d := cmp.Diff(wantAttempts, fake.RedeliveryAttempts()); d != "" {
		t.Errorf("attempts (-want +got):\n%s", d)
	}
	// 19 repository deliveries, 4 a page: the scan stops at the page
	// holding the first delivery older than the window.
	lists := fake.CallsTo(fakegithub.RepoDeliveries)
	if len(lists) != 5 {
		t.Errorf("%d list calls for the repository hook, want 5", len(lists))
	}
	for i, call := range lists {
		if call.Auth != fakegithub.AuthInstallation || (i > 0) != (call.Query.Get("cursor") != "") {
			t.Errorf("list call %d: auth %s, query %v", i, call.Auth, call.Query)
		}
	}
	for _, e := range []fakegithub.Endpoint{fakegithub.AppDeliveries, fakegithub.AppRedeliver} {
		for _, call := range fake.CallsTo(e) {
			if call.Auth != fakegithub.AuthApp {
				t.Errorf("%s with %s credentials, want the App's JWT", e, call.Auth)
			}
		}
	}

	again, err := c.Redeliver(ctx, hooks, 72*time.Hour, now.Add(time.Minute), seenSet("g-seen"))
	if err != nil || len(again) != 0 {
		t.Errorf("second scan redelivered %v, %v; want nothing (the redeliveries succeeded)", again, err)
	}
	if n := len(fake.RedeliveryAttempts()); n != 4 {
		t.Errorf("%d attempts after the second scan, want still 4", n)
	}
}

// TestRedeliverToken: a token reads a repository hook; the App's hook
// needs the App, and that error does not stop the other hooks.
func TestRedeliverToken(t *testing.T) {
	fake := fakegithub.New(t)
	now := time.Now().UTC().Truncate(time.Second)
	id := fake.AddRepoDelivery("acme/app", 3, fakegithub.Delivery{GUID: "g1", DeliveredAt: now.Add(-time.Minute), StatusCode: 500})
	c := newClient(t, fake, ModeToken, true)
	got, err := c.Redeliver(context.Background(), []config.Hook{{App: true}, {Repo: "acme/app", ID: 3}}, time.Hour, now, nil)
	if err == nil || !strings.Contains(err.Error(), "github.redeliver.hooks[0]") || !strings.Contains(err.Error(), "needs github.app") {
		t.Errorf("err %v, want one naming github.redeliver.hooks[0] and github.app", err)
	}
	if d := cmp.Diff([]string{"g1"}, got); d != "" {
		t.Errorf("redelivered (-want +got):\n%s", d)
	}
	at := fake.RedeliveryAttempts()
	if len(at) != 1 || at[0].DeliveryID != id {
		t.Errorf("attempts %+v, want delivery %d", at, id)
	}
	for _, call := range fake.Calls() {
		if call.Auth != fakegithub.AuthToken || !call.GHES {
			t.Errorf("%s: auth %s GHES %v, want the token under /api/v3", call.Endpoint, call.Auth, call.GHES)
		}
	}
}

func TestRedeliverErrors(t *testing.T) {
	fake := fakegithub.New(t)
	now := time.Now().UTC().Truncate(time.Second)
	fake.AddRepoDelivery("acme/app", 3, fakegithub.Delivery{GUID: "g1", DeliveredAt: now.Add(-time.Minute), StatusCode: 500})
	fake.AddRepoDelivery("acme/lib", 4, fakegithub.Delivery{GUID: "g2", DeliveredAt: now.Add(-time.Minute), StatusCode: 500})
	c := newClient(t, fake, ModeApp, false)
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		hook config.Hook
		want string
	}{
		{"no id", config.Hook{Repo: "acme/app"}, "github.redeliver.hooks[0]: id"},
		{"bad repo", config.Hook{Repo: "acme", ID: 3}, "github.redeliver.hooks[0]: repo"},
		{"app with repo", config.Hook{App: true, Repo: "acme/app", ID: 3}, "drop repo and id"},
		{"unknown hook", config.Hook{Repo: "acme/app", ID: 99}, "not found"},
	} {
		if _, err := c.Redeliver(ctx, []config.Hook{tc.hook}, time.Hour, now, nil); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error with %q", tc.name, err, tc.want)
		}
	}
	if _, err := c.Redeliver(ctx, nil, 0, now, nil); err == nil {
		t.Errorf("window 0: no error")
	}
	boom := errors.New("queue closed")
	got, err := c.Redeliver(ctx, []config.Hook{{Repo: "acme/app", ID: 3}, {Repo: "acme/lib", ID: 4}}, time.Hour, now,
		func(g string) (bool, error) {
			if g == "g1" {
				return false, boom
			}
			return false, nil
		})
	if !errors.Is(err, boom) || !cmp.Equal(got, []string{"g2"}) {
		t.Errorf("seen failing on g1: %v, %v; want the error and g2 still redelivered", got, err)
	}
	fake.Fail(fakegithub.RepoRedeliver, 503)
	_, err = c.Redeliver(ctx, []config.Hook{{Repo: "acme/app", ID: 3}}, time.Hour, now, nil)
	if err == nil || !IsTemporary(err) {
		t.Errorf("redeliver answering 503: %v, want a temporary error", err)
	}
}

// TestRedeliverDelivers: with the fake delivering for real, a redelivery
// reaches the receiver with GitHub's headers and a valid signature.
func TestRedeliverDelivers(t *testing.T) {
	secret := []byte("s3cret")
	var mu sync.Mutex
	var got []string
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mac := hmac.New(sha256.New, secret)
		mac.Write(body)
		if r.Header.Get("X-Hub-Signature-256") != "sha256="+hex.EncodeToString(mac.Sum(nil)) {
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		mu.Lock()
		got = append(got, r.Header.Get("X-GitHub-Delivery")+" "+r.Header.Get("X-GitHub-Event")+" "+r.Header.Get("X-GitHub-Hook-ID")+" "+string(body))
		mu.Unlock()
		w.WriteHeader(http.StatusAccepted)
	}))
	defer recv.Close()
	fake := fakegithub.New(t)
	fake.DeliverTo(recv.URL, secret)
	now := time.Now().UTC().Truncate(time.Second)
	fake.AddRepoDelivery("acme/app", 3, fakegithub.Delivery{GUID: "g1", Event: "push", DeliveredAt: now.Add(-time.Minute), StatusCode: 503, Payload: []byte(`{"ref":"refs/heads/main"}`)})
	c := newClient(t, fake, ModeToken, false)
	if _, err := c.Redeliver(context.Background(), []config.Hook{{Repo: "acme/app", ID: 3}}, time.Hour, now, nil); err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff([]string{`g1 push 3 {"ref":"refs/heads/main"}`}, got); d != "" {
		t.Errorf("received (-want +got):\n%s", d)
	}
	ds := fake.RepoDeliveries("acme/app", 3)
	if len(ds) != 2 || !ds[0].Redelivery || ds[0].StatusCode != http.StatusAccepted || ds[0].GUID != "g1" {
		t.Errorf("deliveries %+v, want a redelivery of g1 answered 202 on top", ds)
	}
}

// TestRedeliverContinues: one attempt failing does not stop the others,
// and the failed one is asked for again on the next scan.
func TestRedeliverContinues(t *testing.T) {
	fake := fakegithub.New(t)
	now := time.Now().UTC().Truncate(time.Second)
	fake.AddRepoDelivery("acme/app", 3, fakegithub.Delivery{GUID: "g-new", DeliveredAt: now.Add(-time.Minute), StatusCode: 500})
	fake.AddRepoDelivery("acme/app", 3, fakegithub.Delivery{GUID: "g-older", DeliveredAt: now.Add(-2 * time.Minute), StatusCode: 500})
	c := newClient(t, fake, ModeToken, false)
	hooks := []config.Hook{{Repo: "acme/app", ID: 3}}
	fake.FailTimes(fakegithub.RepoRedeliver, 503, 1)
	got, err := c.Redeliver(context.Background(), hooks, time.Hour, now, nil)
	if err == nil || !IsTemporary(err) || !cmp.Equal(got, []string{"g-older"}) {
		t.Errorf("first scan: %v, %v; want g-older redelivered and a temporary error for g-new", got, err)
	}
	got, err = c.Redeliver(context.Background(), hooks, time.Hour, now, nil)
	if err != nil || !cmp.Equal(got, []string{"g-new"}) {
		t.Errorf("second scan: %v, %v; want g-new only", got, err)
	}
}

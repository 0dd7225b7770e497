package queue

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/accord-build/accord/internal/trigger"
)

// The dispatcher reads the backlog a batch at a time, in arrival order,
// and stores the deliveries that build nothing in one commit.
func TestUndispatchedNAndIgnore(t *testing.T) {
	ctx := context.Background()
	q := openReal(t)
	for i := range 6 {
		d := delivery(fmt.Sprintf("d%d", i))
		d.Repo = fmt.Sprintf("o/r%d", i)
		if _, err := q.Accept(ctx, d, ""); err != nil {
			t.Fatal(err)
		}
	}
	ids := func(ds []StoredDelivery) []string {
		var out []string
		for _, d := range ds {
			out = append(out, d.ID)
		}
		return out
	}
	first, err := q.UndispatchedN(ctx, 4, nil)
	if err != nil || !slices.Equal(ids(first), []string{"d0", "d1", "d2", "d3"}) {
		t.Fatalf("UndispatchedN(4) = %v, %v", ids(first), err)
	}
	if len(first[0].Body) == 0 {
		t.Fatal("UndispatchedN returned no body")
	}
	// Records and bodies only where whole asks for them; the others come
	// as their pending entry.
	var asked []Pending
	odd := func(p Pending) bool { asked = append(asked, p); return p.Arrival%2 == 1 }
	some, err := q.UndispatchedN(ctx, 4, odd)
	if err != nil || len(some) != 4 {
		t.Fatalf("UndispatchedN(4, odd) = %v, %v", ids(some), err)
	}
	for i, d := range some {
		want := Pending{Arrival: uint64(i + 1), ID: fmt.Sprintf("d%d", i), Event: "push", Repo: fmt.Sprintf("o/r%d", i)}
		if asked[i] != want {
			t.Errorf("whole was asked about %+v, want %+v", asked[i], want)
		}
		if d.ID != want.ID || d.Event != want.Event || d.Repo != want.Repo || d.Arrival != want.Arrival || d.State != DeliveryAccepted {
			t.Errorf("UndispatchedN returned %+v for %+v", d, want)
		}
		whole := odd(want)
		if (len(d.Body) > 0) != whole || (whole && string(d.Body) != string(delivery(d.ID).Body)) {
			t.Errorf("%s (arrival %d): body %q, want one: %v", d.ID, d.Arrival, d.Body, whole)
		}
		if (d.HookID == "42" && !d.Received.IsZero()) != whole {
			t.Errorf("%s (arrival %d): record %+v, want it read: %v", d.ID, d.Arrival, d, whole)
		}
	}
	if _, err := q.Dispatch(ctx, "d1", []trigger.Request{request("o/r", "refs/heads/main")}, "built"); err != nil {
		t.Fatal(err)
	}
	before := q.Stats().Commits
	err = q.Ignore(ctx, []Ignored{{"d0", "event watch is not built"}, {"d1", "too late"}, {"d3", "no repository"}})
	if err != nil {
		t.Fatal(err)
	}
	if n := q.Stats().Commits - before; n != 1 {
		t.Errorf("Ignore of 3 took %d commits, want 1", n)
	}
	rest, err := q.Undispatched(ctx)
	if err != nil || !slices.Equal(ids(rest), []string{"d2", "d4", "d5"}) {
		t.Fatalf("Undispatched after Ignore = %v, %v", ids(rest), err)
	}
	for id, want := range map[string]struct {
		state DeliveryState
		note  string
	}{
		"d0": {DeliveryIgnored, "event watch is not built"},
		"d1": {DeliveryDispatched, "built"}, // dispatched before: left alone
		"d3": {DeliveryIgnored, "no repository"},
	} {
		sd, found, err := q.Delivery(ctx, id)
		if err != nil || !found || sd.State != want.state || sd.Note != want.note {
			t.Errorf("%s: %+v found=%v err=%v; want %s %q", id, sd, found, err, want.state, want.note)
		}
	}
	if err := q.Ignore(ctx, []Ignored{{"d2", ""}, {"nope", ""}}); err == nil {
		t.Error("Ignore of an unknown delivery succeeded")
	}
	if rest, _ := q.Undispatched(ctx); len(rest) != 3 {
		t.Errorf("a failed Ignore changed the backlog: %v", ids(rest))
	}
}

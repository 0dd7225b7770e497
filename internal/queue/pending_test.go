package queue

import (
	"testing"

	"github.com/accord-build/accord/internal/trigger"
)

// FuzzPending: any pending entry comes back as it was written; any
// stored value decodes or fails with an error, never a panic.
func FuzzPending(f *testing.F) {
	f.Add("72d4b0e0-6d39-11ef-9a4f-2a0b3b7c1d11", "push", "octo/app", []byte{pendingFormat, 1, 'x'})
	f.Add("1", "", "", []byte{})
	f.Fuzz(func(t *testing.T, id, event, repo string, stored []byte) {
		key := seqKey(3)
		p, err := decodePending(key, pendingValue(trigger.Delivery{ID: id, Event: event, Repo: repo}))
		switch {
		case id == "" && err == nil:
			t.Fatalf("an entry without an id was read: %+v", p)
		case id != "" && (err != nil || p != Pending{Arrival: 3, ID: id, Event: event, Repo: repo}):
			t.Fatalf("round trip of %q %q %q: %+v, %v", id, event, repo, p, err)
		}
		decodePending(key, stored)
	})
}

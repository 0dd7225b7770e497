package trigger

import "time"

// Delivery is one webhook delivery as GitHub sent it: what the server
// stores, durably, before it replies.
type Delivery struct {
	// ID is X-GitHub-Delivery (a GUID; a redelivery carries the same).
	ID string `json:"id"`
	// Event is X-GitHub-Event.
	Event string `json:"event"`
	// HookID is X-GitHub-Hook-ID, when sent.
	HookID string `json:"hookId,omitempty"`
	// Received is when the server accepted it (the server's clock; never
	// part of an artifact or its evidence).
	Received time.Time `json:"received"`
	// Body is the raw payload, exactly as signed.
	Body []byte `json:"body"`
	// Repo is the payload's repository.full_name as the intake read it
	// from the signed body, or "" when it could not tell exactly; the
	// dispatcher sets aside, without decoding the payload, a delivery
	// for a repository the server does not build.
	Repo string `json:"repo,omitempty"`
}

// Kind is what kind of event a request builds.
type Kind string

// The kinds of build requests.
const (
	KindPush        Kind = "push"         // a push to a configured branch
	KindTag         Kind = "tag"          // a pushed or created tag
	KindRelease     Kind = "release"      // a published release
	KindPullRequest Kind = "pull_request" // a pull request's head
)

// Request is what a delivery asks the server to build, decided by the
// server's policy for the repository (never by the repository's tree).
type Request struct {
	// DeliveryID is the delivery that asked for it.
	DeliveryID string `json:"deliveryId"`
	// Repo is owner/name (repository.full_name of the base repository).
	Repo string `json:"repo"`
	// Kind is the kind of event.
	Kind Kind `json:"kind"`
	// CloneURL is where to fetch the commit from (the config's CloneURL
	// when set, else the payload's; for a fork pull request, the fork's).
	CloneURL string `json:"cloneURL"`
	// Ref is the full ref built: refs/heads/main, refs/tags/v1.2.0,
	// refs/pull/7/head.
	Ref string `json:"ref"`
	// Commit is the full commit SHA built (a tag is resolved to its commit
	// with git, an annotated tag peeled).
	Commit string `json:"commit"`
	// PullRequest is the pull request's number, for pull requests.
	PullRequest int `json:"pullRequest,omitempty"`
	// Untrusted is set for builds of code from forks: built by the
	// repository's untrusted builders, never with release keys, never
	// released.
	Untrusted bool `json:"untrusted,omitempty"`
	// Sender is the GitHub login whose action triggered it (the pusher,
	// the commenter who approved or asked for a retest).
	Sender string `json:"sender,omitempty"`
	// Title is a one-line description for pages and checks (the head
	// commit's message's first line, or the pull request's title): text
	// from the payload, to be escaped wherever it is shown.
	Title string `json:"title,omitempty"`
	// Supersede is the key under which a newer request cancels an older
	// queued one ("owner/name refs/heads/main"); empty: never superseded.
	Supersede string `json:"supersede,omitempty"`
	// Rerun, when set, is the run id this request builds again (a
	// check_run rerequested or a /retest).
	Rerun string `json:"rerun,omitempty"`
}

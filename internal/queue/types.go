package queue

import (
	"time"

	"github.com/accord-build/accord/internal/trigger"
)

// DeliveryState is what became of an accepted delivery.
type DeliveryState string

// Delivery states.
const (
	// Accepted: stored, not yet turned into runs (the dispatcher does that).
	DeliveryAccepted DeliveryState = "accepted"
	// Ignored: an event or payload the server does not build (Note says why).
	DeliveryIgnored DeliveryState = "ignored"
	// Dispatched: its runs (maybe none) are queued.
	DeliveryDispatched DeliveryState = "dispatched"
)

// StoredDelivery is a delivery and its state.
type StoredDelivery struct {
	trigger.Delivery
	State DeliveryState `json:"state"`
	// Note says why it was ignored or what it started.
	Note string `json:"note,omitempty"`
	// Runs are the ids of the runs it started.
	Runs []string `json:"runs,omitempty"`
	// Arrival is its place in the order of arrival (1, 2, ...; ignored
	// deliveries take a place too).
	Arrival uint64 `json:"arrival,omitempty"` // the record's key; may be absent from its JSON
}

// JobState is where a run is.
type JobState string

// Run states. Queued and Running are live; the rest are final.
const (
	Queued    JobState = "queued"
	Running   JobState = "running"
	Succeeded JobState = "succeeded" // built, agreed, verified, released (or, untrusted, built)
	Failed    JobState = "failed"    // the build failed, builders disagreed, or verification failed
	Cancelled JobState = "cancelled" // superseded by a newer push, or shut down for good
	Errored   JobState = "errored"   // infrastructure failure, attempts used up
)

// Final says whether s is a final state.
func (s JobState) Final() bool { return s != Queued && s != Running }

// Job is one run: a build request, where it is, and what came of it.
type Job struct {
	// ID is the run id ("r1", "r2", ...; unique, increasing).
	ID      string          `json:"id"`
	Request trigger.Request `json:"request"`
	State   JobState        `json:"state"`
	// Attempt counts the attempts started (1 on the first).
	Attempt int `json:"attempt"`
	// NotBefore delays a retry.
	NotBefore time.Time `json:"notBefore,omitempty"`
	// Error is the last attempt's infrastructure error, or why it was
	// cancelled.
	Error string `json:"error,omitempty"`
	// SupersededBy is the newer run that cancelled this one.
	SupersededBy string `json:"supersededBy,omitempty"`
	// Created, Started and Finished are the server's clock.
	Created  time.Time `json:"created"`
	Started  time.Time `json:"started,omitempty"`
	Finished time.Time `json:"finished,omitempty"`
	// Record is what the run did, for the status page and the checks; nil
	// until the run has finished (or failed).
	Record *Record `json:"record,omitempty"`
	// CheckRunID is the GitHub check run reporting this run, once made.
	CheckRunID int64 `json:"checkRunId,omitempty"`
}

// Record is what a run did: the status page's and the check run's view.
type Record struct {
	Pipeline       string `json:"pipeline"`
	PipelineDigest string `json:"pipelineDigest,omitempty"`
	// Builders are the builders' names, the primary first.
	Builders []string `json:"builders"`
	// Verdict is the one-line outcome: "released", "builders disagree",
	// "build failed", "not verified", "built (untrusted, not released)".
	Verdict string `json:"verdict"`
	// Consensus: the builders agreed (k of n).
	Consensus bool `json:"consensus"`
	// Verified: the released artifacts verified against the repository's
	// policy.
	Verified bool `json:"verified"`
	// Reason explains a failure in one paragraph.
	Reason    string           `json:"reason,omitempty"`
	Artifacts []RecordArtifact `json:"artifacts,omitempty"`
	// Tasks are every builder's tasks, in order.
	Tasks []RecordTask `json:"tasks,omitempty"`
	// Evidence are where the provenance, SBOMs, divergence reports and
	// verification summaries were stored.
	Evidence []RecordEvidence `json:"evidence,omitempty"`
	Seconds  float64          `json:"seconds"`
}

// RecordArtifact is one artifact and its digest.
type RecordArtifact struct {
	Name     string `json:"name"`
	Digest   string `json:"digest"`
	Released bool   `json:"released"`
}

// RecordTask is one builder's task.
type RecordTask struct {
	Builder string       `json:"builder"`
	Name    string       `json:"name"`
	Status  string       `json:"status"`
	Seconds float64      `json:"seconds"`
	Steps   []RecordStep `json:"steps,omitempty"`
}

// RecordStep is one step: its status, time and the tail of its log, with
// secret values masked.
type RecordStep struct {
	Name     string  `json:"name"`
	Status   string  `json:"status"`
	ExitCode int     `json:"exitCode"`
	Seconds  float64 `json:"seconds"`
	Log      string  `json:"log,omitempty"`
}

// RecordEvidence is one piece of evidence: kind ("provenance", "sbom",
// "divergence", "vsa", "links"), the artifact it is about, and where it is
// stored (a reference in the store, or a digest).
type RecordEvidence struct {
	Kind     string `json:"kind"`
	Artifact string `json:"artifact,omitempty"`
	Ref      string `json:"ref"`
}

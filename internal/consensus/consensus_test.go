package consensus_test

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/accord-build/accord/internal/consensus"
)

const (
	dA  = "sha256:aaaa"
	dA2 = "sha256:a222"
	dB  = "sha256:bbbb"
	dC  = "sha256:cccc"
	sA  = "sha256:5b0a"
	sA2 = "sha256:5b02"
)

// out is a builder that succeeded with artifacts app (dA) and lib (dB),
// its own key and the default root.
func out(name string, mods ...func(*consensus.Outcome)) consensus.Outcome {
	o := consensus.Outcome{
		Builder:   name,
		ID:        "https://accord.dev/builders/" + name,
		Key:       "key-" + name,
		Artifacts: []consensus.Artifact{{Name: "app", Digest: dA}, {Name: "lib", Digest: dB}},
		Roots:     []string{"/workspace"},
	}
	for _, m := range mods {
		m(&o)
	}
	return o
}

func failed(reason string) func(*consensus.Outcome) {
	return func(o *consensus.Outcome) { o.Err, o.Artifacts = reason, nil }
}

func key(k string) func(*consensus.Outcome) { return func(o *consensus.Outcome) { o.Key = k } }

func root(r string) func(*consensus.Outcome) {
	return func(o *consensus.Outcome) { o.Roots = []string{r} }
}

func artifacts(as ...consensus.Artifact) func(*consensus.Outcome) {
	return func(o *consensus.Outcome) { o.Artifacts = as }
}

func inputs(m map[string]string) func(*consensus.Outcome) {
	return func(o *consensus.Outcome) { o.Inputs = m }
}

func art(name, digest, sbom string) consensus.Artifact {
	return consensus.Artifact{Name: name, Digest: digest, SBOM: sbom}
}

// votes is the vote table of app and lib for the named builders, each
// with dA and dB unless over says otherwise ("builder/artifact" -> digest).
func votes(names []string, over map[string]string) []consensus.Votes {
	vs := []consensus.Votes{{Name: "app", Digests: map[string]string{}}, {Name: "lib", Digests: map[string]string{}}}
	for _, n := range names {
		vs[0].Digests[n], vs[1].Digests[n] = dA, dB
	}
	for k, d := range over {
		for j := range vs {
			if n, ok := strings.CutSuffix(k, "/"+vs[j].Name); ok {
				vs[j].Digests[n] = d
			}
		}
	}
	return vs
}

var released = []string{"app@" + dA, "lib@" + dB}

func TestDecide(t *testing.T) {
	p, v1, v2 := "primary", "validator-1", "validator-2"
	ws, v1ws := "/workspace", "/build/validator-1"
	tests := []struct {
		name      string
		threshold int
		outs      []consensus.Outcome
		want      consensus.Decision
	}{{
		name: "all agree",
		outs: []consensus.Outcome{out(p), out(v1, root(v1ws)), out(v2)},
		want: consensus.Decision{
			Consensus: true, Verdict: consensus.Agreed, Threshold: 3, Counted: 3,
			Agreeing: []string{p, v1, v2}, Failed: map[string]string{},
			Votes: votes([]string{p, v1, v2}, nil), Released: released,
		},
	}, {
		name: "one builder alone",
		outs: []consensus.Outcome{out(p)},
		want: consensus.Decision{
			Consensus: true, Verdict: consensus.Agreed, Threshold: 1, Counted: 1,
			Agreeing: []string{p}, Failed: map[string]string{},
			Votes: votes([]string{p}, nil), Released: released,
		},
	}, {
		name: "one dissents",
		outs: []consensus.Outcome{out(p), out(v1, root(v1ws), artifacts(art("app", dA2, ""), art("lib", dB, ""))), out(v2)},
		want: consensus.Decision{
			Verdict: consensus.Disagreed, Threshold: 3, Counted: 2,
			Reason:   "builders disagree: validator-1 produced other digests than the primary",
			Agreeing: []string{p, v2}, Failed: map[string]string{},
			Votes:       votes([]string{p, v1, v2}, map[string]string{v1 + "/app": dA2}),
			Explain:     []consensus.Pair{{Artifact: "app", A: 0, B: 1, Cause: consensus.CauseArtifact, Detail: "recorded " + dA + ", rebuilt " + dA2, Roots: []string{ws, v1ws}}},
			Differences: []string{"app: recorded " + dA + ", rebuilt " + dA2 + " (validator-1)"},
		},
	}, {
		name: "dissent wins over a met threshold",
		// One dissent means no consensus, even when 2 of 3 agree.
		threshold: 2,
		outs:      []consensus.Outcome{out(p), out(v1), out(v2, artifacts(art("app", dA, ""), art("lib", dC, "")))},
		want: consensus.Decision{
			Verdict: consensus.Disagreed, Threshold: 2, Counted: 2,
			Reason:   "builders disagree: validator-2 produced other digests than the primary",
			Agreeing: []string{p, v1}, Failed: map[string]string{},
			Votes:       votes([]string{p, v1, v2}, map[string]string{v2 + "/lib": dC}),
			Explain:     []consensus.Pair{{Artifact: "lib", A: 0, B: 2, Cause: consensus.CauseArtifact, Detail: "recorded " + dB + ", rebuilt " + dC, Roots: []string{ws}}},
			Differences: []string{"lib: recorded " + dB + ", rebuilt " + dC + " (validator-2)"},
		},
	}, {
		name:      "threshold met with one failed build",
		threshold: 2,
		outs:      []consensus.Outcome{out(p), out(v1, failed("step build: exit status 2")), out(v2)},
		want: consensus.Decision{
			Consensus: true, Verdict: consensus.Agreed, Threshold: 2, Counted: 2,
			Agreeing: []string{p, v2}, Failed: map[string]string{v1: "step build: exit status 2"},
			Votes: votes([]string{p, v2}, nil), Released: released,
		},
	}, {
		name: "threshold missed",
		outs: []consensus.Outcome{out(p), out(v1, failed("timeout")), out(v2)},
		want: consensus.Decision{
			Verdict: consensus.NotEnough, Threshold: 3, Counted: 2,
			Reason:   "only 2 of 3 builders produced the artifacts (threshold 3)",
			Agreeing: []string{p, v2}, Failed: map[string]string{v1: "timeout"},
			Votes: votes([]string{p, v2}, nil),
		},
	}, {
		name: "two builders with the same key",
		outs: []consensus.Outcome{out(p), out(v1, key("key-primary"))},
		want: consensus.Decision{
			Verdict: consensus.NotEnough, Threshold: 2, Counted: 1,
			Reason:   "only 1 of 2 builders produced the artifacts (threshold 2): validator-1 signs with the key of primary; one key counts once",
			Agreeing: []string{p, v1}, SameKey: map[string]string{v1: p}, Failed: map[string]string{},
			Votes: votes([]string{p, v1}, nil),
		},
	}, {
		name:      "two validators with one key, threshold still met",
		threshold: 2,
		outs:      []consensus.Outcome{out(p), out(v1, key("k")), out(v2, key("k"))},
		want: consensus.Decision{
			Consensus: true, Verdict: consensus.Agreed, Threshold: 2, Counted: 2,
			Agreeing: []string{p, v1, v2}, SameKey: map[string]string{v2: v1}, Failed: map[string]string{},
			Votes: votes([]string{p, v1, v2}, nil), Released: released,
		},
	}, {
		name: "unknown keys count each",
		outs: []consensus.Outcome{out(p, key("")), out(v1, key(""))},
		want: consensus.Decision{
			Consensus: true, Verdict: consensus.Agreed, Threshold: 2, Counted: 2,
			Agreeing: []string{p, v1}, Failed: map[string]string{},
			Votes: votes([]string{p, v1}, nil), Released: released,
		},
	}, {
		name: "a validator that produced an artifact the primary did not",
		outs: []consensus.Outcome{out(p), out(v1, artifacts(art("app", dA, ""), art("debug", dC, ""), art("lib", dB, "")))},
		want: consensus.Decision{
			Verdict: consensus.Disagreed, Threshold: 2, Counted: 1,
			Reason:   "builders disagree: validator-1 produced other digests than the primary",
			Agreeing: []string{p}, Failed: map[string]string{},
			Votes:       append(votes([]string{p, v1}, nil), consensus.Votes{Name: "debug", Digests: map[string]string{p: "", v1: dC}}),
			Explain:     []consensus.Pair{{Artifact: "debug", A: 0, B: 1, Cause: consensus.CauseExtra, Detail: "recorded nothing, rebuilt " + dC, Roots: []string{ws}}},
			Differences: []string{"debug: recorded nothing, rebuilt " + dC},
		},
	}, {
		name: "a validator that produced an artifact twice",
		outs: []consensus.Outcome{out(p), out(v1, artifacts(art("app", dA, ""), art("lib", dB, ""), art("app", dA, "")))},
		want: consensus.Decision{
			Verdict: consensus.Disagreed, Threshold: 2, Counted: 1,
			Reason:   "builders disagree: validator-1 produced other digests than the primary",
			Agreeing: []string{p}, Failed: map[string]string{},
			Votes:       votes([]string{p, v1}, nil),
			Explain:     []consensus.Pair{{Artifact: "app", A: 0, B: 1, Cause: consensus.CauseExtra, Detail: "recorded 1 times, rebuilt 2 times", Roots: []string{ws}}},
			Differences: []string{"app: recorded 1 times, rebuilt 2 times"},
		},
	}, {
		name:      "primary failed",
		threshold: 1,
		outs:      []consensus.Outcome{out(p, failed("step test: exit status 1")), out(v1), out(v2, failed("no runtime"))},
		want: consensus.Decision{
			Verdict: consensus.PrimaryFailed, Threshold: 1,
			Reason:   "the primary's build failed: step test: exit status 1",
			Agreeing: []string{}, Failed: map[string]string{p: "step test: exit status 1", v2: "no runtime"},
		},
	}, {
		name: "SBOM differs with the same digest",
		outs: []consensus.Outcome{
			out(p, artifacts(art("app", dA, sA), art("lib", dB, sA))),
			out(v1, root(v1ws), artifacts(art("app", dA, sA2), art("lib", dB, sA))),
		},
		want: consensus.Decision{
			Verdict: consensus.Disagreed, Threshold: 2, Counted: 1,
			Reason:   "builders disagree: validator-1 produced the same digests with other SBOMs than the primary",
			Agreeing: []string{p}, Failed: map[string]string{},
			Votes:       votes([]string{p, v1}, nil),
			Explain:     []consensus.Pair{{Artifact: "app", A: 0, B: 1, Cause: consensus.CauseSBOM, Detail: "SBOM recorded " + sA + ", rebuilt " + sA2, Roots: []string{ws, v1ws}}},
			Differences: []string{"app: SBOM recorded " + sA + ", rebuilt " + sA2},
		},
	}, {
		name: "SBOM not recorded on one side is not compared",
		outs: []consensus.Outcome{out(p, artifacts(art("app", dA, ""), art("lib", dB, sA))), out(v1, artifacts(art("app", dA, sA2), art("lib", dB, sA)))},
		want: consensus.Decision{
			Consensus: true, Verdict: consensus.Agreed, Threshold: 2, Counted: 2,
			Agreeing: []string{p, v1}, Failed: map[string]string{},
			Votes: votes([]string{p, v1}, nil), Released: released,
		},
	}, {
		name: "resolved inputs differ",
		outs: []consensus.Outcome{
			out(p, inputs(map[string]string{"git+https://example.com/app@c0ffee": "sha1:c0ffee", "oci://golang": "sha256:1111", "pkg:golang/golang.org/x/mod@v0.1.0": "h1:aaaa"})),
			out(v1, inputs(map[string]string{"git+https://example.com/app@c0ffee": "sha1:c0ffee", "oci://golang": "sha256:2222", "pkg:golang/golang.org/x/net@v0.2.0": "h1:bbbb"})),
		},
		want: consensus.Decision{
			Verdict: consensus.Disagreed, Threshold: 2, Counted: 1,
			Reason:   "builders disagree: validator-1 resolved other inputs than the primary",
			Agreeing: []string{p}, Failed: map[string]string{},
			Votes: votes([]string{p, v1}, nil),
			Explain: []consensus.Pair{{A: 0, B: 1, Cause: consensus.CauseInputs, Roots: []string{ws},
				Detail: "oci://golang, pkg:golang/golang.org/x/mod@v0.1.0, pkg:golang/golang.org/x/net@v0.2.0"}},
			Differences: []string{
				"input oci://golang: recorded sha256:1111, rebuilt sha256:2222",
				"input pkg:golang/golang.org/x/mod@v0.1.0: recorded h1:aaaa, rebuilt nothing",
				"input pkg:golang/golang.org/x/net@v0.2.0: recorded nothing, rebuilt h1:bbbb",
			},
		},
	}, {
		name: "inputs unknown on one side are not compared",
		outs: []consensus.Outcome{out(p, inputs(map[string]string{"oci://golang": "sha256:1111"})), out(v1)},
		want: consensus.Decision{
			Consensus: true, Verdict: consensus.Agreed, Threshold: 2, Counted: 2,
			Agreeing: []string{p, v1}, Failed: map[string]string{},
			Votes: votes([]string{p, v1}, nil), Released: released,
		},
	}, {
		name: "each validator by its weightiest cause",
		outs: []consensus.Outcome{
			out(p, artifacts(art("app", dA, sA), art("lib", dB, "")), inputs(map[string]string{"oci://golang": "sha256:1111"})),
			out(v1, artifacts(art("app", dA, sA2), art("lib", dB, ""))),
			out(v2, artifacts(art("app", dA2, sA), art("lib", dB, "")), inputs(map[string]string{"oci://golang": "sha256:2222"})),
		},
		want: consensus.Decision{
			Verdict: consensus.Disagreed, Threshold: 3, Counted: 1,
			Reason:   "builders disagree: validator-2 produced other digests than the primary; validator-1 produced the same digests with other SBOMs than the primary",
			Agreeing: []string{p}, Failed: map[string]string{},
			Votes: votes([]string{p, v1, v2}, map[string]string{v2 + "/app": dA2}),
			Explain: []consensus.Pair{
				{Artifact: "app", A: 0, B: 1, Cause: consensus.CauseSBOM, Detail: "SBOM recorded " + sA + ", rebuilt " + sA2, Roots: []string{ws}},
				{Artifact: "app", A: 0, B: 2, Cause: consensus.CauseArtifact, Detail: "recorded " + dA + ", rebuilt " + dA2, Roots: []string{ws}},
				{A: 0, B: 2, Cause: consensus.CauseInputs, Detail: "oci://golang", Roots: []string{ws}},
			},
			Differences: []string{
				"app: SBOM recorded " + sA + ", rebuilt " + sA2 + " (validator-1)",
				"app: recorded " + dA + ", rebuilt " + dA2 + " (validator-2)",
				"input oci://golang: recorded sha256:1111, rebuilt sha256:2222 (validator-2)",
			},
		},
	}, {
		name:      "a threshold above n is never met",
		threshold: 3,
		outs:      []consensus.Outcome{out(p), out(v1)},
		want: consensus.Decision{
			Verdict: consensus.NotEnough, Threshold: 3, Counted: 2,
			Reason:   "only 2 of 2 builders produced the artifacts (threshold 3)",
			Agreeing: []string{p, v1}, Failed: map[string]string{},
			Votes: votes([]string{p, v1}, nil),
		},
	}, {
		name:      "a negative threshold means all",
		threshold: -1,
		outs:      []consensus.Outcome{out(p), out(v1, failed("x"))},
		want: consensus.Decision{
			Verdict: consensus.NotEnough, Threshold: 2, Counted: 1,
			Reason:   "only 1 of 2 builders produced the artifacts (threshold 2)",
			Agreeing: []string{p}, Failed: map[string]string{v1: "x"},
			Votes: votes([]string{p}, nil),
		},
	}, {
		name: "no builders",
		want: consensus.Decision{Verdict: consensus.NotEnough, Reason: "no builders voted", Agreeing: []string{}, Failed: map[string]string{}},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := consensus.Decide(tt.threshold, tt.outs)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Decide (-want +got):\n%s", diff)
			}
		})
	}
}

// TestDecideRebuild is the vote of 'accord rebuild': the recorded build
// (artifacts from its provenance's subjects, sorted by name; its roots
// unknown) and one rebuild.
func TestDecideRebuild(t *testing.T) {
	recorded := consensus.Outcome{
		Builder: "https://ci.example/primary", ID: "https://ci.example/primary", Key: "fp-primary",
		Artifacts: []consensus.Artifact{art("app", dA, ""), art("cli", dB, ""), art("docs", dC, "")},
	}
	rebuilt := consensus.Outcome{
		Builder: "https://accord.dev/builders/validator-1", ID: "https://accord.dev/builders/validator-1", Key: "fp-validator",
		Artifacts: []consensus.Artifact{art("cli", dB, ""), art("app", dA2, "")},
		Roots:     []string{"/build/validator-1"},
	}
	got := consensus.Decide(0, []consensus.Outcome{recorded, rebuilt})
	v := rebuilt.Builder
	want := consensus.Decision{
		Verdict: consensus.Disagreed, Threshold: 2, Counted: 1,
		Reason:   "builders disagree: " + v + " produced other digests than the primary",
		Agreeing: []string{recorded.Builder}, Failed: map[string]string{},
		Votes: []consensus.Votes{
			{Name: "app", Digests: map[string]string{recorded.Builder: dA, v: dA2}},
			{Name: "cli", Digests: map[string]string{recorded.Builder: dB, v: dB}},
			{Name: "docs", Digests: map[string]string{recorded.Builder: dC, v: ""}},
		},
		Explain: []consensus.Pair{
			{Artifact: "app", A: 0, B: 1, Cause: consensus.CauseArtifact, Detail: "recorded " + dA + ", rebuilt " + dA2, Roots: []string{"/build/validator-1"}},
			{Artifact: "docs", A: 0, B: 1, Cause: consensus.CauseMissing, Detail: "recorded " + dC + ", rebuilt nothing", Roots: []string{"/build/validator-1"}},
		},
		// What 'accord rebuild -o json' prints as "differences" today.
		Differences: []string{
			"app: recorded " + dA + ", rebuilt " + dA2,
			"docs: recorded " + dC + ", rebuilt nothing",
		},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Decide (-want +got):\n%s", diff)
	}
	rebuilt.Artifacts = append(rebuilt.Artifacts[:1:1], art("app", dA, ""), art("docs", dC, ""))
	if got := consensus.Decide(0, []consensus.Outcome{recorded, rebuilt}); !got.Consensus || len(got.Differences) != 0 {
		t.Errorf("a rebuild with every recorded digest: %+v, want agreement", got)
	}
}

// TestDecideDoesNotModify checks that Decide leaves its input alone.
func TestDecideDoesNotModify(t *testing.T) {
	outs := []consensus.Outcome{
		out("primary", inputs(map[string]string{"oci://a": "sha256:1"})),
		out("v1", artifacts(art("x", dA, ""))),
		out("v2", inputs(map[string]string{"oci://a": "sha256:2"})),
	}
	before := clone(outs)
	_ = consensus.Decide(2, outs)
	if diff := cmp.Diff(before, outs); diff != "" {
		t.Errorf("Decide modified its input (-before +after):\n%s", diff)
	}
}

func clone(outs []consensus.Outcome) []consensus.Outcome {
	c := make([]consensus.Outcome, len(outs))
	for i, o := range outs {
		c[i] = o
		c[i].Artifacts = append([]consensus.Artifact(nil), o.Artifacts...)
		c[i].Roots = append([]string(nil), o.Roots...)
		if o.Inputs != nil {
			c[i].Inputs = map[string]string{}
			for k, v := range o.Inputs {
				c[i].Inputs[k] = v
			}
		}
	}
	return c
}

package consensus

import (
	"fmt"
	"sort"
	"strings"
)

// Artifact is one artifact a builder produced.
type Artifact struct {
	Name   string
	Digest string // "sha256:..."
	// SBOM is the digest of this builder's SBOM bytes for the artifact;
	// "" when none was recorded (then SBOMs are not compared).
	SBOM string
}

// Outcome is what one builder did with the request.
type Outcome struct {
	// Builder is the builder's name, unique in the vote. Outcomes[0] is
	// the primary (for a rebuild: the recorded build).
	Builder string
	ID      string // builder.id
	// Key is the fingerprint of the builder's signing key
	// (attest.Fingerprint); "" when unknown (then it counts as its own key).
	Key string
	// Err, when not empty, says why this builder's build failed or could
	// not run.
	Err       string
	Artifacts []Artifact
	// Inputs are the inputs the build resolved (step images, catalog
	// files, Go modules, source commit): URI -> digest; nil when unknown
	// (then inputs are not compared).
	Inputs map[string]string
	// Roots are the workspace roots (build paths) this builder used, for
	// explaining a difference.
	Roots []string
}

// Cause says how a validator's build differs from the primary's.
type Cause string

// The causes of a [Pair].
const (
	// CauseArtifact: an artifact both produced has other digests.
	CauseArtifact Cause = "artifact"
	// CauseMissing: the validator did not produce an artifact of the
	// primary (or produced it fewer times).
	CauseMissing Cause = "missing"
	// CauseExtra: the validator produced an artifact the primary did not
	// (or produced it more times).
	CauseExtra Cause = "extra"
	// CauseSBOM: the artifact digests are equal, the SBOMs' are not.
	CauseSBOM Cause = "sbom"
	// CauseInputs: the builds resolved other inputs; Detail lists the URIs.
	CauseInputs Cause = "inputs"
)

// Pair is one difference between the primary (A, always 0) and a
// validator (B), for a divergence report to explain.
type Pair struct {
	// Artifact is the artifact's name; "" for [CauseInputs], which is
	// about the whole build.
	Artifact string
	// A and B index the outcomes given to [Decide]; A is 0.
	A, B  int
	Cause Cause
	// Detail is human text: "recorded sha256:x, rebuilt nothing", or the
	// differing input URIs, sorted and comma-separated.
	Detail string
	// Roots are the build paths for explaining: A's Roots then B's,
	// without repeats.
	Roots []string
}

// Verdict is the outcome of a vote.
type Verdict string

// The verdicts of a [Decision].
const (
	// Agreed: no validator dissents and enough distinct keys agree.
	Agreed Verdict = "agreed"
	// Disagreed: at least one validator that succeeded differs.
	Disagreed Verdict = "disagreed"
	// NotEnough: no dissent, but fewer distinct agreeing keys than the
	// threshold (builds failed, or builders share a key).
	NotEnough Verdict = "not-enough"
	// PrimaryFailed: the primary's build failed; nothing was compared.
	PrimaryFailed Verdict = "primary-failed"
)

// Votes is one artifact and the digest each builder that succeeded
// produced for it ("" for none).
type Votes struct {
	Name    string
	Digests map[string]string // builder name -> digest
}

// Decision is the result of [Decide].
type Decision struct {
	// Consensus is true exactly when Verdict is [Agreed].
	Consensus bool
	Verdict   Verdict
	// Reason says why there is no consensus; "" when there is.
	Reason string
	// Threshold is the number of distinct agreeing keys needed (the
	// threshold given, or n for 0).
	Threshold int
	// Agreeing are the builders that agree with the primary, the primary
	// first, in the order given; never nil.
	Agreeing []string
	// Counted is how many of Agreeing count toward the threshold: those
	// that do not share an earlier agreeing builder's key.
	Counted int
	// SameKey maps an agreeing builder that did not count to the earlier
	// agreeing builder whose key it signs with; nil when none.
	SameKey map[string]string
	// Failed maps each builder whose build failed to why; never nil.
	Failed map[string]string
	// Votes are the primary's artifacts in its order, then artifacts only
	// validators produced, sorted by name; nil when the primary failed.
	Votes []Votes
	// Released are "name@digest" of the primary's artifacts, in its
	// order, only when Consensus.
	Released []string
	// Explain are the differences to explain: by validator in the order
	// given, then by the primary's artifact order (extras sorted by name,
	// inputs last).
	Explain []Pair
	// Differences are one line per difference, rebuild style ("NAME:
	// recorded D1, rebuilt D2|nothing"); by validator, then digest lines
	// sorted by artifact name, SBOM lines, input lines sorted by URI. With
	// more than one validator each line ends in " (VALIDATOR)".
	Differences []string
}

// Decide votes on outs, the primary first. A threshold of 0 (or less)
// means all len(outs) builders. It does not modify outs.
func Decide(threshold int, outs []Outcome) Decision {
	n := len(outs)
	k := threshold
	if k <= 0 {
		k = n
	}
	d := Decision{Threshold: k, Agreeing: []string{}, Failed: map[string]string{}}
	for _, o := range outs {
		if o.Err != "" {
			d.Failed[o.Builder] = o.Err
		}
	}
	switch {
	case n == 0:
		d.Verdict, d.Reason = NotEnough, "no builders voted"
		return d
	case outs[0].Err != "":
		d.Verdict, d.Reason = PrimaryFailed, "the primary's build failed: "+outs[0].Err
		return d
	}
	d.Votes = votes(outs)
	var dissent dissenters
	d.tally(outs, &dissent)
	switch {
	case !dissent.none():
		d.Verdict, d.Reason = Disagreed, "builders disagree: "+dissent.String()
	case d.Counted < k:
		d.Verdict = NotEnough
		d.Reason = fmt.Sprintf("only %d of %d builders produced the artifacts (threshold %d)", d.Counted, n, k) + d.sameKeyNote(outs)
	default:
		d.Consensus, d.Verdict = true, Agreed
		for _, a := range outs[0].Artifacts {
			d.Released = append(d.Released, a.Name+"@"+a.Digest)
		}
	}
	return d
}

// tally compares each validator that succeeded with the primary: it fills
// Agreeing, Counted, SameKey, Explain and Differences, and dissent.
func (d *Decision) tally(outs []Outcome, dissent *dissenters) {
	p := outs[0]
	d.Agreeing, d.Counted = append(d.Agreeing, p.Builder), 1
	keys := map[string]string{}
	if p.Key != "" {
		keys[p.Key] = p.Builder
	}
	for i := 1; i < len(outs); i++ {
		o := outs[i]
		if o.Err != "" {
			continue
		}
		pairs, lines := compare(p, o, i)
		if len(pairs) > 0 {
			dissent.add(o.Builder, pairs)
			d.Explain = append(d.Explain, pairs...)
			if len(outs) > 2 {
				for j := range lines {
					lines[j] += " (" + o.Builder + ")"
				}
			}
			d.Differences = append(d.Differences, lines...)
			continue
		}
		d.Agreeing = append(d.Agreeing, o.Builder)
		if first, ok := keys[o.Key]; ok && o.Key != "" {
			if d.SameKey == nil {
				d.SameKey = map[string]string{}
			}
			d.SameKey[o.Builder] = first
			continue
		}
		d.Counted++
		if o.Key != "" {
			keys[o.Key] = o.Builder
		}
	}
}

// sameKeyNote explains, for a missed threshold, the agreeing builders
// that did not count; "" when every one counted.
func (d *Decision) sameKeyNote(outs []Outcome) string {
	if len(d.SameKey) == 0 {
		return ""
	}
	var s []string
	for _, o := range outs { // in the order given, not map order
		if first, ok := d.SameKey[o.Builder]; ok {
			s = append(s, o.Builder+" signs with the key of "+first)
		}
	}
	return ": " + strings.Join(s, ", ") + "; one key counts once"
}

// votes lists each artifact and every succeeded builder's digest for it.
func votes(outs []Outcome) []Votes {
	var vs []Votes
	known := map[string]bool{}
	for _, a := range outs[0].Artifacts {
		known[a.Name] = true
		vs = append(vs, Votes{Name: a.Name, Digests: map[string]string{outs[0].Builder: a.Digest}})
	}
	var extra []string
	for _, o := range outs[1:] {
		if o.Err != "" {
			continue
		}
		for _, a := range o.Artifacts {
			if !known[a.Name] {
				known[a.Name] = true
				extra = append(extra, a.Name)
			}
		}
	}
	sort.Strings(extra)
	for _, name := range extra {
		vs = append(vs, Votes{Name: name, Digests: map[string]string{outs[0].Builder: ""}})
	}
	for _, o := range outs[1:] {
		if o.Err != "" {
			continue
		}
		for j := range vs {
			vs[j].Digests[o.Builder] = digestOf(o.Artifacts, vs[j].Name)
		}
	}
	return vs
}

// digestOf is the digest of the first artifact called name; "" for none.
func digestOf(as []Artifact, name string) string {
	for _, a := range as {
		if a.Name == name {
			return a.Digest
		}
	}
	return ""
}

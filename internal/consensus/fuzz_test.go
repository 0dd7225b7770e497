package consensus_test

import (
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/accord-build/accord/internal/consensus"
)

// FuzzDecide decodes a vote from bytes and checks Decide's invariants;
// for votes the CLI's earlier inline rules could see (no SBOMs, no
// inputs, one key per builder), it also checks Decide against them.
func FuzzDecide(f *testing.F) {
	f.Add([]byte{0, 2, 0, 0, 0, 3, 1, 1, 0, 0, 3})
	f.Add([]byte{1, 3, 0, 1, 5, 7, 0, 2, 3, 1, 4, 5, 9, 8, 7, 6, 5, 4})
	f.Add([]byte{2, 1, 0, 0, 0, 15, 0, 0, 0, 15, 2, 2, 1, 1, 0, 15})
	f.Fuzz(func(t *testing.T, b []byte) {
		threshold, outs := decode(b)
		before := clone(outs)
		d := consensus.Decide(threshold, outs)
		if diff := cmp.Diff(before, outs); diff != "" {
			t.Fatalf("Decide modified its input:\n%s", diff)
		}
		if again := consensus.Decide(threshold, clone(outs)); !cmp.Equal(d, again) {
			t.Fatalf("Decide is not deterministic:\n%s", cmp.Diff(d, again))
		}
		checkInvariants(t, threshold, outs, d)
		if legacyDomain(outs) {
			checkLegacyRun(t, threshold, outs, d)
			if len(outs) == 2 && outs[0].Err == "" && outs[1].Err == "" && subsetOf(outs[1], outs[0]) {
				checkLegacyRebuild(t, outs, d)
			}
		}
	})
}

func checkInvariants(t *testing.T, threshold int, outs []consensus.Outcome, d consensus.Decision) {
	t.Helper()
	if d.Consensus != (d.Verdict == consensus.Agreed) {
		t.Fatalf("Consensus %v with verdict %q", d.Consensus, d.Verdict)
	}
	if !d.Consensus && (len(d.Released) > 0 || d.Reason == "") {
		t.Fatalf("no consensus, released %v, reason %q", d.Released, d.Reason)
	}
	if d.Consensus && (d.Reason != "" || len(d.Explain) > 0 || d.Counted < d.Threshold) {
		t.Fatalf("consensus with reason %q, %d pairs, %d of %d", d.Reason, len(d.Explain), d.Counted, d.Threshold)
	}
	if (d.Verdict == consensus.Disagreed) != (len(d.Explain) > 0) || len(d.Explain) > len(d.Differences) {
		t.Fatalf("verdict %q with %d pairs, %d differences", d.Verdict, len(d.Explain), len(d.Differences))
	}
	if len(outs) > 0 && outs[0].Err == "" && (len(d.Agreeing) == 0 || d.Agreeing[0] != outs[0].Builder) {
		t.Fatalf("primary %s succeeded, agreeing %v", outs[0].Builder, d.Agreeing)
	}
	if d.Agreeing == nil || d.Failed == nil || d.Counted > len(d.Agreeing) || d.Counted+len(d.SameKey) != len(d.Agreeing) {
		t.Fatalf("agreeing %v, counted %d, same key %v, failed %v", d.Agreeing, d.Counted, d.SameKey, d.Failed)
	}
	for _, p := range d.Explain {
		if p.A != 0 || p.B < 1 || p.B >= len(outs) || outs[p.B].Err != "" || (p.Cause == consensus.CauseInputs) != (p.Artifact == "") {
			t.Fatalf("pair %+v of %d outcomes", p, len(outs))
		}
	}
	for _, o := range outs {
		if _, failed := d.Failed[o.Builder]; failed != (o.Err != "") {
			t.Fatalf("builder %s (err %q) failed: %v", o.Builder, o.Err, failed)
		}
	}
}

// decode makes a vote of 1 to 4 builders from b. An even first byte
// makes a plain vote, as the CLI's earlier rules could see it: no SBOMs,
// no inputs, no empty digests, no name twice, one key per builder.
func decode(b []byte) (int, []consensus.Outcome) {
	next := func() int {
		if len(b) == 0 {
			return 0
		}
		v := int(b[0])
		b = b[1:]
		return v
	}
	plain := next()%2 == 0
	threshold := next()%6 - 1
	n := 1 + next()%4
	outs := make([]consensus.Outcome, n)
	for i := range outs {
		o := consensus.Outcome{Builder: fmt.Sprintf("b%d", i), Roots: []string{fmt.Sprintf("/r%d", next()%3)}}
		flags := next()
		if plain {
			flags &= 1
		}
		if flags&1 != 0 {
			o.Err = "failed"
		}
		if k := next() % 4; k > 0 {
			o.Key = fmt.Sprintf("k%d", k)
		}
		if plain {
			o.Key = fmt.Sprintf("k%d", i)
		}
		set := next()
		for j, name := range []string{"a", "b", "c", "d"} {
			if set&(1<<j) == 0 {
				continue
			}
			di, si := next()%3, next()%3
			digest, sbom := []string{"sha256:1", "sha256:2", ""}[di], []string{"", "s1", "s2"}[si]
			if plain {
				digest, sbom = []string{"sha256:1", "sha256:2"}[di%2], ""
			}
			o.Artifacts = append(o.Artifacts, art(name, digest, sbom))
		}
		if set&16 != 0 && len(o.Artifacts) > 0 && !plain {
			o.Artifacts = append(o.Artifacts, o.Artifacts[0]) // a name twice
		}
		if flags&2 != 0 {
			o.Inputs = map[string]string{}
			for j, u := range []string{"oci://x", "git+https://y", "pkg:golang/z"} {
				if v := next() % 3; v > 0 && flags&(4<<j) == 0 {
					o.Inputs[u] = fmt.Sprintf("sha256:%d", v)
				}
			}
		}
		outs[i] = o
	}
	return threshold, outs
}

// legacyDomain says whether the earlier inline rules saw everything that
// matters in outs: no SBOMs, no inputs, no shared keys, unique names,
// no empty digests.
func legacyDomain(outs []consensus.Outcome) bool {
	keys := map[string]bool{}
	for _, o := range outs {
		if o.Inputs != nil || (o.Key != "" && keys[o.Key]) {
			return false
		}
		keys[o.Key] = true
		names := map[string]bool{}
		for _, a := range o.Artifacts {
			if a.SBOM != "" || a.Digest == "" || names[a.Name] {
				return false
			}
			names[a.Name] = true
		}
	}
	return true
}

// checkLegacyRun compares d with the vote 'accord run --builders'
// computed inline (cmd/accord/consensus.go, runConsensus) before Decide.
func checkLegacyRun(t *testing.T, threshold int, outs []consensus.Outcome, d consensus.Decision) {
	t.Helper()
	n, k := len(outs), threshold
	if k <= 0 {
		k = n
	}
	if outs[0].Err != "" {
		if d.Reason != "the primary's build failed: "+outs[0].Err || d.Votes != nil || len(d.Agreeing) != 0 {
			t.Fatalf("primary failed: %+v", d)
		}
		return
	}
	primary := outs[0]
	agreeing := []string{primary.Builder}
	var vs []consensus.Votes
	for _, a := range primary.Artifacts {
		vs = append(vs, consensus.Votes{Name: a.Name, Digests: map[string]string{primary.Builder: a.Digest}})
	}
	var dissent []string
	var explained []string
	for i := 1; i < n; i++ {
		r := outs[i]
		if r.Err != "" {
			continue
		}
		agree := len(r.Artifacts) == len(primary.Artifacts)
		for j, a := range primary.Artifacts {
			dg := digestIn(r, a.Name)
			vs[j].Digests[r.Builder] = dg
			if dg != a.Digest {
				agree = false
			}
		}
		if agree {
			agreeing = append(agreeing, r.Builder)
			continue
		}
		dissent = append(dissent, r.Builder)
		for _, a := range primary.Artifacts {
			if dg := digestIn(r, a.Name); dg != "" && dg != a.Digest {
				explained = append(explained, fmt.Sprintf("%d/%s", i, a.Name))
			}
		}
	}
	var reason string
	var released []string
	switch {
	case len(dissent) > 0:
		reason = fmt.Sprintf("builders disagree: %s produced other digests than the primary", strings.Join(dissent, ", "))
	case len(agreeing) < k:
		reason = fmt.Sprintf("only %d of %d builders produced the artifacts (threshold %d)", len(agreeing), n, k)
	default:
		for _, a := range primary.Artifacts {
			released = append(released, a.Name+"@"+a.Digest)
		}
	}
	var got []string
	for _, p := range d.Explain {
		if p.Cause == consensus.CauseArtifact {
			got = append(got, fmt.Sprintf("%d/%s", p.B, p.Artifact))
		}
	}
	primaryVotes := d.Votes[:len(vs)] // extras follow; the CLI listed none
	if len(vs) == 0 && len(d.Votes) == 0 && d.Votes != nil {
		t.Fatalf("votes %#v, want nil as the CLI had", d.Votes)
	}
	if diff := cmp.Diff(struct {
		Reason    string
		Agreeing  []string
		Votes     []consensus.Votes
		Released  []string
		Explained []string
	}{reason, agreeing, vs, released, explained}, struct {
		Reason    string
		Agreeing  []string
		Votes     []consensus.Votes
		Released  []string
		Explained []string
	}{d.Reason, d.Agreeing, primaryVotes, d.Released, got}, cmpopts.EquateEmpty()); diff != "" {
		t.Fatalf("Decide departs from run --builders (-legacy +Decide):\n%s", diff)
	}
}

// checkLegacyRebuild compares d with what 'accord rebuild' computed inline
// (cmd/accord/rebuild.go, compareRebuild) before Decide, for a rebuild
// that produced no artifact the provenance does not name (which it
// ignored).
func checkLegacyRebuild(t *testing.T, outs []consensus.Outcome, d consensus.Decision) {
	t.Helper()
	want := map[string]string{}
	for _, a := range outs[0].Artifacts {
		want[a.Name] = a.Digest
	}
	got := map[string]string{}
	for _, a := range outs[1].Artifacts {
		got[a.Name] = a.Digest
	}
	names := make([]string, 0, len(want))
	for name := range want {
		names = append(names, name)
	}
	sort.Strings(names)
	var diffs []string
	for _, name := range names {
		if got[name] != want[name] {
			r := got[name]
			if r == "" {
				r = "nothing"
			}
			diffs = append(diffs, fmt.Sprintf("%s: recorded %s, rebuilt %s", name, want[name], r))
		}
	}
	if diff := cmp.Diff(diffs, d.Differences); diff != "" || (len(diffs) == 0) != (d.Verdict != consensus.Disagreed) {
		t.Fatalf("Decide (%s) departs from rebuild (-legacy +Decide):\n%s", d.Verdict, diff)
	}
}

func digestIn(o consensus.Outcome, name string) string {
	for _, a := range o.Artifacts {
		if a.Name == name {
			return a.Digest
		}
	}
	return ""
}

// subsetOf says whether o produced only artifacts that p names.
func subsetOf(o, p consensus.Outcome) bool {
	for _, a := range o.Artifacts {
		if digestIn(p, a.Name) == "" {
			return false
		}
	}
	return true
}

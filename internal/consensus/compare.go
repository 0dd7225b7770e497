package consensus

import (
	"fmt"
	"sort"
	"strings"
)

// compare lists how validator o (outcome i) differs from primary p: the
// pairs to explain, and one line per difference for Differences.
func compare(p, o Outcome, i int) ([]Pair, []string) {
	roots := union(p.Roots, o.Roots)
	pair := func(name string, c Cause, detail string) Pair {
		return Pair{Artifact: name, A: 0, B: i, Cause: c, Detail: detail, Roots: roots}
	}
	pc, oc := counts(p.Artifacts), counts(o.Artifacts)
	var pairs []Pair
	var digests, sboms []string
	done := map[string]bool{}
	for _, a := range p.Artifacts {
		if done[a.Name] {
			continue
		}
		done[a.Name] = true
		b, ok := first(o.Artifacts, a.Name)
		var c Cause
		detail := "recorded " + orNone(a.Digest) + ", rebuilt " + orNone(b.Digest)
		switch {
		case !ok:
			c = CauseMissing
		case b.Digest != a.Digest:
			c = CauseArtifact
		case oc[a.Name] != pc[a.Name]:
			c, detail = CauseMissing, fmt.Sprintf("recorded %d times, rebuilt %d times", pc[a.Name], oc[a.Name])
			if oc[a.Name] > pc[a.Name] {
				c = CauseExtra
			}
		case a.SBOM != "" && b.SBOM != "" && a.SBOM != b.SBOM:
			detail = "SBOM recorded " + a.SBOM + ", rebuilt " + b.SBOM
			pairs = append(pairs, pair(a.Name, CauseSBOM, detail))
			sboms = append(sboms, a.Name+": "+detail)
			continue
		default:
			continue
		}
		pairs = append(pairs, pair(a.Name, c, detail))
		digests = append(digests, a.Name+": "+detail)
	}
	for _, name := range sortedKeys(oc) {
		if pc[name] == 0 {
			detail := "recorded nothing, rebuilt " + orNone(digestOf(o.Artifacts, name))
			pairs = append(pairs, pair(name, CauseExtra, detail))
			digests = append(digests, name+": "+detail)
		}
	}
	sort.Strings(digests) // rebuild style: by artifact name
	lines := append(digests, sboms...)
	if uris, ls := inputDiff(p.Inputs, o.Inputs); len(uris) > 0 {
		pairs = append(pairs, pair("", CauseInputs, strings.Join(uris, ", ")))
		lines = append(lines, ls...)
	}
	return pairs, lines
}

// inputDiff lists, sorted, the URIs whose digest differs or that one side
// lacks, and a line for each; nothing unless both sides are known.
func inputDiff(a, b map[string]string) ([]string, []string) {
	if a == nil || b == nil {
		return nil, nil
	}
	all := map[string]int{}
	for u := range a {
		all[u]++
	}
	for u := range b {
		all[u]++
	}
	var uris, lines []string
	for _, u := range sortedKeys(all) {
		da, okA := a[u]
		db, okB := b[u]
		if okA && okB && da == db {
			continue
		}
		uris = append(uris, u)
		lines = append(lines, "input "+u+": recorded "+present(da, okA)+", rebuilt "+present(db, okB))
	}
	return uris, lines
}

// dissenters are the validators that differ, by their weightiest cause:
// digests (artifact, missing, extra), else SBOMs, else inputs.
type dissenters struct{ digests, sboms, inputs []string }

func (s *dissenters) add(builder string, pairs []Pair) {
	has := map[Cause]bool{}
	for _, p := range pairs {
		has[p.Cause] = true
	}
	switch {
	case has[CauseArtifact] || has[CauseMissing] || has[CauseExtra]:
		s.digests = append(s.digests, builder)
	case has[CauseSBOM]:
		s.sboms = append(s.sboms, builder)
	default:
		s.inputs = append(s.inputs, builder)
	}
}

func (s *dissenters) none() bool {
	return len(s.digests)+len(s.sboms)+len(s.inputs) == 0
}

// String is the reason after "builders disagree: ".
func (s *dissenters) String() string {
	var parts []string
	if len(s.digests) > 0 {
		parts = append(parts, strings.Join(s.digests, ", ")+" produced other digests than the primary")
	}
	if len(s.sboms) > 0 {
		parts = append(parts, strings.Join(s.sboms, ", ")+" produced the same digests with other SBOMs than the primary")
	}
	if len(s.inputs) > 0 {
		parts = append(parts, strings.Join(s.inputs, ", ")+" resolved other inputs than the primary")
	}
	return strings.Join(parts, "; ")
}

// first is the first artifact called name.
func first(as []Artifact, name string) (Artifact, bool) {
	for _, a := range as {
		if a.Name == name {
			return a, true
		}
	}
	return Artifact{}, false
}

func counts(as []Artifact) map[string]int {
	c := map[string]int{}
	for _, a := range as {
		c[a.Name]++
	}
	return c
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// union is a then b without repeats, in order.
func union(a, b []string) []string {
	var out []string
	seen := map[string]bool{}
	for _, s := range append(append([]string(nil), a...), b...) {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

func orNone(s string) string {
	if s == "" {
		return "nothing"
	}
	return s
}

// present is d, or "nothing" when the side lacks the input.
func present(d string, ok bool) string {
	if !ok {
		return "nothing"
	}
	return d
}

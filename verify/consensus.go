package verify

import (
	"fmt"
	"path"
	"sort"
	"strings"

	"github.com/accord-build/accord/attest"
)

// provenanceFields are the parts of accord's provenance the policy checks.
type provenanceFields = attest.Summary

func filter(as []*attestation, keep func(*attestation) bool) []*attestation {
	var out []*attestation
	for _, a := range as {
		if keep(a) {
			out = append(out, a)
		}
	}
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// fullRef is the full name of a ref pattern in a policy: a full name
// (refs/heads/main, refs/tags/v*) as it is, and a bare name as a branch
// (main is refs/heads/main). HEAD stays as it is.
func fullRef(name string) string {
	if name == "" || name == "HEAD" || strings.HasPrefix(name, "refs/") {
		return name
	}
	return "refs/heads/" + name
}

// recordedRefIsFull reports whether a ref recorded in provenance names its
// kind. accord records full refs; a bare name (provenance from before it
// did) could have been a branch or a tag of that name, so it matches no
// ref pattern.
func recordedRefIsFull(ref string) bool {
	return ref == "HEAD" || strings.HasPrefix(ref, "refs/")
}

// sourceAllowed reports whether the provenance's repository is one the
// policy allows, at a ref one of its patterns (globs over full refs)
// matches.
func sourceAllowed(p provenanceFields, sources []PolicySource) bool {
	for _, s := range sources {
		if s.URI != p.SourceURI {
			continue
		}
		if len(s.Refs) == 0 {
			return true
		}
		if !recordedRefIsFull(p.SourceRef) {
			continue
		}
		for _, pat := range s.Refs {
			if ok, _ := path.Match(fullRef(pat), p.SourceRef); ok {
				return true
			}
		}
	}
	return false
}

func sourceCheck(as []*attestation, sources []PolicySource) Check {
	if len(as) == 0 {
		return Check{CheckSource, false, "no trusted provenance about the artifact to check the source of"}
	}
	var bad []string
	for _, a := range as {
		if sourceAllowed(a.prov, sources) {
			return Check{CheckSource, true, fmt.Sprintf("built from %s ref %q", a.prov.SourceURI, a.prov.SourceRef)}
		}
		why := ""
		if a.prov.SourceRef != "" && !recordedRefIsFull(a.prov.SourceRef) {
			why = " (not a full ref: it could be a branch or a tag; rebuild with this accord, which records refs/heads/... or refs/tags/...)"
		}
		bad = append(bad, fmt.Sprintf("%s ref %q%s", a.prov.SourceURI, a.prov.SourceRef, why))
	}
	return Check{CheckSource, false, "source not allowed by the policy: " + strings.Join(bad, ", ")}
}

func pipelineCheck(as []*attestation, allowed []string) Check {
	if len(as) == 0 {
		return Check{CheckPipeline, false, "no trusted provenance about the artifact to check the pipeline of"}
	}
	var bad []string
	for _, a := range as {
		if contains(allowed, a.prov.PipelineDigest) {
			return Check{CheckPipeline, true, "pipeline " + a.prov.PipelineDigest + " is in the catalog"}
		}
		bad = append(bad, a.prov.PipelineDigest)
	}
	return Check{CheckPipeline, false, "pipeline not in the policy's catalog: " + strings.Join(bad, ", ")}
}

// thresholdCheck counts, for each (source, pipeline) the attestations
// agree on, distinct trusted builders: a key used under two identities
// counts once, and so does an identity with two keys. Keys are compared by
// fingerprints[i] (builder i's key material, [attest.Fingerprint]), never
// by their PEM bytes: one key written twice is one builder. It also
// returns the largest agreeing group (the first in source and pipeline
// order among equals) and the attestations counted in it.
func thresholdCheck(as []*attestation, p Policy, fingerprints []string) (Check, group) {
	groups := map[string][]*attestation{}
	for _, a := range as {
		k := sourceOf(a.prov) + " " + a.prov.PipelineDigest
		groups[k] = append(groups[k], a)
	}
	keys := make([]string, 0, len(groups))
	for k := range groups {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var best group
	for _, k := range keys {
		ids, keys := map[string]bool{}, map[string]bool{}
		var g group
		for _, a := range groups[k] {
			id, key := p.Builders[a.builder].ID, fingerprints[a.builder]
			if ids[id] || keys[key] {
				continue
			}
			ids[id], keys[key] = true, true
			g.members = append(g.members, a)
		}
		if len(g.members) > len(best.members) {
			best = g
		}
	}
	if n := len(best.members); n >= p.Threshold {
		return Check{CheckThreshold, true, fmt.Sprintf("%d of %d trusted builders agree (need %d) on source %s", n, len(p.Builders), p.Threshold, sourceOf(best.members[0].prov))}, best
	}
	return Check{CheckThreshold, false, fmt.Sprintf("%d distinct trusted builders attest this artifact for one source and pipeline; the policy needs %d", len(best.members), p.Threshold)}, best
}

// sourceOf is what a provenance was built from: its source commit, else
// the tree of a directory source ("tree:<dirHash1>").
func sourceOf(p provenanceFields) string {
	if p.SourceCommit == "" {
		return "tree:" + p.SourceTree
	}
	return p.SourceCommit
}

// group is one set of trusted provenances that agree on the source and
// the pipeline, one per distinct builder.
type group struct{ members []*attestation }

// agreement describes the group for a verification summary.
func (g group) agreement(p Policy, fingerprints []string) Agreement {
	a := Agreement{Threshold: p.Threshold}
	if len(g.members) == 0 {
		return a
	}
	first := g.members[0].prov
	a.SourceCommit, a.PipelineDigest = first.SourceCommit, first.PipelineDigest
	if a.SourceCommit == "" {
		a.SourceTree = first.SourceTree
	}
	for _, m := range g.members {
		a.Builders = append(a.Builders, AgreeingBuilder{ID: p.Builders[m.builder].ID, KeyFingerprint: fingerprints[m.builder]})
	}
	sort.Slice(a.Builders, func(i, j int) bool { return a.Builders[i].ID < a.Builders[j].ID })
	return a
}

// name is the first name (in order) the members give the subject with the
// sha256 hex, or "".
func (g group) name(sha string) string {
	var names []string
	for _, m := range g.members {
		for _, s := range m.st.Subject {
			if s.Digest["sha256"] == sha {
				names = append(names, s.Name)
			}
		}
	}
	sort.Strings(names)
	if len(names) == 0 {
		return ""
	}
	return names[0]
}

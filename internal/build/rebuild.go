package build

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	ggcrv1 "github.com/google/go-containerregistry/pkg/v1"
	v1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"

	"github.com/accord-build/accord/attest"
	"github.com/accord-build/accord/internal/consensus"
	"github.com/accord-build/accord/internal/hashtree"
	"github.com/accord-build/accord/internal/store"
)

// Recorded is the build a rebuild reproduces: the artifact as stored and
// what the provenance a trusted builder signed about it records.
type Recorded struct {
	// Name is the artifact's name, Stored where the store keeps it.
	Name   string
	Stored ggcrv1.Hash
	// Builder is the identity of the builder that signed the provenance.
	Builder string
	// Want are the provenance's subjects: name to digest.
	Want map[string]string
	// Summary is what the provenance says about the build.
	Summary *attest.Summary
	// Trust is whom a divergence report believes.
	Trust Trust
}

// Provenance finds the recorded build of a stored artifact: the
// provenance a trusted builder signed, of builder from when it is given.
type Provenance interface {
	Recorded(ctx context.Context, st store.Store, artifact, from string) (*Recorded, error)
}

// RebuildRequest asks to rebuild a stored artifact from its provenance.
type RebuildRequest struct {
	// Artifact is NAME or NAME@sha256:... in the service's store.
	Artifact string
	// From names the builder whose provenance to rebuild from; "" any
	// trusted one.
	From string
	// Provenance reads and checks the recorded build.
	Provenance Provenance
	// Pipeline is a pipeline file, for a provenance of a pipeline outside
	// the catalog (its digest is checked).
	Pipeline string
	// SourceDir is the tree of a directory build (its hash is checked).
	SourceDir string
	// Timeout bounds the rebuild.
	Timeout time.Duration
}

// Rebuilding is told, before a rebuild starts, what it rebuilds: an
// optional interface of a builder's [Progress].
type Rebuilding interface {
	Rebuilding(artifact, recordedBy string)
}

// Rebuild re-executes the build recorded for an artifact by b, from what
// its signed provenance records and nothing else, and compares the
// digests with the same rule as [Service.Run]. The report's ExitCode is 0
// when they agree, 1 when not, 3 when the rebuild failed.
func (s *Service) Rebuild(ctx context.Context, rr RebuildRequest, b Builder) (*RebuildReport, error) {
	rec, err := rr.Provenance.Recorded(ctx, s.Store, rr.Artifact, rr.From)
	if err != nil {
		return nil, inputErr(err)
	}
	if p, ok := b.Progress.(Rebuilding); ok {
		p.Rebuilding(rr.Artifact, rec.Builder)
	}
	req, err := requestFrom(ctx, s, rec.Summary, rr)
	if err != nil {
		return nil, inputErr(err)
	}
	rep, err := s.Build(ctx, req, b)
	if err != nil {
		return nil, err
	}
	out := &RebuildReport{Recorded: rr.Artifact, RecordedBy: rec.Builder, Build: rep, Wanted: len(rec.Want)}
	if !rep.Succeeded {
		return out, nil
	}
	recorded := consensus.Outcome{Builder: "recorded", ID: rec.Builder, Inputs: comparableInputs(rec.Summary.Dependencies)}
	for _, name := range sortedNames(rec.Want) {
		recorded.Artifacts = append(recorded.Artifacts, consensus.Artifact{Name: name, Digest: rec.Want[name]})
	}
	rebuilt := outcome(b, rep, nil)
	rebuilt.Artifacts = only(rebuilt.Artifacts, rec.Want) // the provenance is about its subjects alone
	d := consensus.Decide(2, []consensus.Outcome{recorded, rebuilt})
	out.Agree, out.Differences = d.Consensus, d.Differences
	for _, p := range d.Explain {
		// Only the artifact asked about is stored where the recorded side
		// is read from (provenance by accord has one subject).
		if p.Cause != consensus.CauseArtifact || p.Artifact != rec.Name && len(rec.Want) > 1 {
			continue
		}
		a := rep.artifactNamed(p.Artifact)
		out.Divergence = append(out.Divergence, Explain(ctx, s.Store, SideOf(p.Artifact, rec.Stored.String(), rec.Want[p.Artifact], rec.Builder),
			SideOf(a.Name, a.Stored, a.Digest, b.ID), b.Signer, b.ID, p.Roots, rec.Trust))
	}
	return out, nil
}

func sortedNames(m map[string]string) []string {
	names := make([]string, 0, len(m))
	for name := range m {
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}

func only(as []consensus.Artifact, names map[string]string) []consensus.Artifact {
	var out []consensus.Artifact
	for _, a := range as {
		if _, ok := names[a.Name]; ok {
			out = append(out, a)
		}
	}
	return out
}

// requestFrom is the request a provenance records, every value checked
// first ([checkRecorded]).
func requestFrom(ctx context.Context, svc *Service, s *attest.Summary, rr RebuildRequest) (Request, error) {
	want := s.Pipeline
	if rr.Pipeline != "" {
		want = rr.Pipeline // a pipeline file; its digest is checked below
	} else if !catalogName.MatchString(want) {
		return Request{}, badField("externalParameters.pipeline.name", fmt.Sprintf("%q is not a catalog pipeline name", want), "give the pipeline file with --pipeline FILE (its digest is checked)")
	}
	if s.PipelineDigest == "" {
		return Request{}, badField("externalParameters.pipeline.digest", "is missing", recordedFix)
	}
	r, err := svc.Resolve(ctx, want, false)
	if err != nil {
		return Request{}, fmt.Errorf("pipeline %q of the provenance: %w", want, err)
	}
	if r.Digest != s.PipelineDigest {
		return Request{}, fmt.Errorf("this builder's catalog has pipeline %s at %s, the provenance records %s\n  fix: rebuild with the catalog the artifact was built from", s.Pipeline, r.Digest, s.PipelineDigest)
	}
	if err := checkRecorded(s, &r.Pipeline.Pipeline.Spec); err != nil {
		return Request{}, err
	}
	req := Request{Pipeline: want, Timeout: rr.Timeout, Params: paramsFrom(s)}
	switch {
	case s.SourceCommit == "" && s.SourceTree == "" && s.SourceURI == "":
		req.Source = Source{DateEpoch: s.SourceDateEpoch} // the build took no source
	case s.SourceCommit != "": // both checked by checkRecorded
		req.Source = Source{URI: s.SourceURI, Revision: s.SourceCommit}
	case rr.SourceDir != "":
		h, err := hashtree.Tree(rr.SourceDir, hashtree.Options{Skip: func(rel string) bool { return rel == ".git" || strings.HasSuffix(rel, "/.git") }})
		if err != nil {
			return Request{}, err
		}
		if got := h.DirHash1(); got != s.SourceTree {
			return Request{}, fmt.Errorf("--source %s has tree hash %s, the provenance records %s: not the same source", rr.SourceDir, got, s.SourceTree)
		}
		req.Source = Source{Dir: rr.SourceDir, DateEpoch: s.SourceDateEpoch}
	default:
		return Request{}, fmt.Errorf("the provenance records a directory build (tree %s)\n  fix: give that tree with --source DIR", s.SourceTree)
	}
	return req, nil
}

// paramsFrom are the recorded params, typed as recorded (checkRecorded
// has checked them against the declarations); source-url and
// source-commit are filled from the fetched source instead.
func paramsFrom(s *attest.Summary) v1.Params {
	var out v1.Params
	for _, k := range sortedKeys(s.Params) {
		if k == "source-url" || k == "source-commit" {
			continue
		}
		out = append(out, v1.Param{Name: k, Value: paramValue(s.Params[k])})
	}
	return out
}

func paramValue(v any) v1.ParamValue {
	switch v := v.(type) {
	case []any:
		vals := make([]string, len(v))
		for i, e := range v {
			vals[i], _ = e.(string)
		}
		return v1.ParamValue{Type: v1.ParamTypeArray, ArrayVal: vals}
	case map[string]any:
		obj := make(map[string]string, len(v))
		for k, e := range v {
			obj[k], _ = e.(string)
		}
		return v1.ParamValue{Type: v1.ParamTypeObject, ObjectVal: obj}
	}
	str, _ := v.(string)
	return *v1.NewStructuredValues(str)
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

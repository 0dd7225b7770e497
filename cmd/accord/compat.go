package main

// Compatibility shims: the names run.go, consensus.go, rebuild.go,
// recorded.go and diff.go (and their tests) call, now thin wrappers of
// internal/evidence. They go when those files move to internal/build,
// which calls internal/evidence directly.

import (
	"context"
	"io"

	ggcrv1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/spf13/cobra"

	"github.com/accord-build/accord/attest"
	"github.com/accord-build/accord/internal/evidence"
	"github.com/accord-build/accord/internal/store"
	"github.com/accord-build/accord/verify"
)

// trustedBuilder is [evidence.Builder] with the field names the callers use.
type trustedBuilder struct {
	id, name, origin string
	v                signature.Verifier
}

func (b trustedBuilder) builder() evidence.Builder {
	return evidence.Builder{Key: verify.Key{ID: b.id, Verifier: b.v}, Name: b.name, Origin: b.origin}
}

func builderOf(b evidence.Builder) trustedBuilder {
	return trustedBuilder{id: b.ID, name: b.Name, origin: b.Origin, v: b.Verifier}
}

func buildersOf(tb []trustedBuilder) []evidence.Builder {
	var out []evidence.Builder
	for _, b := range tb {
		out = append(out, b.builder())
	}
	return out
}

func trustedOf(bs []evidence.Builder) []trustedBuilder {
	var out []trustedBuilder
	for _, b := range bs {
		out = append(out, builderOf(b))
	}
	return out
}

// trustSources is [evidence.Sources].
type trustSources struct {
	buildersFile  string
	buildersGiven bool
	policy        string
}

func (ts trustSources) load(ctx context.Context) ([]trustedBuilder, []string, error) {
	bs, notes, err := evidence.Sources{BuildersFile: ts.buildersFile, BuildersGiven: ts.buildersGiven, Policy: ts.policy}.Load(ctx)
	return trustedOf(bs), notes, err
}

func only(tb []trustedBuilder, from string) []trustedBuilder {
	return trustedOf(evidence.Only(buildersOf(tb), from))
}

// verifiedProvenance is [evidence.Provenance].
type verifiedProvenance struct {
	sum  *attest.Summary
	stmt *attest.ParsedStatement
}

func trustedProvenance(envs [][]byte, tb []trustedBuilder, sha string) ([]verifiedProvenance, []string) {
	ps, notes := evidence.TrustedProvenance(envs, buildersOf(tb), sha)
	var out []verifiedProvenance
	for _, p := range ps {
		out = append(out, verifiedProvenance{sum: p.Summary, stmt: p.Statement})
	}
	return out, notes
}

func idsOf(tb []trustedBuilder) string { return evidence.IDs(buildersOf(tb)) }

func errNoTrust(what, from string) error { return evidence.NoTrust(what, from) }

// trust is [evidence.Trust].
type trust struct {
	builders []trustedBuilder
	notes    io.Writer
}

func loadTrust(cmd *cobra.Command, ts trustSources) *trust {
	tr := evidence.LoadTrust(cmd.Context(), evidence.Sources{BuildersFile: ts.buildersFile, BuildersGiven: ts.buildersGiven, Policy: ts.policy}, cmd.ErrOrStderr())
	return &trust{builders: trustedOf(tr.Builders), notes: tr.Notes}
}

func (tr *trust) provenanceSummary(ctx context.Context, st store.Store, name string, h ggcrv1.Hash, img ggcrv1.Image, builder string) *attest.Summary {
	if tr == nil {
		return nil
	}
	return (&evidence.Trust{Builders: buildersOf(tr.builders), Notes: tr.notes}).ProvenanceSummary(ctx, st, name, h, img, builder)
}

func resolveArtifact(ctx context.Context, st store.Store, arg string) (string, ggcrv1.Hash, error) {
	return evidence.Resolve(ctx, st, arg)
}

func artifactSHA256(img ggcrv1.Image) (string, error) { return evidence.ArtifactSHA256(img) }

func attestations(ctx context.Context, st store.Store, name string, h ggcrv1.Hash, predicateType string, warn io.Writer) ([][]byte, error) {
	return evidence.Attestations(ctx, st, name, h, predicateType, warn)
}

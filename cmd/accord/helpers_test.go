package main

import (
	"context"
	"io"

	ggcrv1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/accord-build/accord/internal/build"
	"github.com/accord-build/accord/internal/evidence"
	"github.com/accord-build/accord/internal/store"
)

// The names the tests read the store by, from before evidence reading
// moved to internal/evidence.

// consensusReport is the JSON output of 'accord run --builders N'.
type consensusReport = build.ConsensusReport

// releasedSuffix names the attachment that marks an artifact released.
const releasedSuffix = build.ReleasedSuffix

func resolveArtifact(ctx context.Context, st store.Store, arg string) (string, ggcrv1.Hash, error) {
	return evidence.Resolve(ctx, st, arg)
}

func attestations(ctx context.Context, st store.Store, name string, h ggcrv1.Hash, predicateType string, warn io.Writer) ([][]byte, error) {
	return evidence.Attestations(ctx, st, name, h, predicateType, warn)
}

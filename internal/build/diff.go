package build

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/accord-build/accord/attest"
	"github.com/accord-build/accord/internal/divergence"
	"github.com/accord-build/accord/internal/evidence"
	"github.com/accord-build/accord/internal/store"
)

// DiffRequest asks how two artifacts differ.
type DiffRequest struct {
	// A and B are stored artifacts (NAME, NAME@sha256:...) or files.
	A, B string
	// Store opens the store; called only when A or B is not a file.
	Store func() (store.Store, error)
	// Trust is whose provenance gives the hints (build paths, times,
	// inputs); nil uses none (with a note).
	Trust *evidence.Trust
	// Signer, when set, gives the key that signs a report of differing
	// artifacts as SignerID, to store it beside both (which must be
	// stored ones); it is not called for identical artifacts.
	Signer   func() (*attest.Signer, error)
	SignerID string
	// Notes receives "note: ..." lines; may be nil.
	Notes io.Writer
}

// Diff unpacks both artifacts, compares them and classifies every
// difference.
func Diff(ctx context.Context, r DiffRequest) (*divergence.Report, error) {
	notes := r.Notes
	if notes == nil {
		notes = io.Discard
	}
	var st store.Store
	var sides [2]Side
	var trees [2]*divergence.Tree
	var sums [2]*attest.Summary
	// Two files are compared under one name (A's), so that their contents
	// line up whatever the files are called.
	root := filepath.Base(r.A)
	for i, arg := range []string{r.A, r.B} {
		if data, err := os.ReadFile(arg); err == nil {
			sum := sha256.Sum256(data)
			sides[i] = Side{Side: divergence.Side{Name: arg, Digest: "sha256:" + hex.EncodeToString(sum[:])}}
			if trees[i], err = divergence.FromFile(root, data); err != nil {
				return nil, inputErr(err)
			}
			continue
		}
		if st == nil {
			s, err := r.Store()
			if err != nil {
				return nil, inputErr(err)
			}
			st = s
		}
		if r.Trust == nil {
			fmt.Fprintln(notes, "note: no --policy or --builders-file: the artifacts' provenance is not used (build paths, times and inputs unknown)")
			r.Trust = &evidence.Trust{Notes: notes}
		}
		side, tree, sum, err := storedSide(ctx, st, arg, r.Trust)
		if err != nil {
			return nil, inputErr(fmt.Errorf("%s is neither a file nor an artifact in %s: %w", arg, st, err))
		}
		sides[i], trees[i], sums[i] = side, tree, sum
	}
	rep := divergence.New(sides[0].Side, sides[1].Side, trees[0], trees[1], HintsFrom(sums[0], sums[1]))
	if rep.Identical || len(rep.Differences) == 0 {
		rep.Identical = rep.Identical || sides[0].Digest == sides[1].Digest
	} else if os.Getenv("ACCORD_NO_DIFFOSCOPE") == "" {
		var err error
		if rep.Diffoscope, err = divergence.RunDiffoscope(ctx, trees[0], trees[1]); err != nil {
			return nil, err
		}
	}
	if r.Signer != nil && !rep.Identical {
		if sides[0].Stored == "" || sides[1].Stored == "" {
			return nil, inputErr(fmt.Errorf("--key stores the report beside both artifacts: give stored artifacts, not files"))
		}
		signer, err := r.Signer()
		if err != nil {
			return nil, inputErr(err)
		}
		if err := StoreDivergence(ctx, st, sides[0], sides[1], rep, signer, r.SignerID); err != nil {
			return nil, err
		}
	}
	return rep, nil
}

// storedSide resolves and unpacks a stored artifact; its digest is the
// subject digest (a file artifact's is the file's). Its builder and
// summary come from the provenance tr trusts, if any.
func storedSide(ctx context.Context, st store.Store, arg string, tr *evidence.Trust) (Side, *divergence.Tree, *attest.Summary, error) {
	name, h, err := evidence.Resolve(ctx, st, arg)
	if err != nil {
		return Side{}, nil, nil, err
	}
	img, err := st.Image(ctx, h)
	if err != nil {
		return Side{}, nil, nil, err
	}
	digest := h.String()
	if m, err := img.Manifest(); err == nil && string(m.Config.MediaType) == divergence.FileArtifactType && len(m.Layers) == 1 {
		digest = m.Layers[0].Digest.String()
	}
	tree, err := divergence.FromImage(ctx, name, img)
	if err != nil {
		return Side{}, nil, nil, err
	}
	sum := tr.ProvenanceSummary(ctx, st, name, h, img, "")
	side := Side{Side: divergence.Side{Name: strings.TrimSuffix(name, "@"+h.String()), Digest: digest}, Stored: h.String()}
	if sum != nil {
		side.Builder = sum.BuilderID
	}
	return side, tree, sum, nil
}

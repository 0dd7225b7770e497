package build

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path"
	"strings"
	"sync"
	"time"

	ggcrv1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/accord-build/accord/attest"
	"github.com/accord-build/accord/internal/divergence"
	"github.com/accord-build/accord/internal/store"
)

// Trust decides whose stored provenance to believe.
type Trust interface {
	// ProvenanceSummary is the summary of the provenance stored for the
	// artifact name@h (img) that a trusted builder signed, that builder
	// when builder is not empty; nil when there is none.
	ProvenanceSummary(ctx context.Context, st store.Store, name string, h ggcrv1.Hash, img ggcrv1.Image, builder string) *attest.Summary
}

// Side is one stored artifact of a comparison: its subject and where the
// store keeps it (Stored, a manifest digest; empty for a file).
type Side struct {
	divergence.Side
	Stored string
}

// SideOf names one artifact of a comparison.
func SideOf(name, stored, digest, builder string) Side {
	return Side{Side: divergence.Side{Name: name, Digest: digest, Builder: builder}, Stored: stored}
}

// Explain builds, signs and stores the divergence report of a and b (both
// in st); signer may be nil for an unsigned report. roots are the builders'
// workspace roots when known from their configuration; more hints come
// from the artifacts' provenance that tr's builders signed. A comparison
// that fails still gives a report (with its error): the builds disagree
// either way.
func Explain(ctx context.Context, st store.Store, a, b Side, signer *attest.Signer, signerID string, roots []string, tr Trust) *divergence.Report {
	incomplete := func(err error) *divergence.Report {
		return &divergence.Report{A: a.Side, B: b.Side, Causes: []divergence.Cause{}, Differences: []divergence.Difference{}, Error: err.Error()}
	}
	ta, sa, err := unpackStored(ctx, st, a, tr)
	if err != nil {
		return incomplete(err)
	}
	tb, sb, err := unpackStored(ctx, st, b, tr)
	if err != nil {
		return incomplete(err)
	}
	h := HintsFrom(sa, sb)
	h.BuildPaths = append(h.BuildPaths, roots...)
	r := divergence.New(a.Side, b.Side, ta, tb, h)
	if os.Getenv("ACCORD_NO_DIFFOSCOPE") == "" {
		d, err := divergence.RunDiffoscope(ctx, ta, tb)
		if err != nil {
			r.Error = "diffoscope: " + err.Error()
		}
		r.Diffoscope = d
	}
	if signer != nil {
		if err := StoreDivergence(ctx, st, a, b, r, signer, signerID); err != nil {
			r.Error = strings.TrimPrefix(r.Error+"; ", "; ") + "storing the signed report: " + err.Error()
		}
	}
	return r
}

// unpackStored unpacks a stored artifact and reads its provenance summary
// (nil when none that tr trusts).
func unpackStored(ctx context.Context, st store.Store, s Side, tr Trust) (*divergence.Tree, *attest.Summary, error) {
	h, err := ggcrv1.NewHash(s.Stored)
	if err != nil {
		return nil, nil, err
	}
	img, err := st.Image(ctx, h)
	if err != nil {
		return nil, nil, fmt.Errorf("%s@%s: %w", s.Name, s.Stored, err)
	}
	t, err := divergence.FromImage(ctx, s.Name, img)
	if err != nil {
		return nil, nil, err
	}
	if tr == nil {
		return t, nil, nil
	}
	return t, tr.ProvenanceSummary(ctx, st, s.Name, h, img, s.Builder), nil
}

// HintsFrom takes the builders' workspace roots and dependencies from
// their provenance summaries: only provenance whose signature verified
// may be given, as a root or a dependency could make a real change look
// benign.
func HintsFrom(sums ...*attest.Summary) divergence.Hints {
	var h divergence.Hints
	for i, s := range sums {
		if s == nil {
			continue
		}
		if v, ok := s.Internal["variation"].(map[string]any); ok {
			// Only a clean absolute path other than / can name a build
			// path: anything else could make real changes look benign.
			if root, ok := v["workspaceRoot"].(string); ok && path.IsAbs(root) && path.Clean(root) == root && root != "/" {
				h.BuildPaths = append(h.BuildPaths, root)
			}
		}
		for _, t := range []time.Time{s.Started, s.Finished} {
			if !t.IsZero() {
				h.Times = append(h.Times, t.Unix())
			}
		}
		if s.SourceDateEpoch > 0 {
			h.Times = append(h.Times, s.SourceDateEpoch)
		}
		if i == 0 {
			h.DependenciesA = s.Dependencies
		} else {
			h.DependenciesB = s.Dependencies
		}
	}
	if len(h.BuildPaths) == 0 {
		h.BuildPaths = []string{"/workspace"}
	}
	return h
}

// StoreDivergence signs the report as an in-toto statement about both
// artifacts and attaches it to both.
func StoreDivergence(ctx context.Context, st store.Store, a, b Side, r *divergence.Report, signer *attest.Signer, signerID string) error {
	subjects := []attest.Subject{
		{Name: a.Name, SHA256: strings.TrimPrefix(a.Digest, "sha256:")},
		{Name: b.Name + " (" + b.Builder + ")", SHA256: strings.TrimPrefix(b.Digest, "sha256:")},
	}
	stmt, err := attest.Statement(divergence.PredicateType, subjects, r)
	if err != nil {
		return err
	}
	env, err := attest.SignEnvelope(ctx, signer, attest.PayloadType, stmt)
	if err != nil {
		return err
	}
	blob, err := json.Marshal(env)
	if err != nil {
		return err
	}
	for _, s := range []Side{a, b} {
		h, err := ggcrv1.NewHash(s.Stored)
		if err != nil {
			return err
		}
		other := b.Digest
		if s.Digest == b.Digest {
			other = a.Digest
		}
		layer := store.Layer{MediaType: store.DSSEMediaType, Blob: blob, Annotations: map[string]string{
			store.SignatureAnnotation: "", store.PredicateTypeAnnotation: divergence.PredicateType, divergenceWith: other, "accord.dev/reported-by": signerID,
		}}
		ref := store.AttachmentRef(store.Name(st, s.Name), h, store.AttSuffix)
		if _, err := store.Attach(ctx, st, ref, []store.Layer{layer}, func(old map[string]string) bool { return old[divergenceWith] == other }); err != nil {
			return err
		}
	}
	return nil
}

// divergenceWith annotates a divergence report with the other digest.
const divergenceWith = "accord.dev/divergence-with"

// ReleasedSuffix names the attachment that marks an artifact released.
const ReleasedSuffix = "released"

// markReleased records, beside the artifact, the builders that agreed on it.
func markReleased(ctx context.Context, st store.Store, name, stored string, agreeing []string) error {
	h, err := ggcrv1.NewHash(stored)
	if err != nil {
		return err
	}
	body, err := json.Marshal(map[string]any{"builders": agreeing})
	if err != nil {
		return err
	}
	ref := store.AttachmentRef(store.Name(st, name), h, ReleasedSuffix)
	_, err = store.Attach(ctx, st, ref, []store.Layer{{MediaType: "application/vnd.accord.consensus.v1+json", Blob: body}}, func(map[string]string) bool { return true })
	return err
}

// LazyTrust is a [Trust] loaded on first use: most runs agree and never
// need it.
type LazyTrust struct {
	// Load returns the trust; called at most once.
	Load func() Trust
	once sync.Once
	tr   Trust
}

// ProvenanceSummary loads the trust, then asks it.
func (l *LazyTrust) ProvenanceSummary(ctx context.Context, st store.Store, name string, h ggcrv1.Hash, img ggcrv1.Image, builder string) *attest.Summary {
	l.once.Do(func() { l.tr = l.Load() })
	if l.tr == nil {
		return nil
	}
	return l.tr.ProvenanceSummary(ctx, st, name, h, img, builder)
}

// Package proof records what a build proves: for every artifact a DSSE-signed
// SLSA v1 provenance and SPDX SBOM (cosign's .att), a cosign signature for
// images (.sig), and the signed in-toto link of every step (.links), all
// beside the artifact in the store.
package proof

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	ggcrv1 "github.com/google/go-containerregistry/pkg/v1"
	spdx "github.com/spdx/tools-golang/spdx/v2/v2_3"
	v1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"

	"github.com/accord-build/accord/attest"
	"github.com/accord-build/accord/internal/artifact"
	"github.com/accord-build/accord/internal/engine"
	"github.com/accord-build/accord/internal/store"
	"github.com/accord-build/accord/pipelines"
	"github.com/accord-build/accord/sbom"
)

// Input is one finished build.
type Input struct {
	RunID    string
	Pipeline *pipelines.Resolved
	Params   v1.Params
	Source   engine.Source
	// SourceTree is the dirHash1 of the source tree.
	SourceTree string
	Result     *engine.Result
	Artifacts  []artifact.Artifact
	// Internal are builder-specific parameters (runtime, rootless).
	Internal          map[string]any
	Started, Finished time.Time
}

// Options say who signs and where proof goes.
type Options struct {
	Signer    *attest.Signer
	BuilderID string
	Store     store.Store
	Logger    *slog.Logger
}

// Recorded is what was written for one artifact.
type Recorded struct {
	Artifact    string `json:"artifact"`
	Digest      string `json:"digest"`
	Attestation string `json:"attestations"`
	Signature   string `json:"signature,omitempty"`
	Links       string `json:"links"`
	SBOM        bool   `json:"sbom"`
	// SBOMDigest is the sha256 of the SBOM statement, for builders to
	// compare ("" without an SBOM).
	SBOMDigest string `json:"-"`
	// Inputs are the resolved dependencies the provenance records (name,
	// else URI, to its digest), for builders to compare.
	Inputs map[string]string `json:"-"`
}

// Record signs and stores the build's proof.
func Record(ctx context.Context, in *Input, o Options) ([]Recorded, error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	// The links bundle comes first: the provenance names it by digest.
	links, err := signLinks(ctx, in.Result, o)
	if err != nil {
		return nil, fmt.Errorf("signing step links: %w", err)
	}
	b := &attest.Build{
		SourceURI: in.Source.URI, SourceRef: in.Source.Ref, SourceCommit: in.Source.Commit, SourceTree: in.SourceTree,
		SourceDateEpoch: in.Source.DateEpoch,
		Pipeline:        in.Pipeline.Pipeline.Name, PipelineDigest: in.Pipeline.Digest,
		Params:       paramsMap(in.Params),
		Dependencies: dependencies(in),
		Internal:     in.Internal,
		Run: attest.Run{BuilderID: o.BuilderID, InvocationID: in.RunID, Started: in.Started, Finished: in.Finished,
			LinksSHA256: attest.SHA256Hex(links[0].Blob)},
	}
	var out []Recorded
	for _, a := range in.Artifacts {
		r, err := recordArtifact(ctx, in, o, b, a, links)
		if err != nil {
			return nil, fmt.Errorf("recording proof for %s: %w", a.Name, err)
		}
		out = append(out, r)
	}
	return out, nil
}

func recordArtifact(ctx context.Context, in *Input, o Options, b *attest.Build, a artifact.Artifact, links []store.Layer) (Recorded, error) {
	sub := attest.Subject{Name: a.Name, SHA256: strings.TrimPrefix(a.Digest, "sha256:")}
	prov, err := attest.Provenance(b, []attest.Subject{sub})
	if err != nil {
		return Recorded{}, err
	}
	layers := []store.Layer{}
	env, err := envelopeLayer(ctx, o, prov, attest.SLSAProvenanceV1)
	if err != nil {
		return Recorded{}, err
	}
	layers = append(layers, env)
	sbomStmt, err := sbomStatement(ctx, o.Store, a, sub, in.Source.DateEpoch)
	if err != nil {
		return Recorded{}, err
	}
	if sbomStmt != nil {
		env, err := envelopeLayer(ctx, o, sbomStmt, attest.SPDXDocument)
		if err != nil {
			return Recorded{}, err
		}
		layers = append(layers, env)
	}
	stored, err := ggcrv1.NewHash(a.Stored)
	if err != nil {
		return Recorded{}, err
	}
	repo := store.Name(o.Store, a.Name)
	sameBuilder := func(old map[string]string) bool { return old[store.BuilderAnnotation] == o.BuilderID }
	rec := Recorded{Artifact: a.Name, Digest: a.Digest, SBOM: sbomStmt != nil, Inputs: attest.DependencyDigests(b.Dependencies)}
	if sbomStmt != nil {
		rec.SBOMDigest = "sha256:" + attest.SHA256Hex(sbomStmt)
	}
	attRef := store.AttachmentRef(repo, stored, store.AttSuffix)
	if _, err := store.Attach(ctx, o.Store, attRef, layers, sameBuilder); err != nil {
		return rec, err
	}
	rec.Attestation = attRef
	linksRef := store.AttachmentRef(repo, stored, store.LinksSuffix)
	if _, err := store.Attach(ctx, o.Store, linksRef, links, sameBuilder); err != nil {
		return rec, err
	}
	rec.Links = linksRef
	if a.Kind == engine.Image {
		payload, err := store.SimpleSigning(repo, stored)
		if err != nil {
			return rec, err
		}
		sig, err := o.Signer.Sign(ctx, payload)
		if err != nil {
			return rec, err
		}
		sigRef := store.AttachmentRef(repo, stored, store.SigSuffix)
		l := store.Layer{MediaType: store.SimpleSigningMediaType, Blob: payload, Annotations: map[string]string{
			store.SignatureAnnotation: b64(sig), store.BuilderAnnotation: o.BuilderID,
		}}
		if _, err := store.Attach(ctx, o.Store, sigRef, []store.Layer{l}, sameBuilder); err != nil {
			return rec, err
		}
		rec.Signature = sigRef
	}
	return rec, nil
}

func envelopeLayer(ctx context.Context, o Options, statement []byte, predicateType string) (store.Layer, error) {
	env, err := attest.SignEnvelope(ctx, o.Signer, attest.PayloadType, statement)
	if err != nil {
		return store.Layer{}, err
	}
	blob, err := json.Marshal(env)
	if err != nil {
		return store.Layer{}, err
	}
	return store.Layer{MediaType: store.DSSEMediaType, Blob: blob, Annotations: map[string]string{
		store.SignatureAnnotation: "", store.PredicateTypeAnnotation: predicateType, store.BuilderAnnotation: o.BuilderID,
	}}, nil
}

// sbomStatement describes a Go binary or an image; other files get none.
func sbomStatement(ctx context.Context, st store.Store, a artifact.Artifact, sub attest.Subject, epoch int64) ([]byte, error) {
	h, err := ggcrv1.NewHash(a.Stored)
	if err != nil {
		return nil, err
	}
	img, err := st.Image(ctx, h)
	if err != nil {
		return nil, err
	}
	opts := sbom.Options{Created: time.Unix(epoch, 0)}
	var doc *spdx.Document
	if a.Kind == engine.Image {
		d, err := sbom.FromImage(a.Name, img, opts)
		if err != nil {
			return nil, err
		}
		doc = d
	} else {
		ls, err := img.Layers()
		if err != nil || len(ls) != 1 {
			return nil, fmt.Errorf("file artifact %s: want one layer", a.Name)
		}
		rc, err := ls[0].Compressed()
		if err != nil {
			return nil, err
		}
		defer rc.Close()
		bin, err := readAll(rc)
		if err != nil {
			return nil, err
		}
		// The subject's digest is the file's SHA-256, hashed once when the
		// artifact was collected: the SBOM takes it instead of hashing again.
		opts.BinarySHA256 = sub.SHA256
		d, err := sbom.FromGoBinary(a.Name, bin, opts)
		if err != nil {
			return nil, nil // not a Go binary: no SBOM we can vouch for
		}
		doc = d
	}
	j, err := sbom.JSON(doc)
	if err != nil {
		return nil, err
	}
	var pred any
	if err := json.Unmarshal(j, &pred); err != nil {
		return nil, err
	}
	return attest.Statement(attest.SPDXDocument, []attest.Subject{sub}, pred)
}

// signLinks makes and signs the in-toto link of every step that ran, and
// returns them as one links bundle layer: its blob is stored as it is, so
// its SHA-256 is the digest the provenance names.
func signLinks(ctx context.Context, res *engine.Result, o Options) ([]store.Layer, error) {
	files := map[string][]byte{}
	for _, t := range res.Tasks {
		for _, s := range t.Steps {
			if s.Status == engine.Skipped || s.Products == nil {
				continue
			}
			name := attest.StepName(t.Name, s.Name)
			mb, err := attest.SignLink(ctx, o.Signer, attest.LinkInput{
				Name: name, Command: s.Command, Materials: s.Materials, Products: s.Products,
				ExitCode: s.ExitCode, StdoutSHA256: s.StdoutSHA256, StderrSHA256: s.StderrSHA256,
			})
			if err != nil {
				return nil, err
			}
			blob, err := json.Marshal(mb)
			if err != nil {
				return nil, err
			}
			files[attest.LinkFileName(name, o.Signer.KeyID())] = blob
		}
	}
	bundle, err := attest.LinksBundle(files)
	if err != nil {
		return nil, err
	}
	return []store.Layer{{MediaType: store.LinksBundleMediaType, Blob: bundle, Annotations: map[string]string{
		store.BuilderAnnotation: o.BuilderID, "org.opencontainers.image.title": "links.tar",
	}}}, nil
}

func paramsMap(ps v1.Params) map[string]any {
	m := map[string]any{}
	for _, p := range ps {
		switch p.Value.Type {
		case v1.ParamTypeArray:
			m[p.Name] = p.Value.ArrayVal
		case v1.ParamTypeObject:
			m[p.Name] = p.Value.ObjectVal
		default:
			m[p.Name] = p.Value.StringVal
		}
	}
	return m
}

// dependencies: every catalog definition, every step image, and every Go
// module fetched by a task with network (from the module cache's .ziphash
// files, in dirHash1 form).
func dependencies(in *Input) []attest.Dependency {
	var deps []attest.Dependency
	images := map[string]bool{}
	for _, d := range in.Pipeline.Definitions() {
		deps = append(deps, attest.Dependency{
			Name:   fmt.Sprintf("%s#%s/%s", d.File, d.Kind, d.Name),
			Digest: map[string]string{"sha256": strings.TrimPrefix(d.Digest, "sha256:")},
		})
		for _, img := range pipelines.StepImages(d) {
			images[img] = true
		}
	}
	var imgs []string
	for img := range images {
		imgs = append(imgs, img)
	}
	sort.Strings(imgs)
	for _, img := range imgs {
		if dg, err := name.NewDigest(img); err == nil {
			deps = append(deps, attest.Dependency{Name: "step image", URI: "oci://" + dg.Context().Name(),
				Digest: map[string]string{"sha256": strings.TrimPrefix(dg.DigestStr(), "sha256:")}})
		}
	}
	deps = append(deps, platformDependencies(in)...)
	for _, t := range in.Result.Tasks {
		if !t.Network {
			continue
		}
		for _, d := range t.MountPaths() {
			if fsys := t.Workspaces[d]; fsys != nil {
				deps = append(deps, goModules(fsys)...)
			}
		}
	}
	return deps
}

// goModules lists modules in a Go module cache, the workspace fsys, by
// their cache/download/<path>/@v/<version>.ziphash files. The cache is a
// workspace a step wrote: it is read through the FS the engine gave (never
// through a link out of the workspace), no link in it is followed, and
// only small regular files are read (a FIFO would block).
func goModules(fsys fs.FS) []attest.Dependency {
	base := path.Join("cache", "download")
	var out []attest.Dependency
	_ = fs.WalkDir(fsys, base, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() || !strings.HasSuffix(p, ".ziphash") {
			return nil
		}
		modPath, file, ok := strings.Cut(strings.TrimPrefix(p, base+"/"), "/@v/")
		if !ok {
			return nil
		}
		b, err := readZiphash(fsys, p)
		if err != nil {
			return nil
		}
		hex := sbom.H1ToHex(strings.TrimSpace(string(b)))
		if hex == "" {
			return nil
		}
		version := strings.TrimSuffix(file, ".ziphash")
		out = append(out, attest.Dependency{Name: "go module", URI: "pkg:golang/" + unescapeModPath(modPath) + "@" + version,
			Digest: map[string]string{"dirHash1": hex}})
		return nil
	})
	return out
}

// readZiphash reads a .ziphash file: a regular file of at most 1 KiB.
func readZiphash(fsys fs.FS, p string) ([]byte, error) {
	f, err := fsys.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if st, err := f.Stat(); err != nil || !st.Mode().IsRegular() || st.Size() > 1024 {
		return nil, fmt.Errorf("%s is not a small regular file", p)
	}
	return io.ReadAll(io.LimitReader(f, 1024))
}

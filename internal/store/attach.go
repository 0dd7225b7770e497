package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"sync"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// cosign's conventions for what is stored beside an artifact.
const (
	// SignatureAnnotation holds a layer's base64 signature ("" for DSSE).
	SignatureAnnotation = "dev.cosignproject.cosign/signature"
	// SimpleSigningMediaType is the layer type of an image signature.
	SimpleSigningMediaType types.MediaType = "application/vnd.dev.cosign.simplesigning.v1+json"
	// DSSEMediaType is the layer type of an attestation.
	DSSEMediaType types.MediaType = "application/vnd.dsse.envelope.v1+json"
	// PredicateTypeAnnotation names an attestation's predicate type.
	PredicateTypeAnnotation = "predicateType"
	// BuilderAnnotation names the builder that made a layer (accord's).
	BuilderAnnotation = "accord.dev/builder"
	// StepAnnotation names the in-toto step of a link layer (accord's).
	StepAnnotation = "accord.dev/step"
	// LinkMediaType is the layer type of an in-toto link (accord's).
	LinkMediaType types.MediaType = "application/vnd.in-toto.link+json"
	// LinksBundleMediaType is a tar of one builder's in-toto link files
	// (accord's): one layer per builder keeps verification to one fetch
	// per builder.
	LinksBundleMediaType types.MediaType = "application/vnd.accord.intoto-links.v1+tar"
)

// Suffixes of the tags beside an artifact: sha256-<hex>.<suffix>.
const (
	SigSuffix   = "sig"
	AttSuffix   = "att"
	LinksSuffix = "links"
)

// ErrNotFound means nothing is stored under a reference.
var ErrNotFound = errors.New("not found in store")

// Layer is one signature, attestation or link to attach.
type Layer struct {
	MediaType   types.MediaType
	Blob        []byte
	Annotations map[string]string
}

// Lookup returns the image stored under ref, or ErrNotFound.
func (l *Layout) Lookup(_ context.Context, ref string) (v1.Image, error) {
	h, err := l.Resolve(ref)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", ref, ErrNotFound)
	}
	return layout.Path(l.dir).Image(h)
}

// Lookup returns the image tagged with ref's tag in the repository ref
// names (see [Name]), or ErrNotFound.
func (r *Registry) Lookup(ctx context.Context, ref string) (v1.Image, error) {
	tag := tagOf(ref)
	if tag == "" {
		return nil, fmt.Errorf("%s: no tag: %w", ref, ErrNotFound)
	}
	repo, err := r.route(ref)
	if err != nil {
		return nil, err
	}
	img, err := remote.Image(repo.Tag(tag), r.readOptions(ctx)...)
	var terr *transport.Error
	if errors.As(err, &terr) && terr.StatusCode == 404 {
		return nil, fmt.Errorf("%s: %w", ref, ErrNotFound)
	}
	return img, err
}

// Repository returns the name artifacts of this store are signed under
// (cosign's docker-reference): the registry repository.
func (r *Registry) Repository() string { return r.repo.Name() }

// AttachmentRef is the reference of what is attached to digest h of the
// artifact named repo: repo:sha256-<hex>.<suffix>. For a registry store
// the repository part is routed as an artifact name is (see [Name]): give
// it what [Name] returned.
func AttachmentRef(repo string, h v1.Hash, suffix string) string {
	return fmt.Sprintf("%s:%s-%s.%s", repo, h.Algorithm, h.Hex, suffix)
}

// Lookuper finds stored images by reference.
type Lookuper interface {
	Lookup(ctx context.Context, ref string) (v1.Image, error)
}

// Attach adds layers to the manifest stored under ref (cosign's layout:
// an empty config and one layer per signature or envelope), creating it if
// needed. An existing layer is replaced when replace returns true for its
// annotations, so a re-run does not pile up copies.
//
// Attach is safe for concurrent use: attaching to one ref from several
// goroutines or processes loses no layer (see the package doc for what
// each store guarantees).
func Attach(ctx context.Context, st Store, ref string, layers []Layer, replace func(old map[string]string) bool) (v1.Hash, error) {
	if a, ok := st.(attacher); ok {
		return a.attach(ctx, ref, layers, replace)
	}
	unlock := attachLocks.lock(st.String() + " " + ref)
	defer unlock()
	var old v1.Image
	if lk, ok := st.(Lookuper); ok {
		img, err := lookupAttachment(ctx, lk, ref)
		if err != nil {
			return v1.Hash{}, err
		}
		old = img
	}
	img, err := composeAttachment(old, layers, replace, nil)
	if err != nil {
		return v1.Hash{}, fmt.Errorf("attaching to %s: %w", ref, err)
	}
	return st.Put(ctx, ref, img)
}

// attacher is a store that makes [Attach]'s read, modify and write safe
// against other writers by itself.
type attacher interface {
	attach(ctx context.Context, ref string, layers []Layer, replace func(old map[string]string) bool) (v1.Hash, error)
}

// attachLocks serializes [Attach] on stores that are no [attacher], by
// store and ref, within this process.
var attachLocks keyedMutex

// lookupAttachment returns what is stored under ref, or nil when nothing is.
func lookupAttachment(ctx context.Context, lk Lookuper, ref string) (v1.Image, error) {
	img, err := lk.Lookup(ctx, ref)
	switch {
	case errors.Is(err, ErrNotFound):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("reading %s: %w", ref, err)
	}
	return img, nil
}

// composeAttachment returns the attachment manifest: the layers of old (nil:
// none) for which replace is false, then layers; ann are the manifest's
// annotations (nil: none).
func composeAttachment(old v1.Image, layers []Layer, replace func(old map[string]string) bool, ann map[string]string) (v1.Image, error) {
	var adds []mutate.Addendum
	if old != nil {
		kept, err := keptLayers(old, replace)
		if err != nil {
			return nil, err
		}
		adds = kept
	}
	for _, l := range layers {
		adds = append(adds, addendum(l))
	}
	return attachmentImage(adds, ann)
}

// keptLayers returns the layers of img for which replace is false.
func keptLayers(img v1.Image, replace func(old map[string]string) bool) ([]mutate.Addendum, error) {
	m, err := img.Manifest()
	if err != nil {
		return nil, fmt.Errorf("manifest: %w", err)
	}
	ls, err := img.Layers()
	if err != nil {
		return nil, fmt.Errorf("layers: %w", err)
	}
	if len(ls) != len(m.Layers) {
		return nil, fmt.Errorf("manifest names %d layers, the image has %d", len(m.Layers), len(ls))
	}
	var kept []mutate.Addendum
	for i, desc := range m.Layers {
		if replace != nil && replace(desc.Annotations) {
			continue
		}
		kept = append(kept, mutate.Addendum{Layer: ls[i], Annotations: desc.Annotations})
	}
	return kept, nil
}

func addendum(l Layer) mutate.Addendum {
	return mutate.Addendum{Layer: static.NewLayer(l.Blob, l.MediaType), Annotations: l.Annotations}
}

// attachmentImage is cosign's attachment manifest: an empty OCI config and
// adds, with manifest annotations ann (nil: none).
func attachmentImage(adds []mutate.Addendum, ann map[string]string) (v1.Image, error) {
	base := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	if ann != nil {
		base = mutate.Annotations(base, ann).(v1.Image)
	}
	return mutate.Append(base, adds...)
}

// SimpleSigning is cosign's signature payload for an image digest.
func SimpleSigning(dockerReference string, h v1.Hash) ([]byte, error) {
	type identity struct {
		DockerReference string `json:"docker-reference"`
	}
	type image struct {
		DockerManifestDigest string `json:"docker-manifest-digest"`
	}
	type critical struct {
		Identity identity `json:"identity"`
		Image    image    `json:"image"`
		Type     string   `json:"type"`
	}
	return json.Marshal(struct {
		Critical critical `json:"critical"`
		Optional any      `json:"optional"`
	}{critical{identity{dockerReference}, image{h.String()}, "cosign container image signature"}, nil})
}

// MaxLayerSize bounds one signature, attestation or links layer read by
// [Layers].
const MaxLayerSize = 64 << 20

// LayerError is a layer [Layers] could not use: unreadable, over
// [MaxLayerSize], or not the bytes its descriptor names.
type LayerError struct {
	Ref    string
	Index  int // 1-based
	Digest v1.Hash
	Err    error
}

func (e *LayerError) Error() string {
	return fmt.Sprintf("%s layer %d (%s): %v", e.Ref, e.Index, e.Digest, e.Err)
}

func (e *LayerError) Unwrap() error { return e.Err }

// Layers returns the layers stored under ref with their annotations. The
// limits apply per layer: a layer that cannot be used is left out and
// named by a [*LayerError] in the returned error, and the layers that
// could be read are returned with it. Without layers the error is
// [ErrNotFound] (nothing stored under ref) or the manifest's problem.
func Layers(ctx context.Context, st Store, ref string) ([]Layer, error) {
	lk, ok := st.(Lookuper)
	if !ok {
		return nil, fmt.Errorf("store %s cannot look up %s", st, ref)
	}
	img, err := lk.Lookup(ctx, ref)
	if err != nil {
		return nil, err
	}
	m, err := img.Manifest()
	if err != nil {
		return nil, fmt.Errorf("%s: manifest: %w", ref, err)
	}
	// Blobs are fetched concurrently: from a registry each is a round trip.
	got := make([]*Layer, len(m.Layers))
	errs := make([]error, len(m.Layers))
	sem := make(chan struct{}, 8)
	var wg sync.WaitGroup
	for i, d := range m.Layers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			b, err := readLayer(img, d)
			if err != nil {
				errs[i] = &LayerError{Ref: ref, Index: i + 1, Digest: d.Digest, Err: err}
				return
			}
			got[i] = &Layer{MediaType: d.MediaType, Blob: b, Annotations: d.Annotations}
		}()
	}
	wg.Wait()
	var out []Layer
	for _, l := range got {
		if l != nil {
			out = append(out, *l)
		}
	}
	return out, errors.Join(errs...)
}

// readLayer reads the blob d describes, refusing it before reading when
// its descriptor says it is over [MaxLayerSize], and after reading when it
// is not d.Size bytes with digest d.Digest.
func readLayer(img v1.Image, d v1.Descriptor) ([]byte, error) {
	if d.Size > MaxLayerSize || d.Size < 0 {
		return nil, fmt.Errorf("size %d is over the %d-byte limit of a layer beside an artifact", d.Size, MaxLayerSize)
	}
	l, err := img.LayerByDigest(d.Digest)
	if err != nil {
		return nil, err
	}
	rc, err := l.Compressed()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	b, err := readAllLimit(rc, d.Size)
	if err != nil {
		return nil, err
	}
	if int64(len(b)) != d.Size {
		return nil, fmt.Errorf("%d bytes, its descriptor says %d", len(b), d.Size)
	}
	if got := digestOf(b); got != d.Digest.String() {
		return nil, fmt.Errorf("content has digest %s", got)
	}
	return b, nil
}

// Name returns the repository part of an artifact name for attachments
// and signatures (cosign's docker-reference). For a registry store it is
// the repository the artifact is stored in: the one its name gives, in the
// store's registry or one it allows ([WithAllowedRegistries]); the store's
// own for a name without a registry, under [AccordNamespace], or in a
// registry it may not push to (which [CheckName] refuses).
func Name(st Store, artifactName string) string {
	if r, ok := st.(*Registry); ok {
		if repo, err := r.route(artifactName); err == nil {
			return repo.Name()
		}
		return r.Repository()
	}
	if _, err := name.NewRepository(artifactName); err == nil {
		return artifactName
	}
	return "accord.dev/artifacts/" + filepath.Base(artifactName)
}

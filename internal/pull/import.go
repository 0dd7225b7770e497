package pull

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/accord-build/accord/internal/store"
)

// containerdNameAnnotation is the full image name docker save and
// containerd write beside an index entry.
const containerdNameAnnotation = "io.containerd.image.name"

// imported is one image of a file, verified, waiting to be stored.
type imported struct {
	res   *Result
	repo  string // the name to store it under; may be ""
	img   v1.Image
	index []byte // the index that pinned it, if any
	mt    types.MediaType
}

// Import stores the images of file in st: an OCI image layout (a
// directory, or a tar of one, optionally gzipped, as skopeo's oci-archive
// and docker save of Docker 25 and later write), or a docker save tarball
// (manifest.json). An index resolves to the puller's platform. Every
// blob is checked against its digest before anything is stored, so a
// failed import leaves st as it was.
//
// A docker save tarball without an OCI layout keeps no manifest: accord
// gives its image a manifest of its own (uncompressed layers, the
// tarball's config as it is), so its digest is the same for the same
// tarball on every machine, but not the digest a registry serves.
func (p *Puller) Import(ctx context.Context, file string, st store.Store) ([]Result, error) {
	fail := func(err error, fix string) error {
		var pe *Error
		if errors.As(err, &pe) {
			return pe
		}
		if isMismatch(err) {
			return &Error{Image: file, Kind: DigestMismatch, Err: err, Fix: "the file is damaged or was modified after it was written: export the image again from a source you trust"}
		}
		return &Error{Image: file, Kind: Failed, Err: err, Fix: fix}
	}
	info, err := os.Stat(file)
	if err != nil {
		return nil, fail(err, "name an OCI layout directory or a tarball (docker save, skopeo copy ... oci-archive:FILE)")
	}
	var images []imported
	if info.IsDir() {
		images, err = p.layoutImages(ctx, file, layout.Path(file))
	} else {
		var cleanup func()
		images, cleanup, err = p.tarImages(ctx, file)
		if cleanup != nil {
			defer cleanup()
		}
	}
	if err != nil {
		return nil, fail(err, "check the file: it must be an OCI layout (oci-layout, index.json, blobs/) or a docker save tarball, unmodified")
	}
	if len(images) == 0 {
		return nil, fail(errors.New("no image in it"), "export an image into it first")
	}
	var out []Result
	for _, im := range images {
		d, err := v1.NewHash(im.res.Digest)
		if err != nil {
			return nil, err
		}
		if err := commitImported(ctx, st, im, d); err != nil {
			return nil, err
		}
		out = append(out, *im.res)
	}
	return out, nil
}

func commitImported(ctx context.Context, st store.Store, im imported, d v1.Hash) error {
	if _, err := st.Put(ctx, im.repo, im.img); err != nil {
		return fmt.Errorf("storing %s in %s: %w", d, st, err)
	}
	if ip, ok := st.(indexStore); ok && im.index != nil {
		if _, err := ip.PutIndex(ctx, im.repo, im.mt, im.index); err != nil {
			return fmt.Errorf("storing the index %s in %s: %w", d, st, err)
		}
	}
	return nil
}

// layoutImages verifies the images an OCI layout's index.json lists (an
// index entry: its image for the platform).
func (p *Puller) layoutImages(ctx context.Context, file string, lp layout.Path) ([]imported, error) {
	root, err := lp.ImageIndex()
	if err != nil {
		return nil, fmt.Errorf("reading the OCI layout: %w", err)
	}
	im, err := root.IndexManifest()
	if err != nil {
		return nil, fmt.Errorf("reading the OCI layout's index.json: %w", err)
	}
	var out []imported
	for _, desc := range im.Manifests {
		repo := refName(desc.Annotations)
		raw, err := lp.Bytes(desc.Digest)
		if err != nil {
			return nil, fmt.Errorf("manifest %s: %w", desc.Digest, err)
		}
		if err := checkDigest("manifest", raw, desc.Digest.String()); err != nil {
			return nil, err
		}
		it := imported{repo: repo, res: &Result{Digest: desc.Digest.String(), Source: file}}
		imgDigest := desc.Digest
		if desc.MediaType.IsIndex() {
			child, err := p.choose(repoOr(repo, file)+"@"+desc.Digest.String(), raw)
			if err != nil {
				return nil, err
			}
			it.index, it.mt, it.res.Index, imgDigest = raw, desc.MediaType, true, child.Digest
		} else if !desc.MediaType.IsImage() {
			continue // an artifact that is no image
		}
		if it.img, err = verifiedLayoutImage(ctx, lp, imgDigest, it.res); err != nil {
			return nil, err
		}
		it.res.Ref = pinned(repo, it.res.Digest)
		out = append(out, it)
	}
	return out, nil
}

// verifiedLayoutImage reads the image h of lp and checks every blob.
func verifiedLayoutImage(ctx context.Context, lp layout.Path, h v1.Hash, res *Result) (v1.Image, error) {
	raw, err := lp.Bytes(h)
	if err != nil {
		return nil, fmt.Errorf("manifest %s: %w", h, err)
	}
	if err := checkDigest("manifest", raw, h.String()); err != nil {
		return nil, err
	}
	m, err := v1.ParseManifest(bytesReader(raw))
	if err != nil {
		return nil, fmt.Errorf("manifest %s: %w", h, err)
	}
	mt := m.MediaType
	if mt == "" {
		mt = types.OCIManifestSchema1
	}
	img, err := layoutImage(lp, v1.Descriptor{MediaType: mt, Digest: h, Size: int64(len(raw))})
	if err != nil {
		return nil, err
	}
	if err := verifyBlobs(ctx, img, m); err != nil {
		return nil, err
	}
	r, _, err := describe(h, img, false)
	if err != nil {
		return nil, err
	}
	res.Manifest, res.Platform, res.Layers, res.Size = r.Manifest, r.Platform, r.Layers, r.Size
	return img, nil
}

// refName is the repository an index entry names, from its full name
// annotation, else from an OCI ref name that is a full reference; "" if
// neither is.
func refName(ann map[string]string) string {
	for _, k := range []string{containerdNameAnnotation, store.RefAnnotation} {
		s := ann[k]
		if s == "" {
			continue
		}
		if r, err := name.ParseReference(s); err == nil && (k == containerdNameAnnotation || containsSlash(s)) {
			return r.Context().Name()
		}
	}
	return ""
}

func containsSlash(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == '/' {
			return true
		}
	}
	return false
}

func repoOr(repo, alt string) string {
	if repo != "" {
		return repo
	}
	return alt
}

// pinned is repo@digest, or the digest alone for an image without name.
func pinned(repo, digest string) string {
	if repo == "" {
		return digest
	}
	return repo + "@" + digest
}

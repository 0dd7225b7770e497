package store

import (
	"context"
	"fmt"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// PutIndex records an image index (an OCI index or a Docker manifest
// list; raw is its manifest, mt its media type) under ref (may be empty).
// Only its manifest is written: the children the store holds were put
// with [Layout.Put], the others stay absent, so a multi-platform image
// pulled for one platform is kept as the index its pinned digest names
// plus that platform's image. It returns the index digest.
func (l *Layout) PutIndex(_ context.Context, ref string, mt types.MediaType, raw []byte) (v1.Hash, error) {
	if !mt.IsIndex() {
		return v1.Hash{}, fmt.Errorf("storing index under %q: media type %q is not an image index", ref, mt)
	}
	h, size, err := v1.SHA256(bytesReader(raw))
	if err != nil {
		return v1.Hash{}, err
	}
	if err := l.writeBytes(h, raw); err != nil {
		return v1.Hash{}, err
	}
	entry := v1.Descriptor{MediaType: mt, Digest: h, Size: size}
	if ref != "" {
		entry.Annotations = map[string]string{RefAnnotation: ref}
	}
	return h, l.addToIndex(entry)
}

// Index returns the image index with digest h, as [Layout.PutIndex]
// stored it.
func (l *Layout) Index(_ context.Context, h v1.Hash) (v1.ImageIndex, error) {
	root, err := layout.Path(l.dir).ImageIndex()
	if err != nil {
		return nil, fmt.Errorf("index %s in store %s: %w", h, l.dir, err)
	}
	idx, err := root.ImageIndex(h)
	if err != nil {
		return nil, fmt.Errorf("index %s in store %s: %w", h, l.dir, err)
	}
	return idx, nil
}

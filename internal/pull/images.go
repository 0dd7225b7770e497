package pull

import (
	"context"
	"fmt"
	"sync"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/accord-build/accord/internal/store"
)

// Images gives the local engine its step images: from the store, where an
// index the store keeps resolves to the platform's image, and, for a
// reference the store does not have, pulled from its registry (or a
// mirror) into the store first. It is safe for concurrent use.
type Images struct {
	st store.Store
	p  *Puller

	mu   sync.Mutex
	imgs map[v1.Hash]v1.Image // by the pinned digest: immutable
}

// NewImages returns step images from st, pulled with p on a miss (nil p:
// from st only).
func NewImages(st store.Store, p *Puller) *Images {
	return &Images{st: st, p: p, imgs: map[v1.Hash]v1.Image{}}
}

// Image returns the image whose manifest or index digest is h, from the
// store only.
func (i *Images) Image(ctx context.Context, h v1.Hash) (v1.Image, error) {
	if img, ok := i.cached(h); ok {
		return img, nil
	}
	_, img, err := i.platform().storedErr(ctx, i.st, h)
	if err != nil {
		return nil, err
	}
	return i.keep(h, img), nil
}

// ImageRef returns the image ref pins (REPOSITORY@DIGEST), pulling it
// into the store when the store does not have it. A failed pull is an
// [*Error] naming the image and the fix.
func (i *Images) ImageRef(ctx context.Context, ref string) (v1.Image, error) {
	d, err := ParseRef(ref)
	if err != nil {
		return nil, err
	}
	h, err := v1.NewHash(d.DigestStr())
	if err != nil {
		return nil, err
	}
	if img, ok := i.cached(h); ok {
		return img, nil
	}
	if _, img, ok := i.platform().stored(ctx, i.st, d); ok {
		return i.keep(h, img), nil
	}
	if i.p == nil {
		return nil, &Error{Image: ref, Kind: NotFound, Source: i.st.String(), Fix: "put it into the store: accord images pull " + ref + ", or accord images import FILE"}
	}
	res, err := i.p.Pull(ctx, ref, i.st)
	if err != nil {
		return nil, err
	}
	// By the platform's manifest: a store that keeps no indexes (a
	// registry store) has only the image.
	mh, err := v1.NewHash(res.Manifest)
	if err != nil {
		return nil, err
	}
	_, img, err := i.p.storedErr(ctx, i.st, mh)
	if err != nil {
		return nil, fmt.Errorf("reading %s after pulling it: %w", ref, err)
	}
	return i.keep(h, img), nil
}

func (i *Images) platform() *Puller {
	if i.p != nil {
		return i.p
	}
	return New()
}

func (i *Images) cached(h v1.Hash) (v1.Image, bool) {
	i.mu.Lock()
	defer i.mu.Unlock()
	img, ok := i.imgs[h]
	return img, ok
}

func (i *Images) keep(h v1.Hash, img v1.Image) v1.Image {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.imgs[h] = img
	return img
}

// stored finds the image d pins in st, as [Puller.storedErr].
func (p *Puller) stored(ctx context.Context, st store.Store, d name.Digest) (*Result, v1.Image, bool) {
	h, err := v1.NewHash(d.DigestStr())
	if err != nil {
		return nil, nil, false
	}
	res, img, err := p.storedErr(ctx, st, h)
	if err != nil {
		return nil, nil, false
	}
	res.Ref = d.Context().Name() + "@" + h.String()
	return res, img, true
}

// storedErr finds the image h pins in st: the image with manifest digest
// h, or, in a store that keeps indexes, the platform's image of the index
// h (which the store must hold too).
func (p *Puller) storedErr(ctx context.Context, st store.Store, h v1.Hash) (*Result, v1.Image, error) {
	img, err := st.Image(ctx, h)
	if err == nil {
		if _, err = img.ConfigFile(); err == nil {
			return describe(h, img, true)
		}
	}
	is, ok := st.(indexStore)
	if !ok {
		return nil, nil, err
	}
	idx, ierr := is.Index(ctx, h)
	if ierr != nil {
		return nil, nil, err
	}
	raw, ierr := idx.RawManifest()
	if ierr != nil {
		return nil, nil, ierr
	}
	child, ierr := p.choose(h.String(), raw)
	if ierr != nil {
		return nil, nil, ierr
	}
	if img, err = st.Image(ctx, child.Digest); err != nil {
		return nil, nil, err
	}
	return describe(h, img, true)
}

// describe is the result for img, pinned by h.
func describe(h v1.Hash, img v1.Image, cached bool) (*Result, v1.Image, error) {
	md, err := img.Digest()
	if err != nil {
		return nil, nil, err
	}
	m, err := img.Manifest()
	if err != nil {
		return nil, nil, err
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return nil, nil, err
	}
	res := &Result{Digest: h.String(), Manifest: md.String(), Index: md != h, Platform: platformOf(cfg), Layers: len(m.Layers), Cached: cached}
	for _, l := range m.Layers {
		res.Size += l.Size
	}
	return res, img, nil
}

package local

import (
	"context"

	ggcrv1 "github.com/google/go-containerregistry/pkg/v1"
)

// RefImages is an [Images] that also finds an image by its pinned
// reference (REPOSITORY@DIGEST, the digest an image's or an index's), for
// example by pulling it from the registry the reference names into the
// store. The engine asks it for every literal step image before the first
// task starts (on the host, never from a sandbox), so a missing image, an
// unreachable registry or a digest mismatch fails the run before any step
// runs.
type RefImages interface {
	Images
	// ImageRef returns the image ref pins; for an index, the image of
	// the host platform.
	ImageRef(ctx context.Context, ref string) (ggcrv1.Image, error)
}

// lookupImage finds the step image ref (digest h): by reference when the
// executor's images can, else by digest in the store.
func (r *run) lookupImage(ctx context.Context, ref string, h ggcrv1.Hash) (ggcrv1.Image, error) {
	if ri, ok := r.e.images.(RefImages); ok {
		img, err := ri.ImageRef(ctx, ref)
		if err != nil {
			return nil, inputErr("step image %s is not available: %w", ref, err)
		}
		return img, nil
	}
	img, err := r.e.images.Image(ctx, h)
	if err != nil {
		return nil, inputErr("step image %s is not available: %v\n  fix: for accord's builder images run 'accord images build'; otherwise put the image into the store first (accord images pull REF@DIGEST, accord images import FILE)", ref, err)
	}
	return img, nil
}

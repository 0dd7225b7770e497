package pull

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// fileImage is an image whose manifest and config are in memory and whose
// layers are opened by digest (from an OCI layout or a tarball).
type fileImage struct {
	mt       types.MediaType
	manifest []byte
	config   []byte
	layers   map[v1.Hash]v1.Descriptor
	open     func(h v1.Hash) (io.ReadCloser, error)
}

var _ partial.CompressedImageCore = (*fileImage)(nil)

func (f *fileImage) MediaType() (types.MediaType, error) { return f.mt, nil }
func (f *fileImage) RawManifest() ([]byte, error)        { return f.manifest, nil }
func (f *fileImage) RawConfigFile() ([]byte, error)      { return f.config, nil }

func (f *fileImage) LayerByDigest(h v1.Hash) (partial.CompressedLayer, error) {
	d, ok := f.layers[h]
	if !ok {
		return nil, fmt.Errorf("image has no layer %s", h)
	}
	return &fileLayer{d: d, open: f.open}, nil
}

// fileLayer is one layer of a [fileImage].
type fileLayer struct {
	d    v1.Descriptor
	open func(h v1.Hash) (io.ReadCloser, error)
}

func (l *fileLayer) Digest() (v1.Hash, error)            { return l.d.Digest, nil }
func (l *fileLayer) Size() (int64, error)                { return l.d.Size, nil }
func (l *fileLayer) MediaType() (types.MediaType, error) { return l.d.MediaType, nil }
func (l *fileLayer) Compressed() (io.ReadCloser, error)  { return l.open(l.d.Digest) }

// newFileImage makes an image of a manifest (of media type mt), its
// config and a way to open its layers.
func newFileImage(mt types.MediaType, manifest, config []byte, open func(v1.Hash) (io.ReadCloser, error)) (v1.Image, error) {
	m, err := v1.ParseManifest(bytesReader(manifest))
	if err != nil {
		return nil, fmt.Errorf("parsing the manifest: %w", err)
	}
	f := &fileImage{mt: mt, manifest: manifest, config: config, layers: map[v1.Hash]v1.Descriptor{}, open: open}
	for _, l := range m.Layers {
		f.layers[l.Digest] = l
	}
	return partial.CompressedToImage(f)
}

// layoutImage is the image d of the OCI layout lp, child of an index or
// not.
func layoutImage(lp layout.Path, d v1.Descriptor) (v1.Image, error) {
	raw, err := lp.Bytes(d.Digest)
	if err != nil {
		return nil, err
	}
	m, err := v1.ParseManifest(bytesReader(raw))
	if err != nil {
		return nil, fmt.Errorf("manifest %s: %w", d.Digest, err)
	}
	cfg, err := lp.Bytes(m.Config.Digest)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", m.Config.Digest, err)
	}
	return newFileImage(d.MediaType, raw, cfg, lp.Blob)
}

// verifyBlobs checks that the config and every layer of img (whose
// parsed manifest is m) hash to their digests and have their sizes.
func verifyBlobs(ctx context.Context, img v1.Image, m *v1.Manifest) error {
	cfg, err := img.RawConfigFile()
	if err != nil {
		return err
	}
	if err := checkDigest("config", cfg, m.Config.Digest.String()); err != nil {
		return err
	}
	for _, d := range m.Layers {
		if err := ctx.Err(); err != nil {
			return err
		}
		l, err := img.LayerByDigest(d.Digest)
		if err != nil {
			return err
		}
		rc, err := l.Compressed()
		if err != nil {
			return fmt.Errorf("layer %s: %w", d.Digest, err)
		}
		h := sha256.New()
		n, err := io.Copy(h, rc)
		rc.Close()
		if err != nil {
			return fmt.Errorf("layer %s: %w", d.Digest, err)
		}
		if got := "sha256:" + hex.EncodeToString(h.Sum(nil)); got != d.Digest.String() || n != d.Size {
			return &digestError{what: fmt.Sprintf("layer %s (%d bytes)", d.Digest, d.Size), want: d.Digest.String(), got: fmt.Sprintf("%s (%d bytes)", got, n)}
		}
	}
	return nil
}

package pull

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// stage fetches every blob of img into a fresh OCI layout in the staging
// root, checking each against its digest, with a progress line per
// layer, and returns the staged image (read from local files) and the
// removal of the staging directory. It fills res's platform, layers and
// size.
func (p *Puller) stage(ctx context.Context, ref string, img v1.Image, res *Result) (v1.Image, func(), error) {
	root, err := p.stagingRoot()
	if err != nil {
		return nil, nil, fmt.Errorf("creating the staging directory: %w", err)
	}
	dir, err := os.MkdirTemp(root, "pull-")
	if err != nil {
		return nil, nil, fmt.Errorf("creating the staging directory: %w", err)
	}
	cleanup := func() { os.RemoveAll(dir) }
	staged, err := p.stageIn(ctx, dir, ref, img, res)
	if err != nil {
		cleanup()
		return nil, nil, err
	}
	return staged, cleanup, nil
}

func (p *Puller) stageIn(ctx context.Context, dir, ref string, img v1.Image, res *Result) (v1.Image, error) {
	lp, err := layout.Write(dir, empty.Index)
	if err != nil {
		return nil, err
	}
	raw, err := img.RawManifest()
	if err != nil {
		return nil, err
	}
	if err := checkDigest("manifest", raw, res.Manifest); err != nil {
		return nil, err
	}
	m, err := v1.ParseManifest(bytesReader(raw))
	if err != nil {
		return nil, fmt.Errorf("parsing the manifest: %w", err)
	}
	cfgRaw, err := img.RawConfigFile()
	if err != nil {
		return nil, fmt.Errorf("fetching the config: %w", err)
	}
	if err := checkDigest("config", cfgRaw, m.Config.Digest.String()); err != nil {
		return nil, err
	}
	cfg, err := v1.ParseConfigFile(bytesReader(cfgRaw))
	if err != nil {
		return nil, fmt.Errorf("parsing the config: %w", err)
	}
	res.Platform = platformOf(cfg)
	if cfg.OS != "" && cfg.Architecture != "" && !(v1.Platform{OS: cfg.OS, Architecture: cfg.Architecture, Variant: cfg.Variant}).Satisfies(p.platform) {
		return nil, &Error{Image: ref, Kind: NoPlatform, Source: res.Source, Err: fmt.Errorf("the image is for %s; steps run on %s", res.Platform, p.platform),
			Fix: fmt.Sprintf("pin the %s image, or an index that has one", p.platform)}
	}
	res.Layers = len(m.Layers)
	for i, l := range m.Layers {
		if err := p.stageLayer(ctx, lp, img, ref, i, len(m.Layers), l); err != nil {
			return nil, err
		}
		res.Size += l.Size
	}
	// Layers are in place: write config and manifest, then the entry.
	h, err := v1.NewHash(res.Manifest)
	if err != nil {
		return nil, err
	}
	mt, err := img.MediaType()
	if err != nil {
		return nil, err
	}
	if err := lp.WriteBlob(m.Config.Digest, io.NopCloser(bytesReader(cfgRaw))); err != nil {
		return nil, fmt.Errorf("staging %s: %w", ref, err)
	}
	if err := lp.WriteBlob(h, io.NopCloser(bytesReader(raw))); err != nil {
		return nil, fmt.Errorf("staging %s: %w", ref, err)
	}
	if err := lp.AppendDescriptor(v1.Descriptor{MediaType: mt, Digest: h, Size: int64(len(raw))}); err != nil {
		return nil, fmt.Errorf("staging %s: %w", ref, err)
	}
	return lp.Image(h)
}

// stageLayer copies one layer into the staging layout, hashing it on the
// way; a layer that does not hash to its digest never lands there.
func (p *Puller) stageLayer(ctx context.Context, lp layout.Path, img v1.Image, ref string, i, n int, d v1.Descriptor) error {
	if d.MediaType == types.DockerForeignLayer || d.MediaType == types.OCIRestrictedLayer || d.MediaType == types.OCIUncompressedRestrictedLayer {
		return fmt.Errorf("layer %s is a foreign (non-distributable) layer, which a registry does not serve", d.Digest)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	fmt.Fprintf(p.progress, "pulling %s: layer %d/%d %s (%s)\n", ref, i+1, n, short(d.Digest), humanSize(d.Size))
	layer, err := img.LayerByDigest(d.Digest)
	if err != nil {
		return fmt.Errorf("layer %s: %w", d.Digest, err)
	}
	rc, err := layer.Compressed()
	if err != nil {
		return fmt.Errorf("layer %s: %w", d.Digest, err)
	}
	defer rc.Close()
	if err := os.MkdirAll(filepath.Join(string(lp), "blobs", d.Digest.Algorithm), 0o755); err != nil {
		return err
	}
	tmp := filepath.Join(string(lp), "blobs", "layer.tmp")
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	defer os.Remove(tmp)
	hasher := sha256.New()
	nb, err := io.Copy(io.MultiWriter(f, hasher), rc)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("layer %s: %w", d.Digest, err)
	}
	got := "sha256:" + hex.EncodeToString(hasher.Sum(nil))
	if got != d.Digest.String() || nb != d.Size {
		return &digestError{what: fmt.Sprintf("layer %s (%d bytes)", d.Digest, d.Size), want: d.Digest.String(), got: fmt.Sprintf("%s (%d bytes)", got, nb)}
	}
	return os.Rename(tmp, filepath.Join(string(lp), "blobs", d.Digest.Algorithm, d.Digest.Hex))
}

func platformOf(cfg *v1.ConfigFile) string {
	s := cfg.OS + "/" + cfg.Architecture
	if cfg.Variant != "" {
		s += "/" + cfg.Variant
	}
	return s
}

func short(h v1.Hash) string {
	if len(h.Hex) > 12 {
		return h.Algorithm + ":" + h.Hex[:12]
	}
	return h.String()
}

func humanSize(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

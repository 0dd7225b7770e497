package artifact

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"sort"
	"strings"

	ggcrv1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/accord-build/accord/internal/engine"
)

// findImage looks for the claimed manifest in the OCI layouts in the task's
// workspaces and checks its digest. Every file of the layout (the index,
// the manifest, its config and layers) is read beneath the workspace's
// root, and must be a regular file there.
func findImage(o engine.Output, t engine.TaskResult, roots *rootCache) (Artifact, ggcrv1.Image, error) {
	a := Artifact{Name: o.URI, Kind: o.Kind, URI: o.URI, Task: o.Task}
	h, err := ggcrv1.NewHash(normalize(o.Digest))
	if err != nil {
		return a, nil, fmt.Errorf("task %q: %s %q is not a digest: %w", o.Task, o.Hint, o.Digest, err)
	}
	wrap := func(err error) error {
		return fmt.Errorf("task %q announced image %s@%s: %w", o.Task, o.URI, h, err)
	}
	for _, dest := range destsByHost(t.Mounts) {
		pl := placeOf(t, dest)
		root, err := roots.open(pl.root)
		if err != nil {
			continue
		}
		dir := findLayout(root, pl.rel, h)
		if dir == "" {
			continue
		}
		l := &layoutImage{root: root, dir: dir}
		if err := l.checkIndexed(h); err != nil {
			return a, nil, wrap(err)
		}
		raw, err := l.blob(h)
		if err != nil {
			return a, nil, wrap(err)
		}
		if got := digestOf(raw); got != h.String() {
			return a, nil, &MismatchError{Task: o.Task, Hint: o.Hint, URI: o.URI, Claimed: h.String(), Actual: got}
		}
		if err := l.parse(raw); err != nil {
			return a, nil, fmt.Errorf("task %q: image %s in %s: %w", o.Task, h, dir, err)
		}
		for _, d := range append([]ggcrv1.Descriptor{l.m.Config}, l.m.Layers...) {
			f, err := openRegular(root, l.blobPath(d.Digest))
			if err != nil {
				return a, nil, wrap(err)
			}
			f.Close()
		}
		img, err := partial.CompressedToImage(l)
		if err != nil {
			return a, nil, fmt.Errorf("task %q: image %s in %s: %w", o.Task, h, dir, err)
		}
		a.Digest = h.String()
		return a, img, nil
	}
	return a, nil, fmt.Errorf("task %q announced image %s@%s: %w\n  fix: write the image as an OCI layout (index.json, blobs/) into a workspace", o.Task, o.URI, h, ErrNotFound)
}

// destsByHost is the mount paths ordered by their host directories.
func destsByHost(mounts map[string]string) []string {
	out := make([]string, 0, len(mounts))
	for d := range mounts {
		out = append(out, d)
	}
	sort.Slice(out, func(i, j int) bool {
		if mounts[out[i]] != mounts[out[j]] {
			return mounts[out[i]] < mounts[out[j]]
		}
		return out[i] < out[j]
	})
	return out
}

// findLayout returns the OCI layout directory (relative to root) at most
// two levels below dir that holds blob h.
func findLayout(root *os.Root, dir string, h ggcrv1.Hash) string {
	var found string
	_ = fs.WalkDir(root.FS(), dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || found != "" {
			return fs.SkipDir
		}
		rel := p
		if dir != "." {
			rel = strings.TrimPrefix(strings.TrimPrefix(p, dir), "/")
		}
		if d.IsDir() && strings.Count(rel, "/") > 2 {
			return fs.SkipDir
		}
		if d.Name() == "oci-layout" && !d.IsDir() {
			l := path.Dir(p)
			if _, err := root.Lstat(path.Join(l, "blobs", h.Algorithm, h.Hex)); err == nil {
				found = l
			}
		}
		return nil
	})
	return found
}

// layoutImage is an image in an OCI layout, read through a root.
type layoutImage struct {
	root *os.Root
	dir  string // the layout, relative to root
	raw  []byte
	m    *ggcrv1.Manifest
}

var _ partial.CompressedImageCore = (*layoutImage)(nil)

func (l *layoutImage) blobPath(h ggcrv1.Hash) string {
	return path.Join(l.dir, "blobs", h.Algorithm, h.Hex)
}

func (l *layoutImage) read(rel string) ([]byte, error) {
	f, err := openRegular(l.root, rel)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(f)
}

func (l *layoutImage) blob(h ggcrv1.Hash) ([]byte, error) { return l.read(l.blobPath(h)) }

// checkIndexed requires index.json (or an index it names) to list h.
func (l *layoutImage) checkIndexed(h ggcrv1.Hash) error {
	raw, err := l.read(path.Join(l.dir, "index.json"))
	if err != nil {
		return err
	}
	for depth := 0; depth < 3; depth++ {
		idx, err := ggcrv1.ParseIndexManifest(bytes.NewReader(raw))
		if err != nil {
			return fmt.Errorf("index of the layout %s: %w", l.dir, err)
		}
		var nested []ggcrv1.Hash
		for _, d := range idx.Manifests {
			if d.Digest == h {
				return nil
			}
			if d.MediaType.IsIndex() {
				nested = append(nested, d.Digest)
			}
		}
		if len(nested) == 0 {
			break
		}
		if raw, err = l.blob(nested[0]); err != nil {
			return err
		}
	}
	return fmt.Errorf("the layout %s does not list %s in its index: %w", l.dir, h, ErrNotFound)
}

func (l *layoutImage) parse(raw []byte) error {
	m := &ggcrv1.Manifest{}
	if err := json.Unmarshal(raw, m); err != nil {
		return err
	}
	l.raw, l.m = raw, m
	return nil
}

// RawManifest implements partial.CompressedImageCore.
func (l *layoutImage) RawManifest() ([]byte, error) { return l.raw, nil }

// MediaType implements partial.CompressedImageCore.
func (l *layoutImage) MediaType() (types.MediaType, error) {
	if l.m.MediaType != "" {
		return l.m.MediaType, nil
	}
	return types.OCIManifestSchema1, nil
}

// RawConfigFile implements partial.CompressedImageCore.
func (l *layoutImage) RawConfigFile() ([]byte, error) { return l.blob(l.m.Config.Digest) }

// LayerByDigest implements partial.CompressedImageCore.
func (l *layoutImage) LayerByDigest(h ggcrv1.Hash) (partial.CompressedLayer, error) {
	if h == l.m.Config.Digest {
		return &layoutBlob{l: l, d: l.m.Config}, nil
	}
	for _, d := range l.m.Layers {
		if d.Digest == h {
			return &layoutBlob{l: l, d: d}, nil
		}
	}
	return nil, fmt.Errorf("layer %s is not in the manifest of %s", h, l.dir)
}

// layoutBlob is a layer of a layoutImage.
type layoutBlob struct {
	l *layoutImage
	d ggcrv1.Descriptor
}

func (b *layoutBlob) Digest() (ggcrv1.Hash, error)        { return b.d.Digest, nil }
func (b *layoutBlob) Size() (int64, error)                { return b.d.Size, nil }
func (b *layoutBlob) MediaType() (types.MediaType, error) { return b.d.MediaType, nil }

// Compressed opens the blob beneath the root again: a regular file only.
func (b *layoutBlob) Compressed() (io.ReadCloser, error) {
	return openRegular(b.l.root, b.l.blobPath(b.d.Digest))
}

package artifact

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"path"
	"strings"

	ggcrv1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/accord-build/accord/internal/engine"
)

// findImage looks for the claimed manifest in the OCI layouts in the task's
// workspaces and checks its digest. Every file of the layout (the index,
// the manifest, its config and layers) is read through the workspace's FS
// the engine gave, and must be a regular file there.
func findImage(o engine.Output, t engine.TaskResult) (Artifact, ggcrv1.Image, error) {
	a := Artifact{Name: o.URI, Kind: o.Kind, URI: o.URI, Task: o.Task}
	h, err := ggcrv1.NewHash(normalize(o.Digest))
	if err != nil {
		return a, nil, fmt.Errorf("task %q: %s %q is not a digest: %w", o.Task, o.Hint, o.Digest, err)
	}
	wrap := func(err error) error {
		return fmt.Errorf("task %q announced image %s@%s: %w", o.Task, o.URI, h, err)
	}
	for _, dest := range t.MountPaths() {
		fsys := t.Workspaces[dest]
		if fsys == nil {
			continue
		}
		dir := findLayout(fsys, h)
		if dir == "" {
			continue
		}
		l := &layoutImage{fsys: fsys, dir: dir, where: path.Join(dest, dir)}
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
			return a, nil, fmt.Errorf("task %q: image %s in %s: %w", o.Task, h, l.where, err)
		}
		for _, d := range append([]ggcrv1.Descriptor{l.m.Config}, l.m.Layers...) {
			f, err := openRegular(fsys, l.blobPath(d.Digest))
			if err != nil {
				return a, nil, wrap(err)
			}
			f.Close()
		}
		img, err := partial.CompressedToImage(l)
		if err != nil {
			return a, nil, fmt.Errorf("task %q: image %s in %s: %w", o.Task, h, l.where, err)
		}
		a.Digest = h.String()
		return a, img, nil
	}
	return a, nil, fmt.Errorf("task %q announced image %s@%s: %w\n  fix: write the image as an OCI layout (index.json, blobs/) into a workspace", o.Task, o.URI, h, ErrNotFound)
}

// findLayout returns the OCI layout directory of fsys, at most two levels
// below its root, that holds blob h.
func findLayout(fsys fs.FS, h ggcrv1.Hash) string {
	var found string
	_ = fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || found != "" {
			return fs.SkipDir
		}
		if d.IsDir() && strings.Count(p, "/") > 2 {
			return fs.SkipDir
		}
		if d.Name() == "oci-layout" && !d.IsDir() {
			l := path.Dir(p)
			if _, err := fs.Lstat(fsys, path.Join(l, "blobs", h.Algorithm, h.Hex)); err == nil {
				found = l
			}
		}
		return nil
	})
	return found
}

// layoutImage is an image in an OCI layout, read through a workspace FS.
type layoutImage struct {
	fsys  fs.FS
	dir   string // the layout, relative to fsys
	where string // the layout's path in the task's containers, for errors
	raw   []byte
	m     *ggcrv1.Manifest
}

var _ partial.CompressedImageCore = (*layoutImage)(nil)

func (l *layoutImage) blobPath(h ggcrv1.Hash) string {
	return path.Join(l.dir, "blobs", h.Algorithm, h.Hex)
}

func (l *layoutImage) read(rel string) ([]byte, error) {
	f, err := openRegular(l.fsys, rel)
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
			return fmt.Errorf("index of the layout %s: %w", l.where, err)
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
	return fmt.Errorf("the layout %s does not list %s in its index: %w", l.where, h, ErrNotFound)
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
	return nil, fmt.Errorf("layer %s is not in the manifest of %s", h, l.where)
}

// layoutBlob is a layer of a layoutImage.
type layoutBlob struct {
	l *layoutImage
	d ggcrv1.Descriptor
}

func (b *layoutBlob) Digest() (ggcrv1.Hash, error)        { return b.d.Digest, nil }
func (b *layoutBlob) Size() (int64, error)                { return b.d.Size, nil }
func (b *layoutBlob) MediaType() (types.MediaType, error) { return b.d.MediaType, nil }

// Compressed opens the blob in the workspace again: a regular file only.
func (b *layoutBlob) Compressed() (io.ReadCloser, error) {
	return openRegular(b.l.fsys, b.l.blobPath(b.d.Digest))
}

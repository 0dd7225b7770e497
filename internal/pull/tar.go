package pull

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// opener opens file as a tar stream, gunzipping a gzipped one.
func opener(file string) tarball.Opener {
	return func() (io.ReadCloser, error) {
		f, err := os.Open(file)
		if err != nil {
			return nil, err
		}
		br := bufio.NewReader(f)
		if magic, _ := br.Peek(2); len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
			zr, err := gzip.NewReader(br)
			if err != nil {
				f.Close()
				return nil, err
			}
			return struct {
				io.Reader
				io.Closer
			}{zr, f}, nil
		}
		return struct {
			io.Reader
			io.Closer
		}{br, f}, nil
	}
}

// tarImages verifies the images of a tarball: an OCI layout in a tar
// (unpacked into a staging directory, removed by the returned cleanup),
// else a docker save tarball.
func (p *Puller) tarImages(ctx context.Context, file string) ([]imported, func(), error) {
	open := opener(file)
	names, err := tarNames(open)
	if err != nil {
		return nil, nil, fmt.Errorf("reading %s as a tarball: %w", file, err)
	}
	if names["oci-layout"] && names["index.json"] {
		root, err := p.stagingRoot()
		if err != nil {
			return nil, nil, err
		}
		dir, err := os.MkdirTemp(root, "import-")
		if err != nil {
			return nil, nil, err
		}
		cleanup := func() { os.RemoveAll(dir) }
		if err := extractLayout(ctx, open, dir); err != nil {
			return nil, cleanup, err
		}
		images, err := p.layoutImages(ctx, file, layout.Path(dir))
		return images, cleanup, err
	}
	if names["manifest.json"] {
		images, err := dockerImages(ctx, file, open)
		return images, nil, err
	}
	return nil, nil, errors.New("it holds neither an OCI layout (oci-layout, index.json) nor a docker save manifest.json")
}

// tarNames lists the cleaned names of the regular files in the tar.
func tarNames(open tarball.Opener) (map[string]bool, error) {
	rc, err := open()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	out := map[string]bool{}
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		if h.Typeflag == tar.TypeReg {
			out[path.Clean(strings.TrimPrefix(h.Name, "./"))] = true
		}
	}
}

// extractLayout unpacks the OCI layout files of the tar (oci-layout,
// index.json, blobs/ALG/HEX; regular files only, anything else ignored)
// into dir, beneath it: no name can leave dir.
func extractLayout(ctx context.Context, open tarball.Opener, dir string) error {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer root.Close()
	rc, err := open()
	if err != nil {
		return err
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		n := path.Clean(strings.TrimPrefix(h.Name, "./"))
		if h.Typeflag != tar.TypeReg || !layoutFile(n) {
			continue
		}
		if strings.HasPrefix(n, "blobs/") {
			if err := root.MkdirAll(path.Dir(n), 0o755); err != nil {
				return err
			}
		}
		f, err := root.OpenFile(n, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
		if err != nil {
			return fmt.Errorf("unpacking %s: %w", n, err)
		}
		_, err = io.Copy(f, tr)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("unpacking %s: %w", n, err)
		}
	}
}

// layoutFile reports whether n is a file of an OCI layout accord reads.
func layoutFile(n string) bool {
	if n == "oci-layout" || n == "index.json" {
		return true
	}
	parts := strings.Split(n, "/")
	if len(parts) != 3 || parts[0] != "blobs" || parts[1] != "sha256" {
		return false
	}
	_, err := v1.NewHash("sha256:" + parts[2])
	return err == nil
}

// dockerImages verifies the images of a docker save tarball: each gets a
// manifest of accord's own with the tarball's layers uncompressed (digest
// = diff ID) and its config as it is.
func dockerImages(ctx context.Context, file string, open tarball.Opener) ([]imported, error) {
	mf, err := tarball.LoadManifest(open)
	if err != nil {
		return nil, fmt.Errorf("reading manifest.json: %w", err)
	}
	var out []imported
	for i, d := range mf {
		var tag *name.Tag
		repo := ""
		if len(d.RepoTags) > 0 {
			t, err := name.NewTag(d.RepoTags[0])
			if err != nil {
				return nil, fmt.Errorf("manifest.json entry %d: tag %q: %w", i, d.RepoTags[0], err)
			}
			tag, repo = &t, t.Context().Name()
		} else if len(mf) > 1 {
			return nil, fmt.Errorf("manifest.json entry %d has no RepoTags; among several images accord cannot tell which it is", i)
		}
		it, err := dockerImage(ctx, open, tag)
		if err != nil {
			return nil, fmt.Errorf("manifest.json entry %d (%s): %w", i, repoOr(repo, "untagged"), err)
		}
		it.repo, it.res.Source = repo, file
		it.res.Ref = pinned(repo, it.res.Digest)
		out = append(out, it)
	}
	return out, nil
}

func dockerImage(ctx context.Context, open tarball.Opener, tag *name.Tag) (imported, error) {
	src, err := tarball.Image(open, tag)
	if err != nil {
		return imported{}, err
	}
	cfgRaw, err := src.RawConfigFile()
	if err != nil {
		return imported{}, err
	}
	cfg, err := v1.ParseConfigFile(bytesReader(cfgRaw))
	if err != nil {
		return imported{}, fmt.Errorf("parsing the config: %w", err)
	}
	layers, err := src.Layers()
	if err != nil {
		return imported{}, err
	}
	if len(layers) != len(cfg.RootFS.DiffIDs) {
		return imported{}, fmt.Errorf("the config lists %d layers, the tarball %d", len(cfg.RootFS.DiffIDs), len(layers))
	}
	byDiff := map[v1.Hash]v1.Layer{}
	m := v1.Manifest{SchemaVersion: 2, MediaType: types.OCIManifestSchema1}
	for i, l := range layers {
		want := cfg.RootFS.DiffIDs[i]
		n, err := hashUncompressed(ctx, l, want)
		if err != nil {
			return imported{}, err
		}
		byDiff[want] = l
		m.Layers = append(m.Layers, v1.Descriptor{MediaType: types.OCIUncompressedLayer, Digest: want, Size: n})
	}
	ch, cs, err := v1.SHA256(bytesReader(cfgRaw))
	if err != nil {
		return imported{}, err
	}
	m.Config = v1.Descriptor{MediaType: types.OCIConfigJSON, Digest: ch, Size: cs}
	raw, err := json.Marshal(m)
	if err != nil {
		return imported{}, err
	}
	img, err := newFileImage(types.OCIManifestSchema1, raw, cfgRaw, func(h v1.Hash) (io.ReadCloser, error) {
		l, ok := byDiff[h]
		if !ok {
			return nil, fmt.Errorf("no layer %s", h)
		}
		return l.Uncompressed()
	})
	if err != nil {
		return imported{}, err
	}
	h, err := img.Digest()
	if err != nil {
		return imported{}, err
	}
	r, _, err := describe(h, img, false)
	if err != nil {
		return imported{}, err
	}
	return imported{res: r, img: img}, nil
}

// hashUncompressed checks that the uncompressed layer l hashes to its
// diff ID want, and returns its size.
func hashUncompressed(ctx context.Context, l v1.Layer, want v1.Hash) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	rc, err := l.Uncompressed()
	if err != nil {
		return 0, err
	}
	defer rc.Close()
	h := sha256.New()
	n, err := io.Copy(h, rc)
	if err != nil {
		return 0, fmt.Errorf("layer %s: %w", want, err)
	}
	if got := "sha256:" + hex.EncodeToString(h.Sum(nil)); got != want.String() {
		return 0, &digestError{what: "layer with diff ID " + want.String(), want: want.String(), got: got}
	}
	return n, nil
}

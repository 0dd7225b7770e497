package divergence

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"path"
	"strconv"

	ggcrv1 "github.com/google/go-containerregistry/pkg/v1"
)

// Entry is one path of an unpacked artifact.
type Entry struct {
	Path    string
	Kind    string // file, dir, symlink, hardlink, other
	Mode    int64  // permission bits
	UID     int
	GID     int
	Owner   string // user:group names, when the archive records them
	ModTime int64  // Unix seconds; 0 when the format has none
	Link    string
	Data    []byte
	// Archive is set on archives that were unpacked into their own entries.
	Archive bool
	// Order is the entry's position in its archive.
	Order int
}

// Tree is an unpacked artifact: its entries, and the order of each
// archive's members.
type Tree struct {
	Name    string
	Entries map[string]*Entry
	// Orders lists each archive's member paths in archive order.
	Orders map[string][]string
	// Notes are archive-level facts (gzip header times) keyed by path.
	Notes map[string]map[string]string
}

// Limits bound what is unpacked.
const (
	maxDepth     = 4
	maxEntryData = 256 << 20
	maxTotal     = 2 << 30
)

type unpacker struct {
	t     *Tree
	total int64
}

func newTree(name string) *Tree {
	return &Tree{Name: name, Entries: map[string]*Entry{}, Orders: map[string][]string{}, Notes: map[string]map[string]string{}}
}

// FromFile unpacks a file: archives (tar, gzip, zip) become their members.
func FromFile(name string, data []byte) (*Tree, error) {
	u := &unpacker{t: newTree(name)}
	if err := u.add(&Entry{Path: name, Kind: "file", Data: data}, 0); err != nil {
		return nil, err
	}
	return u.t, nil
}

// FileArtifactType is the config media type of accord's file artifacts: the
// file is the single layer, named by its title annotation.
const FileArtifactType = "application/vnd.accord.file.v1"

// FromImage unpacks an OCI image: its manifest and config (as indented
// JSON) and each layer's files under layers/N.tar. An accord file artifact
// becomes the file itself.
func FromImage(ctx context.Context, name string, img ggcrv1.Image) (*Tree, error) {
	m, err := img.Manifest()
	if err != nil {
		return nil, fmt.Errorf("reading the manifest of %s: %w", name, err)
	}
	layers, err := img.Layers()
	if err != nil {
		return nil, err
	}
	u := &unpacker{t: newTree(name)}
	if string(m.Config.MediaType) == FileArtifactType && len(layers) == 1 {
		title := m.Layers[0].Annotations["org.opencontainers.image.title"]
		if title == "" {
			title = "file"
		}
		data, err := readLayer(layers[0], false)
		if err != nil {
			return nil, err
		}
		return u.t, u.add(&Entry{Path: title, Kind: "file", Data: data}, 0)
	}
	mb, _ := img.RawManifest()
	cb, err := img.RawConfigFile()
	if err != nil {
		return nil, err
	}
	if err := u.add(&Entry{Path: "manifest.json", Kind: "file", Data: indent(mb)}, maxDepth); err != nil {
		return nil, err
	}
	if err := u.add(&Entry{Path: "config.json", Kind: "file", Data: indent(cb)}, maxDepth); err != nil {
		return nil, err
	}
	for i, l := range layers {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		data, err := readLayer(l, true)
		if err != nil {
			return nil, fmt.Errorf("reading layer %d of %s: %w", i, name, err)
		}
		if err := u.add(&Entry{Path: "layers/" + strconv.Itoa(i) + ".tar", Kind: "file", Data: data}, 0); err != nil {
			return nil, err
		}
	}
	return u.t, nil
}

func readLayer(l ggcrv1.Layer, uncompressed bool) ([]byte, error) {
	var rc io.ReadCloser
	var err error
	if uncompressed {
		rc, err = l.Uncompressed()
	} else {
		rc, err = l.Compressed()
	}
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(io.LimitReader(rc, maxTotal))
}

func indent(b []byte) []byte {
	var out bytes.Buffer
	if json.Indent(&out, b, "", "  ") != nil {
		return b
	}
	return out.Bytes()
}

// add records e and, for an archive, its members below e.Path + "!/".
func (u *unpacker) add(e *Entry, depth int) error {
	u.total += int64(len(e.Data))
	if u.total > maxTotal {
		return fmt.Errorf("%s: more than %d bytes unpacked", u.t.Name, int64(maxTotal))
	}
	u.t.Entries[e.Path] = e
	if e.Kind != "file" || depth >= maxDepth {
		return nil
	}
	d := e.Data
	switch {
	case len(d) > 2 && d[0] == 0x1f && d[1] == 0x8b:
		zr, err := gzip.NewReader(bytes.NewReader(d))
		if err != nil {
			return nil // not really gzip: compared as bytes
		}
		inner, err := io.ReadAll(io.LimitReader(zr, maxEntryData))
		if err != nil {
			return nil
		}
		e.Archive = true
		u.t.Notes[e.Path] = map[string]string{"gzip mtime": strconv.FormatInt(zr.ModTime.Unix(), 10), "gzip name": zr.Name}
		base := path.Base(e.Path)
		if ext := path.Ext(base); ext == ".gz" || ext == ".tgz" {
			base = base[:len(base)-len(ext)]
			if ext == ".tgz" {
				base += ".tar"
			}
		}
		return u.add(&Entry{Path: e.Path + "!/" + base, Kind: "file", Data: inner}, depth+1)
	case isTar(d):
		e.Archive = true
		return u.untar(e.Path, d, depth)
	case len(d) > 4 && bytes.Equal(d[:4], []byte("PK\x03\x04")):
		e.Archive = true
		return u.unzip(e.Path, d, depth)
	}
	return nil
}

func isTar(d []byte) bool {
	return len(d) >= 512 && (bytes.Equal(d[257:262], []byte("ustar")))
}

func (u *unpacker) untar(parent string, d []byte, depth int) error {
	tr := tar.NewReader(bytes.NewReader(d))
	for i := 0; ; i++ {
		h, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s: %w", parent, err)
		}
		p := parent + "!/" + path.Clean("/" + h.Name)[1:]
		e := &Entry{Path: p, Mode: h.Mode & 0o7777, UID: h.Uid, GID: h.Gid, ModTime: h.ModTime.Unix(), Link: h.Linkname, Order: i}
		if h.Uname != "" || h.Gname != "" {
			e.Owner = h.Uname + ":" + h.Gname
		}
		switch h.Typeflag {
		case tar.TypeReg:
			e.Kind = "file"
			if e.Data, err = io.ReadAll(io.LimitReader(tr, maxEntryData)); err != nil {
				return err
			}
		case tar.TypeDir:
			e.Kind = "dir"
		case tar.TypeSymlink:
			e.Kind = "symlink"
		case tar.TypeLink:
			e.Kind = "hardlink"
		default:
			e.Kind = "other"
		}
		u.t.Orders[parent] = append(u.t.Orders[parent], p)
		if err := u.add(e, depth+1); err != nil {
			return err
		}
	}
}

func (u *unpacker) unzip(parent string, d []byte, depth int) error {
	zr, err := zip.NewReader(bytes.NewReader(d), int64(len(d)))
	if err != nil {
		return nil // compared as bytes
	}
	for i, f := range zr.File {
		p := parent + "!/" + path.Clean("/" + f.Name)[1:]
		e := &Entry{Path: p, Kind: "file", Mode: int64(f.Mode().Perm()), ModTime: f.Modified.Unix(), Order: i}
		if f.FileInfo().IsDir() {
			e.Kind = "dir"
		} else {
			rc, err := f.Open()
			if err != nil {
				return fmt.Errorf("%s: %w", p, err)
			}
			e.Data, err = io.ReadAll(io.LimitReader(rc, maxEntryData))
			rc.Close()
			if err != nil {
				return fmt.Errorf("%s: %w", p, err)
			}
		}
		u.t.Orders[parent] = append(u.t.Orders[parent], p)
		if err := u.add(e, depth+1); err != nil {
			return err
		}
	}
	return nil
}

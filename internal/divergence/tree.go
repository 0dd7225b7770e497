package divergence

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"sort"
	"strconv"
	"strings"

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
	// Data is the content, up to maxEntryData; Digest is the SHA-256 of
	// all of it.
	Data   []byte
	Digest string
	// Extra are archive header fields beyond the usual ones (PAX records
	// such as xattrs, device numbers), "k=v" sorted.
	Extra string
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
	// Notes are archive-level facts (gzip header times, members listed
	// more than once) keyed by path.
	Notes map[string]map[string]string
}

// note records an archive-level fact.
func (t *Tree) note(p, k, v string) {
	if t.Notes[p] == nil {
		t.Notes[p] = map[string]string{}
	}
	t.Notes[p][k] = v
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
	if err := u.add(fileEntry(name, data), 0); err != nil {
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
		// The title is the file's name, never a path.
		title := path.Base(path.Clean("/" + m.Layers[0].Annotations["org.opencontainers.image.title"]))
		if title == "/" || title == "." {
			title = "file"
		}
		data, err := readLayer(layers[0], false)
		if err != nil {
			return nil, err
		}
		return u.t, u.add(fileEntry(title, data), 0)
	}
	mb, _ := img.RawManifest()
	cb, err := img.RawConfigFile()
	if err != nil {
		return nil, err
	}
	if err := u.add(fileEntry("manifest.json", indent(mb)), maxDepth); err != nil {
		return nil, err
	}
	if err := u.add(fileEntry("config.json", indent(cb)), maxDepth); err != nil {
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
		if err := u.add(fileEntry("layers/"+strconv.Itoa(i)+".tar", data), 0); err != nil {
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

func fileEntry(p string, data []byte) *Entry {
	return &Entry{Path: p, Kind: "file", Data: data, Digest: digestOf(data)}
}

func digestOf(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

func indent(b []byte) []byte {
	var out bytes.Buffer
	if json.Indent(&out, b, "", "  ") != nil {
		return b
	}
	return out.Bytes()
}

// add records e and, for an archive, its members below e.Path + "!/". An
// archive that does not unpack is compared as bytes.
func (u *unpacker) add(e *Entry, depth int) error {
	u.total += int64(len(e.Data))
	if u.total > maxTotal {
		return fmt.Errorf("%s: more than %d bytes unpacked: %w", u.t.Name, int64(maxTotal), errTooBig)
	}
	u.t.Entries[e.Path] = e
	if e.Kind != "file" || depth >= maxDepth || len(e.Data) < 4 {
		return nil
	}
	sub := &unpacker{t: newTree(u.t.Name), total: u.total}
	ok, err := sub.unpack(e, depth)
	if err != nil {
		if errors.Is(err, errTooBig) {
			return err
		}
		ok = false
	}
	if !ok {
		return nil
	}
	e.Archive = true
	u.total = sub.total
	for p, x := range sub.t.Entries {
		u.t.Entries[p] = x
	}
	for p, o := range sub.t.Orders {
		u.t.Orders[p] = o
	}
	for p, n := range sub.t.Notes {
		u.t.Notes[p] = n
	}
	return nil
}

var errTooBig = errors.New("too much to unpack")

// unpack unpacks an archive's members into u; false when e is no archive.
func (u *unpacker) unpack(e *Entry, depth int) (bool, error) {
	d := e.Data
	switch {
	case d[0] == 0x1f && d[1] == 0x8b:
		zr, err := gzip.NewReader(bytes.NewReader(d))
		if err != nil {
			return false, nil
		}
		inner, err := io.ReadAll(io.LimitReader(zr, maxEntryData+1))
		if err != nil || len(inner) > maxEntryData {
			return false, nil
		}
		u.t.note(e.Path, "gzip mtime", strconv.FormatInt(zr.ModTime.Unix(), 10))
		u.t.note(e.Path, "gzip name", zr.Name)
		base := path.Base(e.Path)
		if ext := path.Ext(base); ext == ".gz" || ext == ".tgz" {
			base = base[:len(base)-len(ext)]
			if ext == ".tgz" {
				base += ".tar"
			}
		}
		return true, u.add(fileEntry(e.Path+"!/"+base, inner), depth+1)
	case isTar(d):
		return true, u.untar(e.Path, d, depth)
	case bytes.Equal(d[:4], []byte("PK\x03\x04")):
		return true, u.unzip(e.Path, d, depth)
	}
	return false, nil
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
		e := &Entry{Path: p, Mode: h.Mode & 0o7777, UID: h.Uid, GID: h.Gid, ModTime: h.ModTime.Unix(), Link: h.Linkname, Order: i, Extra: tarExtra(h)}
		if h.Uname != "" || h.Gname != "" {
			e.Owner = h.Uname + ":" + h.Gname
		}
		if _, dup := u.t.Entries[p]; dup {
			u.t.note(parent, "member listed more than once", p)
		}
		switch h.Typeflag {
		case tar.TypeReg:
			e.Kind = "file"
			if e.Data, e.Digest, err = readCapped(tr); err != nil {
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
		e := &Entry{Path: p, Kind: "file", Mode: int64(f.Mode().Perm()), ModTime: f.Modified.Unix(), Order: i,
			Extra: fmt.Sprintf("method=%d extra=%x comment=%q", f.Method, zipExtraWithoutTimes(f.Extra), f.Comment)}
		if _, dup := u.t.Entries[p]; dup {
			u.t.note(parent, "member listed more than once", p)
		}
		if f.FileInfo().IsDir() {
			e.Kind = "dir"
		} else {
			rc, err := f.Open()
			if err != nil {
				return fmt.Errorf("%s: %w", p, err)
			}
			e.Data, e.Digest, err = readCapped(rc)
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

// readCapped reads a member: its first maxEntryData bytes, and the digest
// of all of it.
func readCapped(r io.Reader) ([]byte, string, error) {
	h := sha256.New()
	var buf bytes.Buffer
	if _, err := io.Copy(io.MultiWriter(h, &capWriter{&buf, maxEntryData}), r); err != nil {
		return nil, "", err
	}
	return buf.Bytes(), hex.EncodeToString(h.Sum(nil)), nil
}

type capWriter struct {
	b   *bytes.Buffer
	max int
}

func (w *capWriter) Write(p []byte) (int, error) {
	if room := w.max - w.b.Len(); room > 0 {
		w.b.Write(p[:min(room, len(p))])
	}
	return len(p), nil
}

// tarExtra is what a tar header records beyond the usual fields.
func tarExtra(h *tar.Header) string {
	var kv []string
	for k, v := range h.PAXRecords {
		if k == "mtime" || k == "atime" || k == "ctime" || k == "path" || k == "linkpath" || k == "size" || k == "uid" || k == "gid" || k == "uname" || k == "gname" {
			continue
		}
		kv = append(kv, k+"="+v)
	}
	if h.Typeflag == tar.TypeChar || h.Typeflag == tar.TypeBlock {
		kv = append(kv, fmt.Sprintf("dev=%d:%d", h.Devmajor, h.Devminor))
	}
	sort.Strings(kv)
	return strings.Join(kv, " ")
}

// zipExtraWithoutTimes drops the timestamp blocks (extended timestamp
// 0x5455, NTFS 0x000a) from a zip extra field: their times are compared as
// the member's mtime.
func zipExtraWithoutTimes(extra []byte) []byte {
	var out []byte
	for len(extra) >= 4 {
		id := uint16(extra[0]) | uint16(extra[1])<<8
		n := int(uint16(extra[2]) | uint16(extra[3])<<8)
		if 4+n > len(extra) {
			return append(out, extra...)
		}
		if id != 0x5455 && id != 0x000a {
			out = append(out, extra[:4+n]...)
		}
		extra = extra[4+n:]
	}
	return append(out, extra...)
}

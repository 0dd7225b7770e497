package store

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Layout is a store in an OCI image layout directory. It is safe for
// concurrent use by several goroutines and several processes.
type Layout struct {
	dir string
}

// OpenLayout opens the layout directory dir, creating it if needed.
func OpenLayout(dir string) (*Layout, error) {
	if err := os.MkdirAll(filepath.Join(dir, "blobs", "sha256"), 0o755); err != nil {
		return nil, fmt.Errorf("opening store %s: %w", dir, err)
	}
	l := &Layout{dir: dir}
	if _, err := os.Stat(filepath.Join(dir, "oci-layout")); errors.Is(err, os.ErrNotExist) {
		if err := writeAtomic(filepath.Join(dir, "oci-layout"), []byte(`{"imageLayoutVersion":"1.0.0"}`)); err != nil {
			return nil, fmt.Errorf("opening store %s: %w", dir, err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "index.json")); errors.Is(err, os.ErrNotExist) {
		if err := writeAtomic(filepath.Join(dir, "index.json"), []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}`)); err != nil {
			return nil, fmt.Errorf("opening store %s: %w", dir, err)
		}
	}
	return l, nil
}

// Dir returns the layout directory.
func (l *Layout) Dir() string { return l.dir }

func (l *Layout) String() string { return l.dir }

// Image implements [Store].
func (l *Layout) Image(_ context.Context, h v1.Hash) (v1.Image, error) {
	img, err := layout.Path(l.dir).Image(h)
	if err != nil {
		return nil, fmt.Errorf("image %s in store %s: %w", h, l.dir, err)
	}
	return img, nil
}

// Has reports whether the blob h is present.
func (l *Layout) Has(h v1.Hash) bool {
	_, err := os.Stat(l.blobPath(h))
	return err == nil
}

// Put implements [Store]: layers, config and manifest are written first,
// the index entry last.
func (l *Layout) Put(ctx context.Context, ref string, img v1.Image) (v1.Hash, error) {
	layers, err := img.Layers()
	if err != nil {
		return v1.Hash{}, err
	}
	for _, layer := range layers {
		if err := ctx.Err(); err != nil {
			return v1.Hash{}, err
		}
		h, err := layer.Digest()
		if err != nil {
			return v1.Hash{}, err
		}
		if l.Has(h) {
			continue
		}
		if hl, ok := layer.(*HashedLayer); ok {
			// Hashed when it was made: its bytes are its digest.
			if err := l.writeHashed(h, hl.b); err != nil {
				return v1.Hash{}, err
			}
			continue
		}
		rc, err := layer.Compressed()
		if err != nil {
			return v1.Hash{}, err
		}
		err = l.writeBlob(h, rc)
		rc.Close()
		if err != nil {
			return v1.Hash{}, err
		}
	}
	cfgName, err := img.ConfigName()
	if err != nil {
		return v1.Hash{}, err
	}
	raw, err := img.RawConfigFile()
	if err != nil {
		return v1.Hash{}, err
	}
	if err := l.writeBytes(cfgName, raw); err != nil {
		return v1.Hash{}, err
	}
	desc, err := partial.Descriptor(img)
	if err != nil {
		return v1.Hash{}, err
	}
	m, err := img.RawManifest()
	if err != nil {
		return v1.Hash{}, err
	}
	if err := l.writeBytes(desc.Digest, m); err != nil {
		return v1.Hash{}, err
	}
	entry := v1.Descriptor{MediaType: desc.MediaType, Digest: desc.Digest, Size: desc.Size, ArtifactType: desc.ArtifactType}
	if ref != "" {
		entry.Annotations = map[string]string{RefAnnotation: ref}
	}
	return desc.Digest, l.addToIndex(entry)
}

func (l *Layout) blobPath(h v1.Hash) string {
	return filepath.Join(l.dir, "blobs", h.Algorithm, h.Hex)
}

func (l *Layout) writeBytes(h v1.Hash, b []byte) error {
	if l.Has(h) {
		return nil
	}
	return l.writeBlob(h, io.NopCloser(bytesReader(b)))
}

// writeBlob streams r into a temporary file, checks its digest and renames
// it into place.
func (l *Layout) writeBlob(h v1.Hash, r io.Reader) error {
	hasher := sha256.New()
	return l.writeFile(h, io.TeeReader(r, hasher), func() error {
		if got := "sha256:" + hex.EncodeToString(hasher.Sum(nil)); got != h.String() {
			return fmt.Errorf("writing blob %s: content has digest %s", h, got)
		}
		return nil
	})
}

// writeHashed writes b, whose digest h its caller computed from b itself
// (a [HashedLayer]), without hashing it again.
func (l *Layout) writeHashed(h v1.Hash, b []byte) error {
	return l.writeFile(h, bytesReader(b), func() error { return nil })
}

// writeFile copies r into a temporary file, syncs it, runs check and
// renames the file into place as blob h.
func (l *Layout) writeFile(h v1.Hash, r io.Reader, check func() error) error {
	dir := filepath.Dir(l.blobPath(h))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, ".tmp-"+h.Hex[:12]+"-")
	if err != nil {
		return fmt.Errorf("writing blob %s: %w", h, err)
	}
	defer os.Remove(f.Name())
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		return fmt.Errorf("writing blob %s: %w", h, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := check(); err != nil {
		return err
	}
	return os.Rename(f.Name(), l.blobPath(h))
}

// addToIndex adds or replaces (same ref, or same digest without ref) an
// index entry, under an exclusive lock, by atomic rename.
//
// An artifact that a newer one replaces under its ref stays in the index,
// by digest, annotated with [FormerRefAnnotation]: NAME@OLD still resolves
// and its evidence (attached by digest) still applies. Only attachments
// (refs tagged sha256-...) are replaced outright: a new attachment
// manifest carries the layers of the old one it supersedes.
func (l *Layout) addToIndex(d v1.Descriptor) error {
	unlock, err := l.lock()
	if err != nil {
		return err
	}
	defer unlock()
	p := filepath.Join(l.dir, "index.json")
	b, err := os.ReadFile(p)
	if err != nil {
		return fmt.Errorf("reading store index: %w", err)
	}
	var idx v1.IndexManifest
	if err := json.Unmarshal(b, &idx); err != nil {
		return fmt.Errorf("store index %s is corrupt: %w", p, err)
	}
	idx.Manifests = append(updateEntries(idx.Manifests, d), d)
	idx.SchemaVersion = 2
	idx.MediaType = types.OCIImageIndex
	out, err := json.Marshal(idx)
	if err != nil {
		return err
	}
	return writeAtomic(p, out)
}

// updateEntries returns the entries to keep beside the new entry d.
func updateEntries(entries []v1.Descriptor, d v1.Descriptor) []v1.Descriptor {
	ref := d.Annotations[RefAnnotation]
	var kept []v1.Descriptor
	for _, m := range entries {
		mref := m.Annotations[RefAnnotation]
		switch {
		case m.Digest == d.Digest && mref == ref && (ref != "" || m.Annotations[FormerRefAnnotation] == ""):
			continue // the same entry
		case m.Digest == d.Digest && mref == "" && m.Annotations[FormerRefAnnotation] == ref:
			continue // a former entry of ref that is current again
		case ref != "" && mref == ref && !IsAttachmentRef(ref):
			m.Annotations = map[string]string{FormerRefAnnotation: ref}
		case ref != "" && mref == ref:
			continue
		}
		kept = append(kept, m)
	}
	// One former entry per digest and ref, and none for a digest the
	// index holds under the ref anyway.
	seen := map[string]bool{}
	out := kept[:0]
	for _, m := range kept {
		if f := m.Annotations[FormerRefAnnotation]; f != "" {
			k := f + " " + m.Digest.String()
			if seen[k] || (f == ref && m.Digest == d.Digest) {
				continue
			}
			seen[k] = true
		}
		out = append(out, m)
	}
	return out
}

// FormerRefAnnotation marks an index entry that was stored under this ref
// until a newer artifact took it (accord's): the entry keeps the older
// artifact reachable by digest.
const FormerRefAnnotation = "accord.dev/former-ref"

// IsAttachmentRef reports whether ref is the reference of something
// attached beside an artifact: its tag starts with "sha256-" (see
// [AttachmentRef]). Such tags are reserved for attachments.
func IsAttachmentRef(ref string) bool {
	return strings.HasPrefix(tagOf(ref), "sha256-")
}

// Resolve returns the digest recorded under ref in the index.
func (l *Layout) Resolve(ref string) (v1.Hash, error) {
	all, err := l.ResolveAll(ref)
	if err != nil {
		return v1.Hash{}, err
	}
	return all[0], nil
}

// ResolveAll returns the digest recorded under ref, then those of the
// artifacts stored under ref before it, newest first.
func (l *Layout) ResolveAll(ref string) ([]v1.Hash, error) {
	b, err := os.ReadFile(filepath.Join(l.dir, "index.json"))
	if err != nil {
		return nil, err
	}
	var idx v1.IndexManifest
	if err := json.Unmarshal(b, &idx); err != nil {
		return nil, err
	}
	var current []v1.Hash
	var former []v1.Hash
	for _, m := range idx.Manifests {
		switch {
		case m.Annotations[RefAnnotation] == ref:
			current = append(current, m.Digest)
		case m.Annotations[FormerRefAnnotation] == ref && ref != "":
			former = append(former, m.Digest)
		}
	}
	if len(current) == 0 {
		return nil, fmt.Errorf("%q is not in store %s", ref, l.dir)
	}
	for i := len(former) - 1; i >= 0; i-- {
		current = append(current, former[i])
	}
	return current, nil
}

func (l *Layout) lock() (func(), error) {
	f, err := os.OpenFile(filepath.Join(l.dir, ".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("locking store: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("locking store: %w", err)
	}
	return func() { syscall.Flock(int(f.Fd()), syscall.LOCK_UN); f.Close() }, nil
}

func writeAtomic(p string, b []byte) error {
	f, err := os.CreateTemp(filepath.Dir(p), ".tmp-"+filepath.Base(p)+"-")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Chmod(f.Name(), 0o644); err != nil {
		return err
	}
	return os.Rename(f.Name(), p)
}

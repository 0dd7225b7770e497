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
	"sync"
	"syscall"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Layout is a store in an OCI image layout directory. It is safe for
// concurrent use by several goroutines and several processes: every change
// of index.json happens under an exclusive lock of the file .lock in the
// directory (flock), and replaces the index by rename.
type Layout struct {
	dir string
	mu  sync.Mutex // held with the file lock: waiters park here, not in flock
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
	if err := l.createIndex(); err != nil {
		return nil, fmt.Errorf("opening store %s: %w", dir, err)
	}
	return l, nil
}

// createIndex writes an empty index.json unless there is one, under the
// lock: two processes opening a new store at once must not write the empty
// index over an entry the other has added.
func (l *Layout) createIndex() error {
	p := filepath.Join(l.dir, "index.json")
	if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
		return nil
	}
	unlock, err := l.lock()
	if err != nil {
		return err
	}
	defer unlock()
	if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return writeAtomic(p, []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}`))
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
	entry, err := l.writeImage(ctx, ref, img)
	if err != nil {
		return v1.Hash{}, err
	}
	return entry.Digest, l.addToIndex(entry)
}

// attach implements [attacher]. The new layers' blobs are written first;
// the lookup of what ref holds, the new manifest and its index entry then
// happen under the store's lock, so no other writer, goroutine or process,
// can change ref in between.
func (l *Layout) attach(ctx context.Context, ref string, layers []Layer, replace func(old map[string]string) bool) (v1.Hash, error) {
	pre, err := composeAttachment(nil, layers, nil, nil)
	if err != nil {
		return v1.Hash{}, fmt.Errorf("attaching to %s: %w", ref, err)
	}
	if err := l.writeBlobs(ctx, pre); err != nil {
		return v1.Hash{}, fmt.Errorf("attaching to %s: %w", ref, err)
	}
	unlock, err := l.lock()
	if err != nil {
		return v1.Hash{}, err
	}
	defer unlock()
	old, err := lookupAttachment(ctx, l, ref)
	if err != nil {
		return v1.Hash{}, err
	}
	img, err := composeAttachment(old, layers, replace, nil)
	if err != nil {
		return v1.Hash{}, fmt.Errorf("attaching to %s: %w", ref, err)
	}
	entry, err := l.writeImage(ctx, ref, img)
	if err != nil {
		return v1.Hash{}, err
	}
	return entry.Digest, l.addToIndexLocked(entry)
}

// writeImage writes the blobs and the manifest of img, and returns the
// index entry that would record it under ref.
func (l *Layout) writeImage(ctx context.Context, ref string, img v1.Image) (v1.Descriptor, error) {
	if err := l.writeBlobs(ctx, img); err != nil {
		return v1.Descriptor{}, err
	}
	desc, err := partial.Descriptor(img)
	if err != nil {
		return v1.Descriptor{}, err
	}
	m, err := img.RawManifest()
	if err != nil {
		return v1.Descriptor{}, err
	}
	if err := l.writeBytes(desc.Digest, m); err != nil {
		return v1.Descriptor{}, err
	}
	entry := v1.Descriptor{MediaType: desc.MediaType, Digest: desc.Digest, Size: desc.Size, ArtifactType: desc.ArtifactType}
	if ref != "" {
		entry.Annotations = map[string]string{RefAnnotation: ref}
	}
	return entry, nil
}

// writeBlobs writes the layers and the config of img that are not stored.
func (l *Layout) writeBlobs(ctx context.Context, img v1.Image) error {
	layers, err := img.Layers()
	if err != nil {
		return err
	}
	for _, layer := range layers {
		if err := ctx.Err(); err != nil {
			return err
		}
		h, err := layer.Digest()
		if err != nil {
			return err
		}
		if l.Has(h) {
			continue
		}
		if hl, ok := layer.(*HashedLayer); ok {
			// Hashed when it was made: its bytes are its digest.
			if err := l.writeHashed(h, hl.b); err != nil {
				return err
			}
			continue
		}
		rc, err := layer.Compressed()
		if err != nil {
			return err
		}
		err = l.writeBlob(h, rc)
		rc.Close()
		if err != nil {
			return err
		}
	}
	cfgName, err := img.ConfigName()
	if err != nil {
		return err
	}
	raw, err := img.RawConfigFile()
	if err != nil {
		return err
	}
	return l.writeBytes(cfgName, raw)
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
	return l.addToIndexLocked(d)
}

// addToIndexLocked is [Layout.addToIndex] for a caller holding the lock.
func (l *Layout) addToIndexLocked(d v1.Descriptor) error {
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

// lock takes the store's exclusive lock: l.mu against the goroutines of
// this process that share l, then flock of .lock against everyone else
// (other processes, other Layouts of the same directory). It is not
// reentrant. It returns the unlock.
func (l *Layout) lock() (func(), error) {
	l.mu.Lock()
	f, err := os.OpenFile(filepath.Join(l.dir, ".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		l.mu.Unlock()
		return nil, fmt.Errorf("locking store %s: %w", l.dir, err)
	}
	if err := flock(f, syscall.LOCK_EX); err != nil {
		f.Close()
		l.mu.Unlock()
		return nil, fmt.Errorf("locking store %s (%s): %w", l.dir, f.Name(), err)
	}
	return func() {
		flock(f, syscall.LOCK_UN)
		f.Close()
		l.mu.Unlock()
	}, nil
}

// flock is syscall.Flock, retried when a signal interrupts it.
func flock(f *os.File, how int) error {
	for {
		err := syscall.Flock(int(f.Fd()), how)
		if !errors.Is(err, syscall.EINTR) {
			return err
		}
	}
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

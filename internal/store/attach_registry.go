package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// BaseAnnotation names, on an attachment manifest accord writes to a
// registry, the manifest it was composed from, or "none" (accord's). A
// writer that finds layers gone after its write follows these names back:
// a layer some manifest of the chain held was dropped on purpose by the
// writer that composed from it (its replace func); a layer none held was
// overwritten by a writer that never saw it, and is attached again.
const BaseAnnotation = "accord.dev/attach-base"

// ErrAttachContended means other writers kept overwriting an attachment in
// a registry without the layers [Attach] added, as often as it retried.
var ErrAttachContended = errors.New("other writers kept overwriting the attachment")

// Defaults of a [Registry]'s attach loop.
const (
	attachAttempts = 8                     // writes of one Attach
	attachSettle   = 50 * time.Millisecond // least wait before the second check
	attachWaitMax  = 2 * time.Second       // most wait before the second check
	lineageDepth   = 32                    // manifests followed back per check
)

// registryLocks serializes [Attach] per registry tag within this process.
var registryLocks keyedMutex

// attach implements [attacher]. A registry has no lock and no conditional
// write, so within this process attaches to one tag take turns, and
// against other processes each write is checked: the tag is read back
// right after the write and again after a wait (twice as long as the
// write took from its read, within attachSettle and attachWaitMax), and
// the layers this call added or saw that another writer overwrote without
// having seen them are written again, on top of what the tag then holds. Blobs
// are uploaded before the tag is read, so between the read and the write
// there is one blob (the config) and the manifest.
func (r *Registry) attach(ctx context.Context, ref string, layers []Layer, replace func(old map[string]string) bool) (v1.Hash, error) {
	tag := tagOf(ref)
	if tag == "" {
		img, err := composeAttachment(nil, layers, nil, nil)
		if err != nil {
			return v1.Hash{}, fmt.Errorf("attaching to %s: %w", ref, err)
		}
		return r.Put(ctx, ref, img)
	}
	repo, err := r.route(ref)
	if err != nil {
		return v1.Hash{}, fmt.Errorf("attaching to %s: %w", ref, err)
	}
	locks := r.locks
	if locks == nil {
		locks = &registryLocks
	}
	t := repo.Tag(tag)
	unlock := locks.lock(t.Name())
	defer unlock()
	p, err := remote.NewPusher(r.opts...)
	if err != nil {
		return v1.Hash{}, fmt.Errorf("attaching to %s: %w", ref, err)
	}
	w := &attachWriter{r: r, repo: repo, p: p, ref: ref, tag: t, replace: replace, want: map[string]mutate.Addendum{}, seen: map[v1.Hash]*v1.Manifest{}}
	for _, l := range layers {
		a := addendum(l)
		if err := p.Upload(ctx, repo, a.Layer); err != nil {
			return v1.Hash{}, fmt.Errorf("attaching to %s: uploading a layer: %w%s", ref, err, authFix(err, repo))
		}
		w.mine = append(w.mine, a)
	}
	return w.run(ctx)
}

// attachWriter is one [Registry.attach] call.
type attachWriter struct {
	r       *Registry
	repo    name.Repository // the repository of tag
	p       *remote.Pusher
	ref     string
	tag     name.Tag
	replace func(old map[string]string) bool
	mine    []mutate.Addendum
	// want holds the layers that must survive, by [layerKey]: this call's,
	// and those of every manifest it read that replace keeps, less those a
	// later writer dropped on purpose.
	want map[string]mutate.Addendum
	seen map[v1.Hash]*v1.Manifest // manifests read, by digest
}

// current is what the tag held when it was read; m is nil when nothing.
type current struct {
	h v1.Hash
	m *v1.Manifest
}

func (w *attachWriter) run(ctx context.Context) (v1.Hash, error) {
	attempts, settle := w.r.attachAttempts, w.r.attachSettle
	if attempts <= 0 {
		attempts = attachAttempts
	}
	if settle <= 0 {
		settle = attachSettle
	}
	start := time.Now()
	cur, err := w.read(ctx)
	if err != nil {
		return v1.Hash{}, err
	}
	adds := w.layersOf(cur, false)
	for _, a := range adds {
		w.want[addendumKey(a)] = a
	}
	adds = append(adds, w.mine...)
	for _, a := range w.mine {
		w.want[addendumKey(a)] = a
	}
	for attempt := 1; ; attempt++ {
		h, err := w.write(ctx, adds, cur)
		if err != nil {
			return v1.Hash{}, err
		}
		lost, err := w.settled(ctx, max(settle, min(2*time.Since(start), attachWaitMax)))
		if err != nil || len(lost) == 0 {
			return h, err
		}
		if attempt == attempts {
			return v1.Hash{}, fmt.Errorf("attaching to %s: %d layers overwritten again after %d writes: %w\n  fix: retry, or attach to %s from one process at a time", w.ref, len(lost), attempts, ErrAttachContended, w.tag)
		}
		if err := sleep(ctx, rand.N(settle)); err != nil { // desynchronize writers that collide
			return v1.Hash{}, err
		}
		start = time.Now()
		if cur, lost, err = w.check(ctx); err != nil { // what the tag holds now
			return v1.Hash{}, err
		}
		adds = w.layersOf(cur, true)
		for _, k := range sortedKeys(lost) {
			adds = append(adds, w.want[k])
		}
	}
}

// settled checks the tag right away and, when nothing is lost, again
// after wait. It returns what was lost.
func (w *attachWriter) settled(ctx context.Context, wait time.Duration) (map[string]bool, error) {
	_, lost, err := w.check(ctx)
	if err != nil || len(lost) > 0 {
		return lost, err
	}
	if err := sleep(ctx, wait); err != nil {
		return nil, err
	}
	_, lost, err = w.check(ctx)
	return lost, err
}

// layersOf returns the layers of cur to write again: those replace keeps,
// and with wanted, also the wanted ones it would drop.
func (w *attachWriter) layersOf(cur *current, wanted bool) []mutate.Addendum {
	if cur.m == nil {
		return nil
	}
	var adds []mutate.Addendum
	for _, d := range cur.m.Layers {
		_, ok := w.want[layerKey(d)]
		if (wanted && ok) || w.replace == nil || !w.replace(d.Annotations) {
			adds = append(adds, mutate.Addendum{Layer: storedLayer{d}, Annotations: d.Annotations})
		}
	}
	return adds
}

// write composes the manifest of adds on top of cur, uploads its config
// and puts the manifest under the tag.
func (w *attachWriter) write(ctx context.Context, adds []mutate.Addendum, cur *current) (v1.Hash, error) {
	img, err := attachmentImage(adds, map[string]string{BaseAnnotation: cur.base()})
	if err != nil {
		return v1.Hash{}, fmt.Errorf("attaching to %s: %w", w.ref, err)
	}
	h, err := img.Digest()
	if err != nil {
		return v1.Hash{}, fmt.Errorf("attaching to %s: %w", w.ref, err)
	}
	raw, err := img.RawConfigFile()
	if err != nil {
		return v1.Hash{}, fmt.Errorf("attaching to %s: config: %w", w.ref, err)
	}
	if err := w.p.Upload(ctx, w.repo, static.NewLayer(raw, types.OCIConfigJSON)); err != nil {
		return v1.Hash{}, fmt.Errorf("attaching to %s: uploading the config: %w", w.ref, err)
	}
	if err := w.p.Put(ctx, w.tag, img); err != nil {
		return v1.Hash{}, fmt.Errorf("attaching to %s: pushing %s: %w", w.ref, h, err)
	}
	return h, nil
}

// read returns what the tag holds now.
func (w *attachWriter) read(ctx context.Context) (*current, error) {
	d, err := remote.Get(w.tag, w.r.readOptions(ctx)...)
	var terr *transport.Error
	switch {
	case errors.As(err, &terr) && terr.StatusCode == http.StatusNotFound:
		return &current{}, nil
	case err != nil:
		return nil, fmt.Errorf("reading %s: %w", w.ref, err)
	}
	h, err := v1.NewHash(digestOf(d.Manifest))
	if err != nil {
		return nil, err
	}
	m, err := v1.ParseManifest(bytes.NewReader(d.Manifest))
	if err != nil {
		return nil, fmt.Errorf("reading %s: manifest: %w", w.ref, err)
	}
	w.seen[h] = m
	return &current{h: h, m: m}, nil
}

// check reads the tag and returns the wanted layers it lacks that no
// writer dropped on purpose. Those dropped on purpose are no longer
// wanted; those of the tag that replace keeps now are.
func (w *attachWriter) check(ctx context.Context) (*current, map[string]bool, error) {
	cur, err := w.read(ctx)
	if err != nil {
		return nil, nil, err
	}
	missing := map[string]bool{}
	for k := range w.want {
		missing[k] = true
	}
	if cur.m != nil {
		for _, d := range cur.m.Layers {
			k := layerKey(d)
			delete(missing, k)
			if _, ok := w.want[k]; !ok && (w.replace == nil || !w.replace(d.Annotations)) {
				w.want[k] = mutate.Addendum{Layer: storedLayer{d}, Annotations: d.Annotations}
			}
		}
	}
	w.dropped(ctx, cur, missing)
	return cur, missing, nil
}

// dropped follows cur's chain of bases back and takes out of missing (and
// out of w.want) every layer a manifest of the chain held: the writer that
// composed from that manifest dropped it on purpose. The chain ends at
// "none", at a manifest not written by accord, at one that cannot be
// read, or after [lineageDepth] manifests; what is still missing then was
// overwritten.
func (w *attachWriter) dropped(ctx context.Context, cur *current, missing map[string]bool) {
	if cur.m == nil {
		return
	}
	base := cur.m.Annotations[BaseAnnotation]
	for i := 0; i < lineageDepth && len(missing) > 0; i++ {
		h, err := v1.NewHash(base)
		if err != nil {
			return // "none", or no accord manifest
		}
		m, err := w.manifest(ctx, h)
		if err != nil {
			return
		}
		for _, d := range m.Layers {
			if k := layerKey(d); missing[k] {
				delete(missing, k)
				delete(w.want, k)
			}
		}
		base = m.Annotations[BaseAnnotation]
	}
}

// manifest returns the manifest h of the repository, read once.
func (w *attachWriter) manifest(ctx context.Context, h v1.Hash) (*v1.Manifest, error) {
	if m, ok := w.seen[h]; ok {
		return m, nil
	}
	d, err := remote.Get(w.repo.Digest(h.String()), w.r.readOptions(ctx)...)
	if err != nil {
		return nil, err
	}
	if got := digestOf(d.Manifest); got != h.String() {
		return nil, fmt.Errorf("manifest %s has digest %s", h, got)
	}
	m, err := v1.ParseManifest(bytes.NewReader(d.Manifest))
	if err != nil {
		return nil, err
	}
	w.seen[h] = m
	return m, nil
}

// base is the [BaseAnnotation] of a manifest composed from cur.
func (cur *current) base() string {
	if cur.m == nil {
		return "none"
	}
	return cur.h.String()
}

// layerKey identifies a layer of an attachment: its digest and its
// annotations (builders sign the same payload, with different signatures).
func layerKey(d v1.Descriptor) string {
	keys := make([]string, 0, len(d.Annotations))
	for k := range d.Annotations {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteString(d.Digest.String())
	for _, k := range keys {
		fmt.Fprintf(&b, "\x00%s=%s", k, d.Annotations[k])
	}
	return b.String()
}

func addendumKey(a mutate.Addendum) string {
	h, _ := a.Layer.Digest() // static and stored layers know their digest
	return layerKey(v1.Descriptor{Digest: h, Annotations: a.Annotations})
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// storedLayer is a layer already in the repository, known by its
// descriptor: enough to compose a manifest without reading it.
type storedLayer struct{ d v1.Descriptor }

func (l storedLayer) Digest() (v1.Hash, error) { return l.d.Digest, nil }

// DiffID is the digest: attachment layers are not compressed.
func (l storedLayer) DiffID() (v1.Hash, error)             { return l.d.Digest, nil }
func (l storedLayer) Size() (int64, error)                 { return l.d.Size, nil }
func (l storedLayer) MediaType() (types.MediaType, error)  { return l.d.MediaType, nil }
func (l storedLayer) Compressed() (io.ReadCloser, error)   { return nil, errStoredLayer }
func (l storedLayer) Uncompressed() (io.ReadCloser, error) { return nil, errStoredLayer }

var errStoredLayer = errors.New("a stored layer is composed into a manifest, not read")

// sleep waits d, or until ctx is done.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

package store

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
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
	attachSettle   = 50 * time.Millisecond // wait before the second check
	lineageDepth   = 32                    // manifests followed back per check
)

// registryLocks serializes [Attach] per registry tag within this process.
var registryLocks keyedMutex

// attach implements [attacher]. A registry has no lock and no conditional
// write, so within this process attaches to one tag take turns, and
// against other processes each write is checked: the tag is read back
// right after the write and again after a short wait, and the layers this
// call added or kept that another writer overwrote without having seen
// them are written again, on top of what the tag then holds.
func (r *Registry) attach(ctx context.Context, ref string, layers []Layer, replace func(old map[string]string) bool) (v1.Hash, error) {
	tag := tagOf(ref)
	if tag == "" {
		img, err := composeAttachment(nil, layers, nil, nil)
		if err != nil {
			return v1.Hash{}, fmt.Errorf("attaching to %s: %w", ref, err)
		}
		return r.Put(ctx, ref, img)
	}
	locks := r.locks
	if locks == nil {
		locks = &registryLocks
	}
	t := r.repo.Tag(tag)
	unlock := locks.lock(t.Name())
	defer unlock()
	w := &attachWriter{r: r, ref: ref, tag: t, replace: replace, want: map[string]mutate.Addendum{}, seen: map[v1.Hash]*v1.Manifest{}}
	for _, l := range layers {
		a := addendum(l)
		if err := remote.WriteLayer(r.repo, a.Layer, r.writeOptions(ctx)...); err != nil {
			return v1.Hash{}, fmt.Errorf("attaching to %s: uploading a layer: %w", ref, err)
		}
		w.mine = append(w.mine, a)
	}
	return w.run(ctx)
}

// attachWriter is one [Registry.attach] call.
type attachWriter struct {
	r       *Registry
	ref     string
	tag     name.Tag
	replace func(old map[string]string) bool
	mine    []mutate.Addendum
	// want holds the layers that must survive, by [layerKey]: this call's
	// and those of what it read that replace kept, less those a later
	// writer dropped on purpose.
	want map[string]mutate.Addendum
	seen map[v1.Hash]*v1.Manifest // manifests read, by digest
}

// current is what the tag held when it was read; img is nil when nothing.
type current struct {
	img v1.Image
	h   v1.Hash
	m   *v1.Manifest
}

func (w *attachWriter) run(ctx context.Context) (v1.Hash, error) {
	cur, err := w.read(ctx)
	if err != nil {
		return v1.Hash{}, err
	}
	img, err := w.first(cur)
	if err != nil {
		return v1.Hash{}, err
	}
	attempts, settle := w.r.attachAttempts, w.r.attachSettle
	if attempts <= 0 {
		attempts = attachAttempts
	}
	if settle <= 0 {
		settle = attachSettle
	}
	for attempt := 1; ; attempt++ {
		h, err := w.write(ctx, img)
		if err != nil {
			return v1.Hash{}, err
		}
		cur, lost, err := w.check(ctx)
		if err == nil && len(lost) == 0 {
			if err := sleep(ctx, settle); err != nil {
				return v1.Hash{}, err
			}
			cur, lost, err = w.check(ctx)
		}
		if err != nil {
			return v1.Hash{}, err
		}
		if len(lost) == 0 {
			return h, nil
		}
		if attempt == attempts {
			return v1.Hash{}, fmt.Errorf("attaching to %s: %d layers overwritten again after %d writes: %w\n  fix: retry, or attach to %s from one process at a time", w.ref, len(lost), attempts, ErrAttachContended, w.tag)
		}
		if err := sleep(ctx, rand.N(settle)); err != nil { // desynchronize writers that collide
			return v1.Hash{}, err
		}
		if img, err = w.recompose(cur, lost); err != nil {
			return v1.Hash{}, err
		}
	}
}

// first composes the first write as [Attach] always has: the layers of cur
// that replace keeps, then this call's.
func (w *attachWriter) first(cur *current) (v1.Image, error) {
	var adds []mutate.Addendum
	if cur.img != nil {
		kept, err := keptLayers(cur.img, w.replace)
		if err != nil {
			return nil, fmt.Errorf("attaching to %s: %w", w.ref, err)
		}
		adds = kept
	}
	adds = append(adds, w.mine...)
	for _, a := range adds {
		k, err := addendumKey(a)
		if err != nil {
			return nil, fmt.Errorf("attaching to %s: %w", w.ref, err)
		}
		w.want[k] = a
	}
	img, err := attachmentImage(adds, map[string]string{BaseAnnotation: cur.base()})
	if err != nil {
		return nil, fmt.Errorf("attaching to %s: %w", w.ref, err)
	}
	return img, nil
}

// recompose writes what cur holds again with the lost layers: the layers of
// cur that must survive or that replace keeps, then the lost ones.
func (w *attachWriter) recompose(cur *current, lost []string) (v1.Image, error) {
	keep := func(ann map[string]string) bool { return w.replace == nil || !w.replace(ann) }
	var adds []mutate.Addendum
	if cur.img != nil {
		ls, err := cur.img.Layers()
		if err != nil {
			return nil, fmt.Errorf("attaching to %s: layers: %w", w.ref, err)
		}
		if len(ls) != len(cur.m.Layers) {
			return nil, fmt.Errorf("attaching to %s: manifest names %d layers, the image has %d", w.ref, len(cur.m.Layers), len(ls))
		}
		for i, d := range cur.m.Layers {
			if _, ok := w.want[layerKey(d)]; ok || keep(d.Annotations) {
				adds = append(adds, mutate.Addendum{Layer: ls[i], Annotations: d.Annotations})
			}
		}
	}
	for _, k := range lost {
		adds = append(adds, w.want[k])
	}
	img, err := attachmentImage(adds, map[string]string{BaseAnnotation: cur.base()})
	if err != nil {
		return nil, fmt.Errorf("attaching to %s: %w", w.ref, err)
	}
	return img, nil
}

func (w *attachWriter) write(ctx context.Context, img v1.Image) (v1.Hash, error) {
	h, err := img.Digest()
	if err != nil {
		return v1.Hash{}, fmt.Errorf("attaching to %s: %w", w.ref, err)
	}
	if err := remote.Write(w.tag, img, w.r.writeOptions(ctx)...); err != nil {
		return v1.Hash{}, fmt.Errorf("attaching to %s: pushing %s: %w", w.ref, h, err)
	}
	return h, nil
}

// read returns what the tag holds now.
func (w *attachWriter) read(ctx context.Context) (*current, error) {
	img, err := lookupAttachment(ctx, w.r, w.ref)
	if err != nil || img == nil {
		return &current{}, err
	}
	h, err := img.Digest()
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", w.ref, err)
	}
	m, err := img.Manifest()
	if err != nil {
		return nil, fmt.Errorf("reading %s: manifest: %w", w.ref, err)
	}
	w.seen[h] = m
	return &current{img: img, h: h, m: m}, nil
}

// check reads the tag and returns the keys of the wanted layers it lacks
// that no writer dropped on purpose, in a stable order. Those dropped on
// purpose are no longer wanted.
func (w *attachWriter) check(ctx context.Context) (*current, []string, error) {
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
			delete(missing, layerKey(d))
		}
	}
	w.dropped(ctx, cur, missing)
	lost := make([]string, 0, len(missing))
	for k := range missing {
		lost = append(lost, k)
	}
	sort.Strings(lost)
	return cur, lost, nil
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
	d, err := remote.Get(w.r.repo.Digest(h.String()), w.r.readOptions(ctx)...)
	if err != nil {
		return nil, err
	}
	if got := digestOf(d.Manifest); got != h.String() {
		return nil, fmt.Errorf("manifest %s has digest %s", h, got)
	}
	m, err := v1.ParseManifest(strings.NewReader(string(d.Manifest)))
	if err != nil {
		return nil, err
	}
	w.seen[h] = m
	return m, nil
}

// base is the [BaseAnnotation] of a manifest composed from cur.
func (cur *current) base() string {
	if cur.img == nil {
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

func addendumKey(a mutate.Addendum) (string, error) {
	h, err := a.Layer.Digest()
	if err != nil {
		return "", err
	}
	return layerKey(v1.Descriptor{Digest: h, Annotations: a.Annotations}), nil
}

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

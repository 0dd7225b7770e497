package evidence

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"

	ggcrv1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/accord-build/accord/internal/artifact"
	"github.com/accord-build/accord/internal/store"
	"github.com/accord-build/accord/verify"
)

// Resolve finds an artifact in the store: arg is a stored name
// ("accord.dev/examples/hello", "hello") or NAME@sha256:<digest>, the
// digest of the stored manifest or, for a file artifact, of the file. It
// returns the name and the stored manifest's digest; errors are
// [*InputError]s.
func Resolve(ctx context.Context, st store.Store, arg string) (string, ggcrv1.Hash, error) {
	name, dg, hasDigest := strings.Cut(arg, "@")
	if hasDigest {
		h, err := ggcrv1.NewHash(dg)
		if err != nil {
			return "", h, inputErr(err)
		}
		rst, err := store.For(st, name) // a registry store reads it where its name says
		if err != nil {
			return "", h, inputErr(err)
		}
		if _, err := rst.Image(ctx, h); err == nil {
			return name, h, nil
		}
		// A file artifact's digest is the file's: find the stored
		// artifact under its name, or formerly under it, whose file has
		// that digest.
		if l, ok := st.(*store.Layout); ok {
			all, _ := l.ResolveAll(name)
			for _, sh := range all {
				if img, err := st.Image(ctx, sh); err == nil {
					if m, err := img.Manifest(); err == nil && len(m.Layers) == 1 && m.Layers[0].Digest == h {
						return name, sh, nil
					}
				}
			}
		}
		return name, h, nil
	}
	l, ok := st.(*store.Layout)
	if !ok {
		return "", ggcrv1.Hash{}, inputErr(fmt.Errorf("%q: give the artifact as NAME@sha256:<digest> for a registry store", arg))
	}
	h, err := l.Resolve(arg)
	if err != nil {
		return "", ggcrv1.Hash{}, inputErr(fmt.Errorf("%w\n  fix: use a name 'accord run' printed, or NAME@sha256:<digest>", err))
	}
	return arg, h, nil
}

// fetched are an artifact's attachments, being read.
type fetched struct {
	h                ggcrv1.Hash
	att, links       []store.Layer
	attErr, linksErr error
	// early is the in-toto check of the links, started as soon as they
	// are in when a layout was given to [fetch].
	early *verify.EarlyLinks
	done  chan struct{}
}

// fetch reads the attestations and links stored for name@h, concurrently
// (from a registry each is a round trip); done closes when both are read.
// With a layout (and its owner's key), the links are verified against it
// as soon as they are in ([verify.StartLinks]), while the rest is read.
func fetch(ctx context.Context, st store.Store, name string, h ggcrv1.Hash, layout, ownerKey []byte) *fetched {
	f := &fetched{h: h, done: make(chan struct{})}
	repo := store.Name(st, name)
	go func() {
		defer close(f.done)
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			f.links, f.linksErr = store.Layers(ctx, st, store.AttachmentRef(repo, h, store.LinksSuffix))
			if blobs, _ := linkBundles(f.links); len(layout) > 0 && len(blobs) > 0 {
				f.early = verify.StartLinks(blobs, layout, ownerKey)
			}
		}()
		f.att, f.attErr = store.Layers(ctx, st, store.AttachmentRef(repo, h, store.AttSuffix))
		wg.Wait()
	}()
	return f
}

// wait returns once the attachments are read and their early links
// check, if any, has finished (nil: at once).
func (f *fetched) wait() {
	if f != nil {
		<-f.done
		f.early.Wait()
	}
}

// linkBundles are the blobs of the links layers that are links bundles,
// in order, and a note for every other layer.
func linkBundles(layers []store.Layer) ([][]byte, []string) {
	var blobs [][]byte
	var notes []string
	for _, l := range layers {
		if l.MediaType != store.LinksBundleMediaType {
			notes = append(notes, fmt.Sprintf("links layer sha256:%x has media type %q, not a links bundle: ignored", sha256.Sum256(l.Blob), l.MediaType))
			continue
		}
		blobs = append(blobs, l.Blob)
	}
	return blobs, notes
}

// Read reads the artifact arg (as [Resolve] takes it) and what is stored
// beside it, for [verify.Artifact]. The digest is computed from the
// bytes: a file artifact's content, an image's manifest; and every blob
// of the stored manifest is checked against its digest and size.
// Evidence that cannot be read is a note, never a reason to stop: junk
// beside an artifact must not hide the evidence that is good.
func Read(ctx context.Context, st store.Store, arg string) (*verify.Evidence, error) {
	return ReadFor(ctx, st, arg, nil)
}

// ReadFor is [Read] for a verification against pol (nil: none): when pol
// has an in-toto layout, the links bundles are verified against it as
// soon as they are read, while the rest of the evidence is still being
// fetched (Evidence.EarlyLinks; [verify.Artifact] uses that outcome only
// for the very bundles its layout check selects).
func ReadFor(ctx context.Context, st store.Store, arg string, pol *verify.Policy) (_ *verify.Evidence, err error) {
	var layout, ownerKey []byte
	if pol != nil {
		layout, ownerKey = pol.Layout, pol.LayoutOwnerKey
	}
	// With a digest in the argument, the attachments are fetched at once,
	// concurrently with the artifact.
	var early, f *fetched
	if name, dg, ok := strings.Cut(arg, "@"); ok {
		if h, err := ggcrv1.NewHash(dg); err == nil {
			early = fetch(ctx, st, name, h, layout, ownerKey)
		}
	}
	defer func() {
		// Nothing is left running on a failure, and a fetch that was
		// not used has its early check finished.
		if err != nil || f != early {
			early.wait()
		}
	}()
	name, h, err := Resolve(ctx, st, arg)
	if err != nil {
		return nil, err
	}
	img, err := st.Image(ctx, h)
	if err != nil {
		return nil, fmt.Errorf("reading stored artifact %s: %w", arg, err)
	}
	ev, err := readArtifact(img, h)
	if err != nil {
		return nil, err
	}
	f = early
	if f == nil || f.h != h { // a name, or a file artifact's file digest
		f = fetch(ctx, st, name, h, layout, ownerKey)
	}
	<-f.done
	ev.Notes = append(ev.Notes, LayerNotes("attestations", f.attErr)...)
	ev.Notes = append(ev.Notes, LayerNotes("links", f.linksErr)...)
	for _, l := range f.att {
		ev.Attestations = append(ev.Attestations, l.Blob)
	}
	var notes []string
	ev.LinkBundles, notes = linkBundles(f.links)
	ev.Notes = append(ev.Notes, notes...)
	ev.EarlyLinks = f.early
	return ev, nil
}

// readArtifact checks the stored blobs of img (stored as h) and digests
// the artifact.
func readArtifact(img ggcrv1.Image, h ggcrv1.Hash) (*verify.Evidence, error) {
	ev := &verify.Evidence{}
	bad := false
	blobs := store.CheckBlobs(img, h)
	for _, b := range blobs {
		vb := verify.Blob{Role: b.Role, Digest: b.Digest.String()}
		if b.Err != nil {
			vb.Problem, bad = b.Err.Error(), true
		}
		ev.Blobs = append(ev.Blobs, vb)
	}
	if sha, ok := checkedFileSHA256(img, blobs); ok {
		ev.ArtifactSHA256 = sha
		return ev, nil
	}
	var err error
	if ev.ArtifactSHA256, err = ArtifactSHA256(img); err != nil {
		if !bad {
			return nil, fmt.Errorf("digesting the artifact: %w", err)
		}
		// The artifact-bytes check fails, naming the blob; no digest of
		// bytes that could not be read can match a subject.
		ev.ArtifactSHA256 = "(unreadable)"
	}
	return ev, nil
}

// checkedFileSHA256 is a file artifact's digest (hex) as [CheckBlobs]
// proved it: the digest its manifest names for its one layer, when the
// bytes read of that layer had that digest and size. Then the file is
// not read and hashed a second time; ok is false for an image, or a layer
// that did not check ([ArtifactSHA256] then reads it).
func checkedFileSHA256(img ggcrv1.Image, blobs []store.Blob) (string, bool) {
	m, err := img.Manifest()
	if err != nil || string(m.Config.MediaType) != artifact.FileArtifactType || len(m.Layers) != 1 {
		return "", false
	}
	for _, b := range blobs {
		if b.Role == "layer 1" && b.Err == nil && b.Digest == m.Layers[0].Digest && b.Digest.Algorithm == "sha256" {
			return b.Digest.Hex, true
		}
	}
	return "", false
}

// LayerNotes turns what [store.Layers] could not read (what: which
// attachment) into notes; nothing stored is no note (the checks say what
// is missing).
func LayerNotes(what string, err error) []string {
	if err == nil || errors.Is(err, store.ErrNotFound) {
		return nil
	}
	var out []string
	for _, e := range unjoin(err) {
		out = append(out, fmt.Sprintf("%s: %v: skipped", what, e))
	}
	return out
}

// unjoin splits an errors.Join; nil for nil.
func unjoin(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

// ArtifactSHA256 is the digest (hex) of an artifact's bytes: a file
// artifact's file, an image's manifest.
func ArtifactSHA256(img ggcrv1.Image) (string, error) {
	m, err := img.Manifest()
	if err != nil {
		return "", err
	}
	if string(m.Config.MediaType) != artifact.FileArtifactType {
		raw, err := img.RawManifest()
		if err != nil {
			return "", err
		}
		s := sha256.Sum256(raw)
		return hex.EncodeToString(s[:]), nil
	}
	ls, err := img.Layers()
	if err != nil || len(ls) != 1 {
		return "", fmt.Errorf("file artifact: want one layer")
	}
	rc, err := ls[0].Compressed()
	if err != nil {
		return "", err
	}
	defer rc.Close()
	hh := sha256.New()
	if _, err := io.Copy(hh, rc); err != nil {
		return "", err
	}
	return hex.EncodeToString(hh.Sum(nil)), nil
}

// StoredSHA256 is the artifact digest (hex) of the stored manifest h,
// computed from the bytes as verify does.
func StoredSHA256(ctx context.Context, st store.Store, h ggcrv1.Hash) (string, error) {
	img, err := st.Image(ctx, h)
	if err != nil {
		return "", err
	}
	return ArtifactSHA256(img)
}

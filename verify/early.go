package verify

import (
	"bytes"
	"os"
	"path/filepath"

	intoto "github.com/in-toto/in-toto-golang/in_toto"

	"github.com/accord-build/accord/attest"
)

// EarlyLinks is the in-toto verification of stored links bundles, started
// by [StartLinks] as soon as the bundles are read, while the rest of the
// evidence is still being fetched and before the provenance that decides
// which bundles count has been verified. [Artifact] takes its outcome only
// for exactly the bundles its in-toto layout check would verify (the same
// bundles in the same order, against the same layout and owner key), and
// verifies those itself otherwise: starting early changes when the links
// are checked, never which links count or how they are checked.
type EarlyLinks struct {
	layout, ownerKey []byte
	shas             []string
	done             chan struct{}
	out              linksOutcome
}

// linksOutcome is what verifying a set of bundles gave: the pipeline's
// final products and the number of link files, or the error.
type linksOutcome struct {
	final map[string]string
	files int
	err   error
}

// StartLinks starts verifying, against the signed layout and its owner's
// key, the links of every distinct bundle among blobs (the stored links
// bundles, as in [Evidence].LinkBundles), as if trusted provenance named
// them all: what the check verifies when every stored bundle is the
// artifact's own. It returns nil when the layout cannot be read (the
// layout check reports that itself).
func StartLinks(blobs [][]byte, layout, ownerKey []byte) *EarlyLinks {
	mb, _, err := loadLayout(layout)
	if err != nil {
		return nil
	}
	var bs []bundle
	seen := map[string]bool{}
	for i, b := range blobs {
		sha := attest.SHA256Hex(b)
		if !seen[sha] {
			seen[sha] = true
			bs = append(bs, bundle{index: i, sha: sha, blob: b})
		}
	}
	e := &EarlyLinks{layout: layout, ownerKey: ownerKey, done: make(chan struct{})}
	for _, b := range bs {
		e.shas = append(e.shas, b.sha)
	}
	go func() {
		defer close(e.done)
		e.out = verifyBundles(bs, mb, ownerKey)
	}()
	return e
}

// Wait returns once the verification has finished (at once for nil), so
// that nothing it wrote is left behind.
func (e *EarlyLinks) Wait() {
	if e != nil {
		<-e.done
	}
}

// outcome is the early outcome for the bundles use, verified against
// layout and ownerKey; nil when it was started on other bundles or
// another layout.
func (e *EarlyLinks) outcome(use []bundle, layout, ownerKey []byte) *linksOutcome {
	if e == nil || len(use) != len(e.shas) || !bytes.Equal(layout, e.layout) || !bytes.Equal(ownerKey, e.ownerKey) {
		return nil
	}
	for i, b := range use {
		if b.sha != e.shas[i] {
			return nil
		}
	}
	<-e.done
	return &e.out
}

// verifyBundles merges the links of the bundles and runs the in-toto
// verification over them ([attest.VerifyLinks]).
func verifyBundles(use []bundle, mb *intoto.Metablock, ownerKey []byte) linksOutcome {
	files, err := mergeBundles(use)
	if err != nil {
		return linksOutcome{err: err}
	}
	var size int64
	for _, b := range files {
		size += int64(len(b))
	}
	dir, err := attest.ScratchDir("accord-links-", size)
	if err != nil {
		return linksOutcome{err: err}
	}
	defer os.RemoveAll(dir)
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			return linksOutcome{err: err}
		}
	}
	final, err := attest.VerifyLinks(mb, ownerKey, dir)
	return linksOutcome{final: final, files: len(files), err: err}
}

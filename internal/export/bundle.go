package export

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	ggcrv1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"

	"github.com/accord-build/accord/attest"
	"github.com/accord-build/accord/internal/artifact"
	"github.com/accord-build/accord/internal/evidence"
	"github.com/accord-build/accord/internal/store"
	"github.com/accord-build/accord/verify"
)

// Options say what goes into a release bundle.
type Options struct {
	// Dir is the directory to write into (created). Required.
	Dir string
	// Policy's builders are the trusted keys: only what they signed is
	// exported. Required.
	Policy *verify.Policy
	// Pub, when set, is a builder public key file copied in as builder.pub.
	Pub string
	// Layout, when set, is a signed in-toto layout file copied in as
	// root.layout.
	Layout string
	// Warn receives a "warning: ..." line for each attachment skipped;
	// nil discards them.
	Warn io.Writer
}

// Bundle writes the release bundle of arg (as [evidence.Resolve] takes
// it) into o.Dir and returns the files written, relative to it, sorted,
// README.md last. Every blob of the artifact is checked against its
// digest and size before anything is written, and the exported copy
// again after: a bundle is complete and exact, or Bundle fails and
// removes what it wrote. Attachments it cannot read or that no trusted
// key signed are skipped with a warning. Errors in the caller's input
// are [*evidence.InputError]s.
func Bundle(ctx context.Context, st store.Store, arg string, o Options) (files []string, err error) {
	if o.Dir == "" || o.Policy == nil {
		return nil, &evidence.InputError{Err: errors.New("export: a directory and a policy are required")}
	}
	if o.Warn == nil {
		o.Warn = io.Discard
	}
	name, h, err := evidence.Resolve(ctx, st, arg)
	if err != nil {
		return nil, err
	}
	img, err := st.Image(ctx, h)
	if err != nil {
		return nil, fmt.Errorf("reading stored artifact %s: %w", arg, err)
	}
	if err := store.VerifyBlobs(img, h); err != nil {
		return nil, fmt.Errorf("refusing to export %s: %w\n  fix: the store holds other bytes than were built and signed; rebuild the artifact or restore the store", arg, err)
	}
	out, err := newBundleDir(o.Dir)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			out.remove()
		}
	}()
	if err := exportArtifact(img, h, name, arg, out); err != nil {
		return nil, err
	}
	if err := exportEvidence(ctx, st, name, h, img, arg, out, o.Policy, o.Warn); err != nil {
		return nil, err
	}
	for _, c := range []struct{ src, dst string }{{o.Pub, "builder.pub"}, {o.Layout, "root.layout"}} {
		if c.src == "" {
			continue
		}
		b, err := os.ReadFile(c.src)
		if err != nil {
			return nil, &evidence.InputError{Err: err}
		}
		if err := out.write(c.dst, b); err != nil {
			return nil, err
		}
	}
	return out.finish(name, h)
}

// finish writes the README, an index of the files written.
func (b *bundleDir) finish(name string, h ggcrv1.Hash) ([]string, error) {
	files := append([]string(nil), b.files...)
	sort.Strings(files)
	idx := fmt.Sprintf("# Release bundle: %s\n\nStored manifest: `%s`\n\n| file | what |\n|---|---|\n", name, h)
	for _, f := range files {
		idx += fmt.Sprintf("| `%s` | %s |\n", f, describe(f))
	}
	idx += "\nVerify the step links with in-toto: `in-toto-golang verify -l root.layout -k owner.pub -d links`.\n"
	if err := b.write("README.md", []byte(idx)); err != nil {
		return nil, err
	}
	return append(files, "README.md"), nil
}

// bundleDir is a release bundle being written: what it created, so that a
// failed export leaves nothing behind.
type bundleDir struct {
	dir     string
	existed bool
	files   []string // relative, in the order written
	dirs    []string // created, relative
	keep    []string // among files, there before: not removed
}

func newBundleDir(dir string) (*bundleDir, error) {
	b := &bundleDir{dir: dir}
	if st, err := os.Stat(dir); err == nil && st.IsDir() {
		b.existed = true
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	if _, err := os.Stat(filepath.Join(dir, "links")); errors.Is(err, os.ErrNotExist) {
		b.dirs = append(b.dirs, "links")
	}
	if err := os.MkdirAll(filepath.Join(dir, "links"), 0o755); err != nil {
		return nil, err
	}
	return b, nil
}

func (b *bundleDir) write(rel string, content []byte) error {
	b.files = append(b.files, rel)
	return os.WriteFile(filepath.Join(b.dir, rel), content, 0o644)
}

// remove undoes the export: the whole directory if export created it,
// else what it wrote.
func (b *bundleDir) remove() {
	if !b.existed {
		os.RemoveAll(b.dir)
		return
	}
	for _, f := range b.files {
		if !slices.Contains(b.keep, f) {
			os.RemoveAll(filepath.Join(b.dir, strings.TrimSuffix(f, "/")))
		}
	}
	for _, d := range b.dirs {
		os.Remove(filepath.Join(b.dir, d))
	}
}

// exportArtifact writes the file, or the image as an OCI layout whose
// written blobs are checked again.
func exportArtifact(img ggcrv1.Image, h ggcrv1.Hash, name, arg string, out *bundleDir) error {
	m, err := img.Manifest()
	if err != nil {
		return err
	}
	if string(m.Config.MediaType) == artifact.FileArtifactType {
		return exportFile(img, m, name, arg, out)
	}
	if _, err := os.Stat(filepath.Join(out.dir, "image")); err == nil {
		out.keep = append(out.keep, "image/") // an earlier export's: not ours to remove
	}
	out.files = append(out.files, "image/")
	p, err := layout.Write(filepath.Join(out.dir, "image"), empty.Index)
	if err != nil {
		return err
	}
	if err := p.AppendImage(img); err != nil {
		return err
	}
	written, err := p.Image(h)
	if err != nil {
		return err
	}
	if err := store.VerifyBlobs(written, h); err != nil {
		return fmt.Errorf("refusing to export %s: the copy written is not the image: %w", arg, err)
	}
	return nil
}

// exportFile writes a file artifact's file, checked against its digest.
func exportFile(img ggcrv1.Image, m *ggcrv1.Manifest, name, arg string, out *bundleDir) error {
	ls, err := img.Layers()
	if err != nil || len(ls) != 1 {
		return fmt.Errorf("file artifact %s: want one layer", arg)
	}
	rc, err := ls[0].Compressed()
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	_, err = buf.ReadFrom(rc)
	rc.Close()
	if err != nil {
		return err
	}
	if got := "sha256:" + attest.SHA256Hex(buf.Bytes()); got != m.Layers[0].Digest.String() {
		return fmt.Errorf("refusing to export %s: file %s changed while it was read (now %s)", arg, m.Layers[0].Digest, got)
	}
	return out.write(filepath.Base(name), buf.Bytes())
}

func describe(f string) string {
	switch {
	case f == "image/":
		return "the image, as an OCI image layout"
	case f == "provenance.intoto.jsonl":
		return "SLSA v1 provenance, DSSE envelopes (one per builder)"
	case f == "sbom.intoto.jsonl":
		return "SPDX SBOM attestation, DSSE envelopes"
	case f == "sbom.spdx.json":
		return "SPDX 2.3 SBOM, JSON"
	case f == "sbom.spdx":
		return "SPDX 2.3 SBOM, tag-value"
	case f == "signatures.json":
		return "cosign signatures of the image (simple signing payloads)"
	case strings.HasPrefix(f, "links/"):
		return "signed in-toto link of one step"
	case f == "builder.pub":
		return "the builder's public key"
	case f == "root.layout":
		return "the signed in-toto layout"
	}
	return "the artifact"
}

package artifact

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	ggcrv1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/accord-build/accord/internal/engine"
	"github.com/accord-build/accord/internal/store"
)

// Artifact is one verified, stored build output.
type Artifact struct {
	// Name is the image URL, or the file's name for a file artifact.
	Name string `json:"name"`
	// Kind is "image" or "artifact".
	Kind engine.OutputKind `json:"kind"`
	// URI is what the task announced.
	URI string `json:"uri"`
	// Digest is computed by accord: the image's manifest digest, or the
	// file's SHA-256.
	Digest string `json:"digest"`
	// Task is the pipeline task that produced it.
	Task string `json:"task"`
	// Stored is the manifest digest in the store.
	Stored string `json:"stored"`
}

// MismatchError is a task claiming a digest its output does not have.
type MismatchError struct {
	Task, Hint, URI, Claimed, Actual string
}

func (e *MismatchError) Error() string {
	return fmt.Sprintf("task %q claims %s %s has digest %s, but the bytes it produced have %s: refusing to record or sign it\n  fix: the task must report the digest of what it actually wrote", e.Task, e.Hint, e.URI, e.Claimed, e.Actual)
}

// ErrNotFound means an announced output is not in the task's workspaces.
var ErrNotFound = errors.New("output not found in the task's workspaces")

// FileArtifactType is the artifactType of stored file artifacts.
const FileArtifactType = "application/vnd.accord.file.v1"

// Collect verifies each output of res and puts it into st. Nothing is
// stored unless every output verifies.
//
// Unless named is false, each artifact is recorded under its name (a
// validator stores its artifacts by digest only, so that a disagreeing
// rebuild never takes over the primary's name).
func Collect(ctx context.Context, res *engine.Result, st store.Store, named bool) ([]Artifact, error) {
	mounts := map[string]map[string]string{}
	for _, t := range res.Tasks {
		mounts[t.Name] = t.Mounts
	}
	type pending struct {
		a   Artifact
		img ggcrv1.Image
	}
	var todo []pending
	for _, o := range res.Outputs {
		if err := checkName(o); err != nil {
			return nil, err
		}
	}
	for _, o := range res.Outputs {
		var p pending
		var err error
		switch o.Kind {
		case engine.Image:
			p.a, p.img, err = findImage(o, mounts[o.Task])
		default:
			p.a, p.img, err = findFile(o, mounts[o.Task])
		}
		if err != nil {
			return nil, err
		}
		todo = append(todo, p)
	}
	var out []Artifact
	for _, p := range todo {
		ref := p.a.Name
		if !named {
			ref = ""
		}
		h, err := st.Put(ctx, ref, p.img)
		if err != nil {
			return nil, fmt.Errorf("storing %s: %w", p.a.Name, err)
		}
		p.a.Stored = h.String()
		out = append(out, p.a)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// hostPath maps a path inside the task's containers to the host, through
// the task's workspace mounts (longest mount path wins). It also returns
// the mount's host directory.
func hostPath(p string, mounts map[string]string) (host, root string, ok bool) {
	p = path.Clean(strings.TrimPrefix(p, "file://"))
	best := ""
	for dest := range mounts {
		if (p == dest || strings.HasPrefix(p, dest+"/")) && len(dest) > len(best) {
			best = dest
		}
	}
	if best == "" {
		return "", "", false
	}
	return filepath.Join(mounts[best], strings.TrimPrefix(p, best)), mounts[best], true
}

// regularFileIn resolves the symlinks in p and returns the result if it is
// a regular file inside the host directory root. A step can leave a
// symlink to anything on the host in its workspace (a host file, /dev/zero,
// a FIFO); that is not an output of the run, and reading it could leak a
// host file into the store or never end.
func regularFileIn(root, p string) (string, error) {
	r, err := filepath.EvalSymlinks(root)
	if err != nil {
		return "", err
	}
	real, err := filepath.EvalSymlinks(p)
	if err != nil {
		return "", err
	}
	if rel, err := filepath.Rel(r, real); err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return "", fmt.Errorf("%s leads to %s, outside the workspace: %w", p, real, ErrNotFound)
	}
	st, err := os.Lstat(real)
	if err != nil {
		return "", err
	}
	if !st.Mode().IsRegular() {
		return "", fmt.Errorf("%s is not a regular file (%s): %w", p, st.Mode().Type(), ErrNotFound)
	}
	return real, nil
}

func normalize(d string) string {
	if d != "" && !strings.Contains(d, ":") {
		return "sha256:" + d
	}
	return d
}

// findImage looks for the claimed manifest in the OCI layouts in the task's
// workspaces and checks its digest.
func findImage(o engine.Output, mounts map[string]string) (Artifact, ggcrv1.Image, error) {
	a := Artifact{Name: o.URI, Kind: o.Kind, URI: o.URI, Task: o.Task}
	h, err := ggcrv1.NewHash(normalize(o.Digest))
	if err != nil {
		return a, nil, fmt.Errorf("task %q: %s %q is not a digest: %w", o.Task, o.Hint, o.Digest, err)
	}
	for _, host := range sortedValues(mounts) {
		dir, err := findLayout(host, h)
		if err != nil || dir == "" {
			continue
		}
		// Everything read from the layout must be a regular file in the
		// workspace: the index, the manifest, its config and its layers.
		inLayout := func(p string) error {
			if _, err := regularFileIn(host, p); err != nil {
				return fmt.Errorf("task %q announced image %s@%s: %w", o.Task, o.URI, h, err)
			}
			return nil
		}
		blob := func(d ggcrv1.Hash) string { return filepath.Join(dir, "blobs", d.Algorithm, d.Hex) }
		if err := inLayout(filepath.Join(dir, "index.json")); err != nil {
			return a, nil, err
		}
		if err := inLayout(blob(h)); err != nil {
			return a, nil, err
		}
		raw, err := os.ReadFile(blob(h))
		if err != nil {
			return a, nil, err
		}
		if got := digestOf(raw); got != h.String() {
			return a, nil, &MismatchError{Task: o.Task, Hint: o.Hint, URI: o.URI, Claimed: h.String(), Actual: got}
		}
		img, err := layout.Path(dir).Image(h)
		if err != nil {
			return a, nil, fmt.Errorf("task %q: image %s in %s: %w", o.Task, h, dir, err)
		}
		m, err := img.Manifest()
		if err != nil {
			return a, nil, fmt.Errorf("task %q: image %s in %s: %w", o.Task, h, dir, err)
		}
		for _, d := range append([]ggcrv1.Descriptor{m.Config}, m.Layers...) {
			if err := inLayout(blob(d.Digest)); err != nil {
				return a, nil, err
			}
		}
		a.Digest = h.String()
		return a, img, nil
	}
	return a, nil, fmt.Errorf("task %q announced image %s@%s: %w\n  fix: write the image as an OCI layout (index.json, blobs/) into a workspace", o.Task, o.URI, h, ErrNotFound)
}

// findLayout returns the OCI layout directory at most two levels below
// root that holds blob h.
func findLayout(root string, h ggcrv1.Hash) (string, error) {
	var found string
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil || found != "" {
			return filepath.SkipDir
		}
		rel, _ := filepath.Rel(root, p)
		if d.IsDir() && strings.Count(rel, string(filepath.Separator)) > 2 {
			return filepath.SkipDir
		}
		if d.Name() == "oci-layout" {
			dir := filepath.Dir(p)
			if _, err := os.Stat(filepath.Join(dir, "blobs", h.Algorithm, h.Hex)); err == nil {
				found = dir
			}
		}
		return nil
	})
	return found, err
}

// findFile hashes the announced file and wraps it as an OCI artifact.
func findFile(o engine.Output, mounts map[string]string) (Artifact, ggcrv1.Image, error) {
	a := Artifact{Name: fileName(o.URI), Kind: o.Kind, URI: o.URI, Task: o.Task}
	p, root, ok := hostPath(o.URI, mounts)
	if !ok {
		return a, nil, fmt.Errorf("task %q announced %s %q: %w\n  fix: use the file's path inside a workspace ($(workspaces.NAME.path)/...)", o.Task, o.Hint, o.URI, ErrNotFound)
	}
	p, err := regularFileIn(root, p)
	if err != nil {
		return a, nil, fmt.Errorf("task %q announced %s %q: %w", o.Task, o.Hint, o.URI, err)
	}
	f, err := os.Open(p)
	if err != nil {
		return a, nil, fmt.Errorf("task %q announced %s %q: %w", o.Task, o.Hint, o.URI, err)
	}
	defer f.Close()
	b, err := io.ReadAll(f)
	if err != nil {
		return a, nil, err
	}
	a.Digest = digestOf(b)
	if claimed := normalize(o.Digest); claimed != a.Digest {
		return a, nil, &MismatchError{Task: o.Task, Hint: o.Hint, URI: o.URI, Claimed: claimed, Actual: a.Digest}
	}
	img, err := FileImage(a.Name, b)
	return a, img, err
}

// fileName is the name a file artifact is stored under: the base name of
// the path the task announced.
func fileName(uri string) string { return path.Base(strings.TrimPrefix(uri, "file://")) }

// FileImage wraps a file as a single-layer OCI artifact manifest with
// artifactType [FileArtifactType]. Deterministic for the same name and bytes.
func FileImage(name string, b []byte) (ggcrv1.Image, error) {
	img, err := mutate.Append(mutate.MediaType(empty.Image, types.OCIManifestSchema1), mutate.Addendum{
		Layer:       static.NewLayer(b, "application/octet-stream"),
		Annotations: map[string]string{"org.opencontainers.image.title": name},
	})
	if err != nil {
		return nil, err
	}
	img = mutate.ConfigMediaType(img, FileArtifactType)
	cfg, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cfg.History = nil
	return mutate.ConfigFile(img, cfg)
}

func sortedValues(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for _, v := range m {
		out = append(out, v)
	}
	sort.Strings(out)
	return out
}

func digestOf(b []byte) string {
	h := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(h[:])
}

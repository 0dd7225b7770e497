package artifact

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"sort"
	"strings"
	"syscall"

	ggcrv1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
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
	// Reference is where a registry store serves it, pullable:
	// REGISTRY/REPO@sha256:<hex> (an image in the repository its name
	// gives; see store.Name). Empty for a layout store.
	Reference string `json:"reference,omitempty"`
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
	tasks := map[string]engine.TaskResult{}
	for _, t := range res.Tasks {
		tasks[t.Name] = t
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
		if err := checkRegistry(st, o); err != nil {
			return nil, err
		}
	}
	for _, o := range res.Outputs {
		var p pending
		var err error
		switch o.Kind {
		case engine.Image:
			p.a, p.img, err = findImage(o, tasks[o.Task])
		default:
			p.a, p.img, err = findFile(o, tasks[o.Task])
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
		dst, err := store.For(st, p.a.Name) // by digest too, where its name says
		if err != nil {
			return nil, fmt.Errorf("storing %s: %w", p.a.Name, err)
		}
		h, err := dst.Put(ctx, ref, p.img)
		if err != nil {
			return nil, fmt.Errorf("storing %s: %w", p.a.Name, err)
		}
		p.a.Stored = h.String()
		p.a.Reference = store.Reference(st, p.a.Name, h)
		out = append(out, p.a)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// mountOf finds the mount of container path p (the longest of the mount
// paths dests that contains it) and the rest of p below it ("." for the
// mount itself).
func mountOf(p string, dests []string) (dest, rest string, ok bool) {
	p = path.Clean(strings.TrimPrefix(p, "file://"))
	for _, d := range dests {
		if (p == d || strings.HasPrefix(p, d+"/")) && len(d) > len(dest) {
			dest = d
		}
	}
	if dest == "" {
		return "", "", false
	}
	rest = strings.TrimPrefix(strings.TrimPrefix(p, dest), "/")
	if rest == "" {
		rest = "."
	}
	return dest, rest, true
}

// openRegular opens name in fsys, a task's workspace as the engine gives
// it, which must be a regular file. The engine's FS keeps every step of
// the way inside the workspace: a symlink may lead elsewhere in it, never
// out of it (to a host file, a device, or through a subPath a later step
// replaced with a link). A FIFO, device or directory is refused before it
// is opened, and again after (the entry may have been replaced).
func openRegular(fsys fs.FS, name string) (fs.File, error) {
	if fsys == nil {
		return nil, fmt.Errorf("%s: the engine gave no file system for its workspace: %w", name, ErrNotFound)
	}
	st, err := fs.Stat(fsys, name)
	if err != nil {
		return nil, fmt.Errorf("%s is not a file in the workspace: %w: %w", name, ErrNotFound, err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file (%s): %w", name, st.Mode().Type(), ErrNotFound)
	}
	f, err := fsys.Open(name)
	if err != nil {
		return nil, fmt.Errorf("%s is not a file in the workspace: %w: %w", name, ErrNotFound, err)
	}
	if got, err := f.Stat(); err != nil || !got.Mode().IsRegular() || !sameFile(st, got) {
		f.Close()
		return nil, fmt.Errorf("%s changed while it was opened: %w", name, ErrNotFound)
	}
	return f, nil
}

// sameFile reports whether a and b are the same file where the FS says
// (host files); other engines' files are trusted to be what they stat.
func sameFile(a, b fs.FileInfo) bool {
	_, hostA := a.Sys().(*syscall.Stat_t)
	_, hostB := b.Sys().(*syscall.Stat_t)
	if !hostA || !hostB {
		return true
	}
	return os.SameFile(a, b)
}

func normalize(d string) string {
	if d != "" && !strings.Contains(d, ":") {
		return "sha256:" + d
	}
	return d
}

// findFile hashes the announced file and wraps it as an OCI artifact.
func findFile(o engine.Output, t engine.TaskResult) (Artifact, ggcrv1.Image, error) {
	a := Artifact{Name: fileName(o.URI), Kind: o.Kind, URI: o.URI, Task: o.Task}
	dest, rest, ok := mountOf(o.URI, t.MountPaths())
	if !ok {
		return a, nil, fmt.Errorf("task %q announced %s %q: %w\n  fix: use the file's path inside a workspace ($(workspaces.NAME.path)/...)", o.Task, o.Hint, o.URI, ErrNotFound)
	}
	f, err := openRegular(t.Workspaces[dest], rest)
	if err != nil {
		return a, nil, fmt.Errorf("task %q announced %s %q: %w", o.Task, o.Hint, o.URI, err)
	}
	defer f.Close()
	b, err := io.ReadAll(f)
	if err != nil {
		return a, nil, fmt.Errorf("task %q announced %s %q: %w", o.Task, o.Hint, o.URI, err)
	}
	// The one SHA-256 pass over the file: the layer keeps its digest, the
	// store writes it without hashing again, and the proof's subject and
	// SBOM take it from a.Digest.
	layer := store.NewHashedLayer(b, fileMediaType)
	h, _ := layer.Digest()
	a.Digest = h.String()
	if claimed := normalize(o.Digest); claimed != a.Digest {
		return a, nil, &MismatchError{Task: o.Task, Hint: o.Hint, URI: o.URI, Claimed: claimed, Actual: a.Digest}
	}
	img, err := fileImage(a.Name, layer)
	return a, img, err
}

// fileMediaType is the media type of a file artifact's one layer.
const fileMediaType = "application/octet-stream"

// fileName is the name a file artifact is stored under: the base name of
// the path the task announced.
func fileName(uri string) string { return path.Base(strings.TrimPrefix(uri, "file://")) }

// FileImage wraps a file as a single-layer OCI artifact manifest with
// artifactType [FileArtifactType]. Deterministic for the same name and bytes.
func FileImage(name string, b []byte) (ggcrv1.Image, error) {
	return fileImage(name, store.NewHashedLayer(b, fileMediaType))
}

func fileImage(name string, layer ggcrv1.Layer) (ggcrv1.Image, error) {
	img, err := mutate.Append(mutate.MediaType(empty.Image, types.OCIManifestSchema1), mutate.Addendum{
		Layer:       layer,
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

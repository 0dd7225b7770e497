package testutil

import (
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"testing"
)

// Catalog-style definitions (pipelines/testdata/catalog-style) are Tasks,
// StepActions and Pipelines written the way the public Tekton catalog
// writes them, laid out as it does (task/NAME/VERSION/NAME.yaml), with the
// catalog's image references. Tests run them unchanged apart from pinning
// those images.

// Images the catalog-style definitions name, as the catalog writes them.
const (
	CatalogGoImage      = "docker.io/library/golang:$(params.version)"
	CatalogBusyboxImage = "docker.io/library/busybox:1.36"
	CatalogAppImage     = "docker.io/example/app-runtime:1.0"
)

// CatalogStyleDir is the directory of the catalog-style definitions.
func CatalogStyleDir(t testing.TB) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("cannot locate the catalog-style definitions")
	}
	return filepath.Join(filepath.Dir(file), "..", "..", "pipelines", "testdata", "catalog-style")
}

// PinnedCatalogStyle writes the named catalog-style Tasks and StepActions
// ("golang-build@0.3"; without a version, the newest) into a new
// directory, flat (as accord's catalog directory is), with every image
// replaced as pins says (catalog reference -> pinned reference), and
// returns the directory. It fails on an image that pins does not cover, so
// a definition runs only as pinned.
func PinnedCatalogStyle(t testing.TB, pins map[string]string, names ...string) string {
	t.Helper()
	root := CatalogStyleDir(t)
	out := t.TempDir()
	for _, n := range names {
		name, v, _ := strings.Cut(n, "@")
		dir := filepath.Join(root, "task", name)
		if _, err := os.Stat(dir); err != nil {
			dir = filepath.Join(root, "stepaction", name)
		}
		if v == "" {
			v = newestVersion(t, dir)
		}
		WritePinned(t, filepath.Join(dir, v, name+".yaml"), filepath.Join(out, name+".yaml"), pins)
	}
	return out
}

// PinnedCatalogStylePipeline writes the named catalog-style pipeline
// (pipeline/NAME.yaml), pinned, into a new file and returns its path.
func PinnedCatalogStylePipeline(t testing.TB, name string, pins map[string]string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), name+".yaml")
	WritePinned(t, filepath.Join(CatalogStyleDir(t), "pipeline", name+".yaml"), dst, pins)
	return dst
}

// WritePinned copies src to dst, replacing each "image: REF" whose REF is
// a key of pins by its value, and fails on any other image.
func WritePinned(t testing.TB, src, dst string, pins map[string]string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(b), "\n")
	for i, l := range lines {
		indent, ref, ok := strings.Cut(l, "image: ")
		if !ok || strings.TrimSpace(indent) != "" && strings.TrimSpace(indent) != "-" {
			continue
		}
		pinned, ok := pins[strings.TrimSpace(ref)]
		if !ok {
			t.Fatalf("%s:%d: image %q has no pinned reference in the test", src, i+1, strings.TrimSpace(ref))
		}
		lines[i] = indent + "image: " + pinned
	}
	if err := os.WriteFile(dst, []byte(strings.Join(lines, "\n")), 0o644); err != nil {
		t.Fatal(err)
	}
}

// newestVersion is the highest VERSION directory under dir.
func newestVersion(t testing.TB, dir string) string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var vs []string
	for _, e := range entries {
		if e.IsDir() {
			vs = append(vs, e.Name())
		}
	}
	if len(vs) == 0 {
		t.Fatalf("%s has no version directory", dir)
	}
	sort.Strings(vs) // the versions are 0.N with N < 10
	return vs[len(vs)-1]
}

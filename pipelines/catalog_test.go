package pipelines

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/google/go-cmp/cmp"
)

func builtin(t *testing.T) *Catalog {
	t.Helper()
	c, err := Builtin(context.Background())
	if err != nil {
		t.Fatalf("Builtin: %v", err)
	}
	return c
}

// catalogFS is a writable copy of the embedded catalog.
func catalogFS(t *testing.T) fstest.MapFS {
	t.Helper()
	m := fstest.MapFS{}
	err := fs.WalkDir(embedded, "catalog", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := embedded.ReadFile(p)
		m[strings.TrimPrefix(p, "catalog/")] = &fstest.MapFile{Data: b}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

var digestRE = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)

func TestBuiltin(t *testing.T) {
	c := builtin(t)
	type def struct{ Kind, Name, File string }
	var got []def
	for _, d := range append(c.Pipelines(), c.Tasks()...) {
		got = append(got, def{d.Kind, d.Name, d.File})
		if !digestRE.MatchString(d.Digest) {
			t.Errorf("%s %s: digest %q", d.Kind, d.Name, d.Digest)
		}
	}
	want := []def{
		{"Pipeline", "go-image", "pipelines/catalog/go-image.yaml"},
		{"Task", "go-build", "pipelines/catalog/go-build.yaml"},
		{"Task", "go-mod-download", "pipelines/catalog/go-mod-download.yaml"},
		{"Task", "oci-image", "pipelines/catalog/oci-image.yaml"},
		{"Task", "source-fetch", "pipelines/catalog/source-fetch.yaml"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("catalog (-want +got):\n%s", diff)
	}
	for _, w := range want[1:] {
		if d, ok := c.Task(w.Name); !ok || d.Name != w.Name || d.Task == nil {
			t.Errorf("Task(%q) = %v, %v", w.Name, d, ok)
		}
	}
	if d, ok := c.Task("go-image"); ok {
		t.Errorf("Task(go-image) found a pipeline: %v", d)
	}
}

func TestCatalogImagesPinned(t *testing.T) {
	c := builtin(t)
	for _, d := range append(c.Pipelines(), c.Tasks()...) {
		t.Run(d.Name, func(t *testing.T) {
			if u := UnpinnedImages(d); len(u) != 0 {
				t.Errorf("unpinned images %v", u)
			}
			if d.Task == nil {
				return
			}
			if len(d.Task.Spec.Steps) == 0 {
				t.Fatal("task has no steps")
			}
			for i, s := range d.Task.Spec.Steps {
				if !IsPinned(s.Image) {
					t.Errorf("steps[%d] (%s): image %q is not pinned", i, s.Name, s.Image)
				}
			}
		})
	}
}

func TestNeedsNetwork(t *testing.T) {
	c := builtin(t)
	got := map[string]bool{}
	for _, d := range c.Tasks() {
		got[d.Name] = NeedsNetwork(d.Task)
	}
	want := map[string]bool{"go-build": false, "go-mod-download": true, "oci-image": false, "source-fetch": false}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("NeedsNetwork (-want +got):\n%s", diff)
	}
	if NeedsNetwork(nil) {
		t.Error("NeedsNetwork(nil) = true")
	}
}

func TestResolveGoImage(t *testing.T) {
	ctx := context.Background()
	r, err := builtin(t).Resolve(ctx, "go-image")
	if err != nil {
		t.Fatal(err)
	}
	if r.Pipeline.Name != "go-image" || r.Pipeline.Kind != "Pipeline" {
		t.Errorf("pipeline = %s %s", r.Pipeline.Kind, r.Pipeline.Name)
	}
	var tasks []string
	for name, d := range r.Tasks {
		tasks = append(tasks, name)
		if d.Name != name || d.Kind != "Task" || d.Task == nil {
			t.Errorf("Tasks[%q] = %s %s", name, d.Kind, d.Name)
		}
	}
	sort.Strings(tasks)
	if diff := cmp.Diff([]string{"go-build", "go-mod-download", "oci-image", "source-fetch"}, tasks); diff != "" {
		t.Errorf("tasks (-want +got):\n%s", diff)
	}

	var order []string
	var lines []string
	for _, d := range r.Definitions() {
		order = append(order, d.Kind+" "+d.Name)
		lines = append(lines, fmt.Sprintf("%s %s %s\n", d.Kind, d.Name, d.Digest))
	}
	wantOrder := []string{"Pipeline go-image", "Task go-build", "Task go-mod-download", "Task oci-image", "Task source-fetch"}
	if diff := cmp.Diff(wantOrder, order); diff != "" {
		t.Errorf("Definitions (-want +got):\n%s", diff)
	}
	// The documented closure digest: SHA-256 of the sorted lines.
	sort.Strings(lines)
	sum := sha256.Sum256([]byte(strings.Join(lines, "")))
	if want := "sha256:" + hex.EncodeToString(sum[:]); r.Digest != want {
		t.Errorf("Digest = %s, want %s", r.Digest, want)
	}

	for _, pt := range r.Pipeline.Pipeline.Spec.Tasks {
		ts, d := r.TaskSpec(&pt)
		if d == nil || d.Name != pt.TaskRef.Name || ts != &d.Task.Spec || len(ts.Steps) == 0 {
			t.Errorf("TaskSpec(%s) = %v, %v", pt.Name, ts, d)
		}
	}

	// A second, independent load gives the same digest.
	c2, err := Builtin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	r2, err := c2.Resolve(ctx, "go-image")
	if err != nil {
		t.Fatal(err)
	}
	if r2.Digest != r.Digest {
		t.Errorf("digest changed between loads: %s, then %s", r.Digest, r2.Digest)
	}
	if r2.Pipeline == r.Pipeline {
		t.Error("the second load shares definitions with the first")
	}
}

func TestResolveDigestFollowsTaskYAML(t *testing.T) {
	ctx := context.Background()
	base, err := FromFS(ctx, catalogFS(t), "pipelines/catalog")
	if err != nil {
		t.Fatal(err)
	}
	r0, err := base.Resolve(ctx, "go-image")
	if err != nil {
		t.Fatal(err)
	}
	if r1, err := builtin(t).Resolve(ctx, "go-image"); err != nil || r1.Digest != r0.Digest {
		t.Fatalf("FromFS of a copy of the catalog: digest %s, Builtin %v, %v", r0.Digest, r1, err)
	}

	for _, tc := range []struct {
		name       string
		file       string
		from, to   string
		wantChange bool
	}{
		{"env value", "go-build.yaml", "value: v1\n", "value: v2\n", true},
		{"script", "oci-image.yaml", `echo "image`, `echo "built image`, true},
		{"network annotation", "go-mod-download.yaml", "accord.dev/network: \"true\"", "accord.dev/network: \"false\"", true},
		{"comment", "source-fetch.yaml", "# source-fetch:", "# source-fetch (edited):", false},
		{"flow style", "go-build.yaml", "        uri: {type: string}\n", "        uri:\n          type: string\n", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fsys := catalogFS(t)
			old := string(fsys[tc.file].Data)
			changed := strings.Replace(old, tc.from, tc.to, 1)
			if changed == old {
				t.Fatalf("%q not found in %s", tc.from, tc.file)
			}
			fsys[tc.file] = &fstest.MapFile{Data: []byte(changed)}
			c, err := FromFS(ctx, fsys, "pipelines/catalog")
			if err != nil {
				t.Fatal(err)
			}
			r, err := c.Resolve(ctx, "go-image")
			if err != nil {
				t.Fatal(err)
			}
			if got := r.Digest != r0.Digest; got != tc.wantChange {
				t.Errorf("pipeline digest changed = %v, want %v (%s -> %s)", got, tc.wantChange, r0.Digest, r.Digest)
			}
			// Only the edited task's own digest may move.
			for _, d := range r.Definitions() {
				var before *Definition
				if d.Kind == "Pipeline" {
					before = r0.Pipeline
				} else {
					before = r0.Tasks[d.Name]
				}
				edited := d.File == "pipelines/catalog/"+tc.file
				if moved := d.Digest != before.Digest; moved != (edited && tc.wantChange) {
					t.Errorf("%s %s: digest moved = %v", d.Kind, d.Name, moved)
				}
			}
		})
	}
}

func TestResolveErrors(t *testing.T) {
	ctx := context.Background()
	c := builtin(t)
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	unknown := write("unknown.yaml", pipeline("    - name: a\n      taskRef: {name: go-build}\n    - name: b\n      taskRef: {name: go-bild}\n"))
	unknownFinally := write("unknown-finally.yaml", pipeline("    - name: a\n      taskRef: {name: go-build}\n")+"  finally:\n    - name: f\n      taskRef: {name: notify}\n")
	two := write("two.yaml", pipeline("    - name: a\n      taskRef: {name: go-build}\n")+"---\n"+strings.Replace(pipeline("    - name: a\n      taskRef: {name: go-build}\n"), "name: p\n", "name: q\n", 1))
	none := write("tasks-only.yaml", task("", ""))
	dup := write("dup.yaml", task("", "")+"---\n"+task("", ""))
	missing := filepath.Join(dir, "missing.yaml")
	catalogTasks := "go-build, go-mod-download, oci-image, source-fetch"

	for _, tc := range []struct {
		name string
		ref  string
		want where
		msg  string
		fix  string
	}{
		{
			name: "unknown task",
			ref:  unknown,
			want: where{unknown, `Pipeline "p"`, "spec.tasks[1].taskRef.name"},
			msg:  `unknown task "go-bild"`,
			fix:  catalogTasks,
		},
		{
			name: "unknown task in finally",
			ref:  unknownFinally,
			want: where{unknownFinally, `Pipeline "p"`, "spec.finally[0].taskRef.name"},
			msg:  `unknown task "notify"`,
			fix:  catalogTasks,
		},
		{
			name: "no such catalog pipeline",
			ref:  "go-imag",
			want: where{"pipelines/catalog", `Pipeline "go-imag"`, ""},
			msg:  "no such pipeline in the catalog",
			fix:  "use one of: go-image",
		},
		{
			name: "a catalog task is not a pipeline",
			ref:  "go-build",
			want: where{"pipelines/catalog", `Pipeline "go-build"`, ""},
			msg:  "no such pipeline in the catalog",
			fix:  "go-image",
		},
		{
			name: "missing file",
			ref:  missing,
			want: where{File: missing},
			msg:  "cannot read pipeline file",
			fix:  "catalog pipeline name",
		},
		{
			name: "relative missing file",
			ref:  "nope.yaml",
			want: where{File: "nope.yaml"},
			msg:  "cannot read pipeline file",
			fix:  "existing file",
		},
		{
			name: "two pipelines",
			ref:  two,
			want: where{File: two},
			msg:  "holds 2 pipelines, want exactly 1",
			fix:  "one Pipeline",
		},
		{
			name: "no pipeline",
			ref:  none,
			want: where{File: none},
			msg:  "holds 0 pipelines",
			fix:  "one Pipeline",
		},
		{
			name: "task defined twice",
			ref:  dup,
			want: where{dup, `Task "t"`, ""},
			msg:  "defined twice (also in " + dup + ")",
			fix:  "rename",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := c.Resolve(ctx, tc.ref)
			if r != nil {
				t.Error("got a resolved pipeline with the error")
			}
			checkError(t, err, badInput{want: tc.want, msg: tc.msg, fix: tc.fix}, tc.want.File)
		})
	}
}

func TestResolveFile(t *testing.T) {
	ctx := context.Background()
	c := builtin(t)
	catalogImage, err := c.Resolve(ctx, "go-image")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()

	// The catalog's go-image pipeline, as a file, resolves to the same digest.
	goImage, err := embedded.ReadFile("catalog/go-image.yaml")
	if err != nil {
		t.Fatal(err)
	}
	copyFile := filepath.Join(dir, "go-image.yaml")
	if err := os.WriteFile(copyFile, goImage, 0o644); err != nil {
		t.Fatal(err)
	}
	r, err := c.Resolve(ctx, copyFile)
	if err != nil {
		t.Fatal(err)
	}
	if r.Digest != catalogImage.Digest {
		t.Errorf("file copy of go-image: digest %s, catalog %s", r.Digest, catalogImage.Digest)
	}
	if r.Pipeline.File != copyFile || r.Tasks["go-build"].File != "pipelines/catalog/go-build.yaml" {
		t.Errorf("files: pipeline %s, go-build %s", r.Pipeline.File, r.Tasks["go-build"].File)
	}

	// A task in the same file takes precedence over the catalog's.
	goBuild, err := embedded.ReadFile("catalog/go-build.yaml")
	if err != nil {
		t.Fatal(err)
	}
	local := strings.Replace(string(goBuild), "value: v1\n", "value: v3\n", 1)
	overrideFile := filepath.Join(dir, "override.yaml")
	if err := os.WriteFile(overrideFile, []byte(string(goImage)+"---\n"+local), 0o644); err != nil {
		t.Fatal(err)
	}
	r, err = c.Resolve(ctx, overrideFile)
	if err != nil {
		t.Fatal(err)
	}
	if got := r.Tasks["go-build"]; got.File != overrideFile {
		t.Errorf("go-build from %s, want the local definition in %s", got.File, overrideFile)
	}
	if r.Tasks["oci-image"].File != "pipelines/catalog/oci-image.yaml" {
		t.Errorf("oci-image from %s, want the catalog", r.Tasks["oci-image"].File)
	}
	if r.Digest == catalogImage.Digest {
		t.Error("a changed local go-build did not change the pipeline digest")
	}

	// Inline taskSpecs need no task definitions.
	inline := filepath.Join(dir, "inline.yaml")
	if err := os.WriteFile(inline, []byte(pipeline("    - name: a\n      taskSpec:\n        steps:\n          - {name: s, image: '"+pinnedImage+"', script: echo}\n")), 0o644); err != nil {
		t.Fatal(err)
	}
	r, err = c.Resolve(ctx, inline)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Tasks) != 0 || len(r.Definitions()) != 1 {
		t.Errorf("inline pipeline resolved tasks %v", r.Tasks)
	}
	pt := r.Pipeline.Pipeline.Spec.Tasks[0]
	if ts, d := r.TaskSpec(&pt); d != nil || ts != &pt.TaskSpec.TaskSpec {
		t.Errorf("TaskSpec of an inline task = %v, %v", ts, d)
	}
}

func TestFromFS(t *testing.T) {
	ctx := context.Background()
	t.Run("same task in two files", func(t *testing.T) {
		fsys := catalogFS(t)
		fsys["zz-copy.yml"] = &fstest.MapFile{Data: fsys["go-build.yaml"].Data}
		_, err := FromFS(ctx, fsys, "cat")
		pe := asError(t, err)
		if diff := cmp.Diff(where{"cat/zz-copy.yml", `Task "go-build"`, ""}, where{pe.File, pe.Object, pe.Field}); diff != "" {
			t.Errorf("(-want +got):\n%s", diff)
		}
		if !strings.Contains(pe.Msg, "also in cat/go-build.yaml") {
			t.Errorf("Msg = %q", pe.Msg)
		}
	})
	t.Run("ignores other files and directories", func(t *testing.T) {
		fsys := catalogFS(t)
		fsys["README.md"] = &fstest.MapFile{Data: []byte("not: [yaml")}
		fsys["sub/bad.yaml"] = &fstest.MapFile{Data: []byte("not: [yaml")}
		c, err := FromFS(ctx, fsys, "cat")
		if err != nil {
			t.Fatal(err)
		}
		if n := len(c.Tasks()) + len(c.Pipelines()); n != 5 {
			t.Errorf("%d definitions, want 5", n)
		}
	})
	t.Run("a bad file names its path", func(t *testing.T) {
		fsys := catalogFS(t)
		fsys["bad.yaml"] = &fstest.MapFile{Data: []byte(task("", "      scrpt: x\n"))}
		_, err := FromFS(ctx, fsys, "cat")
		if pe := asError(t, err); pe.File != "cat/bad.yaml" {
			t.Errorf("File = %q, want cat/bad.yaml", pe.File)
		}
	})
}

// TestDigestGolden pins the digests of fixed definitions, so a change in
// how digests are computed (a Tekton upgrade changing defaults or
// conversion, say) is noticed: recorded provenance refers to them. The
// catalog itself is not pinned here; its digests move whenever its builder
// image does (hack/update-catalog-digests.sh). Run go test -update only if
// a change in the canonical form is intended.
func TestDigestGolden(t *testing.T) {
	ctx := context.Background()
	fixtures := []struct{ name, yaml string }{
		{"v1 Task", v1Task},
		{"v1beta1 Task", v1beta1Task},
		{"v1beta1 Pipeline", v1beta1Pipeline},
		{"Pipeline with finally and inline taskSpec", pipeline("    - name: a\n      taskRef: {name: go-build}\n      params: [{name: name, value: app}]\n") +
			"  finally:\n    - name: f\n      taskSpec:\n        steps:\n          - {name: s, image: '" + pinnedImage + "', script: echo done}\n"},
	}
	var b bytes.Buffer
	for _, f := range fixtures {
		defs, err := Parse(ctx, "fixture.yaml", []byte(f.yaml))
		if err != nil {
			t.Fatalf("%s: %v", f.name, err)
		}
		for _, d := range defs {
			fmt.Fprintf(&b, "%s: %s %s %s\n", f.name, d.Kind, d.Name, d.Digest)
		}
	}
	checkGolden(t, "digests.golden", b.Bytes())
}

package pipelines

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestDigestCoversExecution: every field that changes what a step does, or
// where it may reach, changes the definition's digest, annotations accord
// interprets included (accord.dev/network gives the host network); layout,
// comments, key order and tool noise do not.
func TestDigestCoversExecution(t *testing.T) {
	ctx := context.Background()
	const meta = "metadata:\n  name: t\n"
	base := task("", "")
	withMeta := func(lines string) string { return strings.Replace(base, meta, meta+lines, 1) }
	withStep := func(lines string) string { return task("", lines) }
	tests := []struct {
		name, yaml string
		changes    bool
	}{
		{"network annotation true", withMeta("  annotations:\n    accord.dev/network: \"true\"\n"), true},
		{"network annotation false", withMeta("  annotations:\n    accord.dev/network: \"false\"\n"), true},
		{"another annotation", withMeta("  annotations:\n    example.com/cache: \"on\"\n"), true},
		{"a label", withMeta("  labels:\n    app.kubernetes.io/version: \"2\"\n"), true},
		{"step image", strings.Replace(base, pinnedImage, strings.Replace(pinnedImage, "eee4", "eee5", 1), 1), true},
		{"step script", strings.Replace(base, "script: echo hi", "script: echo pwned", 1), true},
		{"step env", withStep("      env:\n        - {name: GOFLAGS, value: -mod=mod}\n"), true},
		{"step securityContext runAsUser", withStep("      securityContext: {runAsUser: 1000}\n"), true},
		{"step securityContext runAsNonRoot", withStep("      securityContext: {runAsNonRoot: true}\n"), true},
		{"step onError", withStep("      onError: continue\n"), true},
		{"step args", withStep("      args: [-x]\n"), true},
		{"step timeout", withStep("      timeout: 1h\n"), true},
		{"step workingDir", withStep("      workingDir: /tmp\n"), true},
		{"task workspace", task("  workspaces:\n    - name: extra\n", ""), true},
		{"kubectl's last-applied copy", withMeta("  annotations:\n    kubectl.kubernetes.io/last-applied-configuration: '{}'\n"), false},
		{"empty annotations", withMeta("  annotations: {}\n"), false},
		{"whitespace and comments", strings.ReplaceAll(base, "\n", "   # c\n\n"), false},
		{"key order", "kind: Task\napiVersion: tekton.dev/v1\nspec:\n  steps:\n    - script: echo hi\n      image: " + pinnedImage + "\n      name: s\nmetadata: {name: t}\n", false},
		{"flow style", `{"apiVersion": "tekton.dev/v1", "kind": "Task", "metadata": {"name": "t"}, "spec": {"steps": [{"name": "s", "image": "` + pinnedImage + `", "script": "echo hi"}]}}`, false},
	}
	want := digestOfYAML(t, ctx, base)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := digestOfYAML(t, ctx, tc.yaml)
			if changed := got != want; changed != tc.changes {
				t.Errorf("digest changed = %v, want %v (%s -> %s)", changed, tc.changes, want, got)
			}
		})
	}

	// A Pipeline's inline task: its metadata is in the pipeline's spec.
	inline := func(meta string) string {
		return pipeline("    - name: a\n      taskSpec:\n" + meta + "        steps:\n          - {name: s, image: '" + pinnedImage + "', script: echo}\n")
	}
	if digestOfYAML(t, ctx, inline("")) == digestOfYAML(t, ctx, inline("        metadata:\n          annotations: {accord.dev/network: \"true\"}\n")) {
		t.Error("an inline task's network annotation left the pipeline digest unchanged")
	}
}

func digestOfYAML(t *testing.T, ctx context.Context, y string) string {
	t.Helper()
	defs, err := Parse(ctx, "f.yaml", []byte(y))
	if err != nil {
		t.Fatalf("%v\n%s", err, y)
	}
	return defs[0].Digest
}

// TestLocalOverrideChangesPipelineDigest: a pipeline file whose Task of a
// catalog name differs from the catalog's in anything accord reads (its
// network annotation, a step) has another pipeline digest, so a policy
// pinning the catalog's digest refuses what it built. A byte-for-byte copy
// runs the same thing and keeps the digest: digests name content.
func TestLocalOverrideChangesPipelineDigest(t *testing.T) {
	ctx := context.Background()
	c := builtin(t)
	catalog, err := c.Resolve(ctx, "go-image")
	if err != nil {
		t.Fatal(err)
	}
	goImage, _ := embedded.ReadFile("catalog/go-image.yaml")
	goBuild, _ := embedded.ReadFile("catalog/go-build.yaml")
	meta := "metadata:\n  name: go-build\n"
	for _, tc := range []struct {
		name, task string
		changes    bool
	}{
		{"network annotation added", strings.Replace(string(goBuild), meta, meta+"  annotations:\n    accord.dev/network: \"true\"\n", 1), true},
		{"label added", strings.Replace(string(goBuild), meta, meta+"  labels: {tier: fast}\n", 1), true},
		{"step env changed", strings.Replace(string(goBuild), "value: v1\n", "value: v3\n", 1), true},
		{"step script changed", strings.Replace(string(goBuild), "go build", "go build -a", 1), true},
		{"identical copy", string(goBuild), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.changes && tc.task == string(goBuild) {
				t.Fatal("the edit did not apply")
			}
			f := filepath.Join(t.TempDir(), "override.yaml")
			if err := os.WriteFile(f, []byte(string(goImage)+"---\n"+tc.task), 0o644); err != nil {
				t.Fatal(err)
			}
			r, err := c.Resolve(ctx, f)
			if err != nil {
				t.Fatal(err)
			}
			if r.Tasks["go-build"].File != f {
				t.Fatalf("go-build came from %s, not the file", r.Tasks["go-build"].File)
			}
			if changed := r.Digest != catalog.Digest; changed != tc.changes {
				t.Errorf("pipeline digest changed = %v, want %v (%s)", changed, tc.changes, r.Digest)
			}
		})
	}
}

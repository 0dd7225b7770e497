package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// scriptPipeline turns what a few dozen tools compute into one file
// artifact: nothing in it may depend on the runtime (or the kernel).
func scriptPipeline(image string) string {
	return `apiVersion: tekton.dev/v1
kind: Pipeline
metadata: {name: script}
spec:
  workspaces: [{name: source}, {name: out}]
  tasks:
    - name: compute
      workspaces: [{name: out, workspace: out}]
      taskSpec:
        workspaces: [{name: out}]
        results:
          - name: FILE_ARTIFACT_OUTPUTS
            type: object
            properties: {uri: {type: string}, digest: {type: string}}
        steps:
          - name: tree
            image: "` + image + `"
            script: |
              #!/bin/sh
              set -eu
              mkdir -p /tmp/t/a/b /tmp/t/c
              seq 1 2000 > /tmp/t/a/b/numbers
              for i in $(seq 1 40); do printf 'file %s\n' "$i" > /tmp/t/c/f$i; done
              ln -s ../a/b/numbers /tmp/t/c/link
              cp -r /tmp/t "$(workspaces.out.path)/tree"
          - name: compute
            image: "` + image + `"
            script: |
              #!/bin/sh
              set -eu
              cd "$(workspaces.out.path)"
              f=artifact.txt
              {
                awk '{s += $1} END {print "sum", s}' tree/a/b/numbers
                find tree | sort
                cat tree/c/f* | sha256sum
                readlink tree/c/link
                wc -c < tree/a/b/numbers
                echo "epoch $SOURCE_DATE_EPOCH"
                printf 'c\nb\na\n' | sort -r | tr '\n' ' '; echo
                dd if=tree/a/b/numbers bs=512 skip=2 count=3 2>/dev/null | md5sum
                expr 6 \* 7
              } > "$f"
              d=$(sha256sum "$f" | cut -d' ' -f1)
              printf '{"uri":"%s","digest":"sha256:%s"}' "$(workspaces.out.path)/$f" "$d" > "$(results.FILE_ARTIFACT_OUTPUTS.path)"
`
}

// TestRunscMatchesRunc: the same script pipeline under runc and under
// runsc (gVisor, another kernel) gives the same artifact digest; and a
// builders file whose validator runs runsc (with the default validator
// profile: another uid, workspace root, hostname, timezone and CPU count)
// agrees with a runc primary.
func TestRunscMatchesRunc(t *testing.T) {
	stDir := builderStore(t)
	file := filepath.Join(t.TempDir(), "script.yaml")
	if err := os.WriteFile(file, []byte(scriptPipeline(strings.TrimSpace(storeOut))), 0o644); err != nil {
		t.Fatal(err)
	}
	src := t.TempDir()
	digests := map[string][]string{}
	for _, rt := range []string{"runc", "runsc"} {
		args := []string{"run", "--source", src, "--source-date-epoch", "1700000000", "--pipeline", file, "--store", stDir,
			"--runtime", rt, "--workdir", t.TempDir(), "-o", "json"}
		stdout, stderr, err := accord(t, args...)
		if err != nil {
			t.Fatalf("accord %v: %v\nstderr:\n%s", args, err, stderr)
		}
		var out runOutput
		if err := json.Unmarshal([]byte(stdout), &out); err != nil {
			t.Fatal(err)
		}
		if !out.Succeeded || out.Runtime != rt || len(out.Artifacts) != 1 {
			t.Fatalf("%s: succeeded %v (%s), runtime %q, artifacts %+v", rt, out.Succeeded, out.Reason, out.Runtime, out.Artifacts)
		}
		for _, a := range out.Artifacts {
			digests[rt] = append(digests[rt], a.Digest)
		}
	}
	if diff := cmp.Diff(digests["runc"], digests["runsc"]); diff != "" {
		t.Errorf("artifact digests (-runc +runsc):\n%s", diff)
	}

	t.Setenv("ACCORD_PASSWORD", "")
	dir := filepath.Join(t.TempDir(), "builders")
	if _, stderr, err := accord(t, "builders", "init", dir, "--validators", "1", "--validator-runtime", "runsc"); err != nil {
		t.Fatalf("builders init --validator-runtime runsc: %v\n%s", err, stderr)
	}
	stdout, stderr, err := accord(t, "run", "--source", src, "--source-date-epoch", "1700000000", "--pipeline", file, "--store", stDir,
		"--builders", "2", "--builders-file", filepath.Join(dir, "builders.yaml"), "-o", "json")
	if err != nil {
		t.Fatalf("run --builders 2 (runc primary, runsc validator): %v\nstderr:\n%s\nstdout:\n%s", err, stderr, stdout)
	}
	var cr consensusReport
	if err := json.Unmarshal([]byte(stdout), &cr); err != nil {
		t.Fatal(err)
	}
	if !cr.Consensus || len(cr.Agreeing) != 2 {
		t.Fatalf("consensus %v, agreeing %v: %s", cr.Consensus, cr.Agreeing, cr.Reason)
	}
	if d := cr.Variations["validator-1"]; len(d) < 3 || d[0] != "runtime" {
		t.Errorf("the runsc validator differs from the primary in %v", d)
	}
	for _, b := range cr.Builders {
		if want := map[string]string{"primary": "runc", "validator-1": "runsc"}[b.Builder]; b.Runtime != want {
			t.Errorf("builder %s ran with %q, want %q", b.Builder, b.Runtime, want)
		}
		for _, a := range b.Artifacts {
			if a.Digest != digests["runc"][0] {
				t.Errorf("builder %s: artifact %s, want %s", b.Builder, a.Digest, digests["runc"][0])
			}
		}
	}
}

package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// The -o json outputs of run, run --builders, rebuild, verify and diff are a
// contract: scripts and CI parse them. These golden files were captured
// before the build logic moved out of this package, and every change to
// the shape of the output shows here. Run with -update to rewrite them
// after a deliberate addition.

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

var (
	goldenDigest  = regexp.MustCompile(`sha256:[0-9a-f]{64}|[0-9a-f]{64}`)
	goldenCommit  = regexp.MustCompile(`\b[0-9a-f]{40}\b`)
	goldenSeconds = regexp.MustCompile(`"seconds": [0-9.e+-]+`)
	goldenTemp    = regexp.MustCompile(regexp.QuoteMeta(os.TempDir()) + `/[^"\s]*`)
	goldenCPUs    = regexp.MustCompile(fmt.Sprintf(`"cpus": %d\b`, runtime.NumCPU()))
	// The evidence of a difference quotes the differing bytes and where
	// they are: of a deliberately nondeterministic build, they differ on
	// every run.
	goldenEvidence = regexp.MustCompile(`("(?:a|b|at)": )"(?:[^"\\]|\\.)*"`)
)

// normalize replaces what differs from run to run (timings, temporary
// paths, digests of signed evidence, the host's CPU count) with stable
// placeholders. Digests are numbered by first appearance, so which values
// are equal still shows.
func normalize(out string) string {
	out = goldenSeconds.ReplaceAllString(out, `"seconds": 0`)
	out = goldenTemp.ReplaceAllString(out, "$$TMP")
	out = goldenCPUs.ReplaceAllString(out, `"cpus": $$NCPU`)
	out = goldenEvidence.ReplaceAllString(out, `$1"$$EVIDENCE"`)
	commits := map[string]string{}
	out = goldenCommit.ReplaceAllStringFunc(out, func(c string) string {
		if _, ok := commits[c]; !ok {
			commits[c] = fmt.Sprintf("<commit-%d>", len(commits)+1)
		}
		return commits[c]
	})
	seen := map[string]string{}
	return goldenDigest.ReplaceAllStringFunc(out, func(d string) string {
		hex := strings.TrimPrefix(d, "sha256:")
		n, ok := seen[hex]
		if !ok {
			n = fmt.Sprintf("<%d>", len(seen)+1)
			seen[hex] = n
		}
		if strings.HasPrefix(d, "sha256:") {
			return "sha256:" + n
		}
		return n
	})
}

// golden compares out, normalized, with testdata/golden/NAME.
func golden(t *testing.T, name, out string) {
	t.Helper()
	file := filepath.Join("testdata", "golden", name)
	got := normalize(out)
	if *update {
		if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(file, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("golden file: %v (run with -update to create it)", err)
	}
	if diff := cmp.Diff(string(want), got); diff != "" {
		t.Errorf("%s changed (-golden +got):\n%s", name, diff)
	}
}

// TestGoldenOutputs: the JSON of each command, agreeing and disagreeing.
func TestGoldenOutputs(t *testing.T) {
	stDir := builderStore(t)
	t.Setenv("ACCORD_NO_DIFFOSCOPE", "1")
	dir := testBuilders(t, 1)
	file := filepath.Join(dir, "builders.yaml")
	// The builders' policy without the catalog's pipeline list (these
	// pipelines are files) and with SBOMs optional (file artifacts get none).
	policy := filepath.Join(dir, "golden-policy.yaml")
	doc := "apiVersion: accord.dev/v1alpha1\nkind: Policy\nthreshold: 2\nsbom: optional\nbuilders:\n" +
		"  - {id: https://accord.dev/builders/primary, key: primary.pub}\n  - {id: https://accord.dev/builders/validator-1, key: validator-1.pub}\n"
	if err := os.WriteFile(policy, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	url := goldenRepo(t)
	jsonOf := func(name string, wantCode int, args ...string) string {
		t.Helper()
		stdout, stderr, err := accord(t, append(args, "-o", "json")...)
		if exitCode(err) != wantCode {
			t.Fatalf("%s: exit %d (%v), want %d\nstderr:\n%s\nstdout:\n%s", name, exitCode(err), err, wantCode, stderr, stdout)
		}
		golden(t, name+".json", stdout)
		return stdout
	}
	key, _ := keyPair(t, t.TempDir(), "builder") // its password is in ACCORD_PASSWORD
	src := []string{"--source", url, "--revision", "refs/heads/main", "--pipeline", "testdata/from-source.yaml", "--store", stDir}
	jsonOf("run", 0, append([]string{"run", "--key", key}, src...)...)
	jsonOf("run-failed", exitBuildFailed, "run", "--pipeline", "testdata/from-source.yaml", "--store", stDir,
		"--source", "../../examples/hello", "--source-date-epoch", "1700000000") // no file "which": the step fails
	t.Setenv("ACCORD_PASSWORD", "")

	agreed := jsonOf("run-builders", 0, append([]string{"run", "--builders", "2", "--builders-file", file}, src...)...)
	art := firstArtifact(t, agreed)
	jsonOf("verify", 0, "verify", art, "--store", stDir, "--policy", policy)
	jsonOf("rebuild", 0, "rebuild", art, "--store", stDir, "--pipeline", "testdata/from-source.yaml", "--builder", "validator-1", "--builders-file", file, "--from", "primary")

	disagreed := jsonOf("run-builders-disagree", exitNotVerified, "run", "--pipeline", "testdata/nondeterministic.yaml", "--source-date-epoch", "1700000000",
		"--store", stDir, "--builders", "2", "--builders-file", file)
	a, b := storedPair(t, disagreed, "path.txt")
	jsonOf("verify-failed", exitNotVerified, "verify", a, "--store", stDir, "--policy", policy)
	jsonOf("diff", exitNotVerified, "diff", a, b, "--store", stDir, "--policy", policy)
	jsonOf("rebuild-disagree", exitNotVerified, "rebuild", a, "--store", stDir, "--pipeline", "testdata/nondeterministic.yaml",
		"--builder", "validator-1", "--builders-file", file)
}

// firstArtifact is NAME@STORED of the primary's first artifact in a
// consensus report.
func firstArtifact(t *testing.T, out string) string {
	t.Helper()
	a, _ := storedPair(t, out, "")
	return a
}

// storedPair is NAME@STORED of the artifact named name (any, when empty) as
// the primary and the first validator stored it.
func storedPair(t *testing.T, out, name string) (string, string) {
	t.Helper()
	var cr consensusReport
	if err := json.Unmarshal([]byte(out), &cr); err != nil || len(cr.Builders) < 2 {
		t.Fatalf("consensus report: %v\n%s", err, out)
	}
	for i, a := range cr.Builders[0].Artifacts {
		if name == "" || a.Name == name {
			return a.Name + "@" + a.Stored, a.Name + "@" + cr.Builders[1].Artifacts[i].Stored
		}
	}
	t.Fatalf("no artifact %q in %s", name, out)
	return "", ""
}

// goldenRepo is a bare repository whose branch main has a file "which"
// that no other test builds: the artifacts and their evidence here are
// this test's alone in the shared store.
func goldenRepo(t *testing.T) string {
	t.Helper()
	return whichRepo(t, "golden.git", "the golden outputs\n")
}

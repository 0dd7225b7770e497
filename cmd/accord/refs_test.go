package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/accord-build/accord/attest"
	"github.com/accord-build/accord/internal/store"
)

// refRepo is a bare repository with a branch main and a tag main on
// different commits; the file "which" says which is which.
func refRepo(t *testing.T) string {
	t.Helper()
	return whichRepo(t, "app.git", "the tag\n", "the branch\n")
}

// whichRepo is a bare repository whose branch main has one commit per
// content of the file "which" (committer time 1700000000); with two, the
// first commit is tagged main.
func whichRepo(t *testing.T, name string, contents ...string) string {
	t.Helper()
	dir := t.TempDir()
	work, bare := filepath.Join(dir, "work"), filepath.Join(dir, name)
	env := append(os.Environ(), "GIT_AUTHOR_DATE=@1700000000 +0000", "GIT_COMMITTER_DATE=@1700000000 +0000", "GIT_CONFIG_GLOBAL=/dev/null",
		"GIT_AUTHOR_NAME=a", "GIT_AUTHOR_EMAIL=a@example.com", "GIT_COMMITTER_NAME=a", "GIT_COMMITTER_EMAIL=a@example.com")
	run := func(dir string, args ...string) {
		cmd := exec.Command("git", args...)
		cmd.Dir, cmd.Env = dir, env
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	run(dir, "init", "-q", "-b", "main", work)
	for i, c := range contents {
		if err := os.WriteFile(filepath.Join(work, "which"), []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
		run(work, "add", "which")
		run(work, "commit", "-q", "-m", fmt.Sprintf("commit %d", i+1))
		if i == 0 && len(contents) > 1 {
			run(work, "tag", "main")
		}
	}
	run(dir, "clone", "-q", "--bare", work, bare)
	return "file://" + bare
}

// TestAmbiguousRef: a tag named main must not pass for branch main. A
// short name that is both is refused, naming both; the tag by its full
// name builds, is recorded as refs/tags/main, and a policy that allows
// branch main rejects it.
func TestAmbiguousRef(t *testing.T) {
	stDir := builderStore(t)
	url := refRepo(t)
	dir := t.TempDir()
	key, pub := keyPair(t, dir, "builder")
	build := func(rev string) (string, error) {
		stdout, stderr, err := accord(t, "run", "--source", url, "--revision", rev, "--pipeline", "testdata/from-source.yaml",
			"--store", stDir, "--key", key, "--workdir", t.TempDir(), "-o", "json")
		if err != nil {
			return stdout + stderr, err
		}
		out := runOutput{}
		if err := json.Unmarshal([]byte(stdout), &out); err != nil || !out.Succeeded || len(out.Artifacts) != 1 {
			t.Fatalf("run %s: %v %+v\n%s", rev, err, out, stderr)
		}
		return out.Artifacts[0].Name + "@" + out.Artifacts[0].Stored, nil
	}

	out, err := build("main")
	if exitCode(err) != exitUsage || !strings.Contains(err.Error(), "refs/heads/main and refs/tags/main") || !strings.Contains(err.Error(), "fix: pass the full ref") {
		t.Fatalf("--revision main: exit %d (%v), want 2 naming both refs\n%s", exitCode(err), err, out)
	}
	tag, err := build("refs/tags/main")
	if err != nil {
		t.Fatalf("--revision refs/tags/main: %v\n%s", err, tag)
	}
	sum := storedProvenance(t, stDir, tag)
	if sum.SourceRef != "refs/tags/main" {
		t.Errorf("recorded ref %q, want refs/tags/main", sum.SourceRef)
	}
	verifyRefs := func(artifact string, cases map[string]bool) {
		t.Helper()
		for refs, ok := range cases {
			policy := filepath.Join(dir, "policy.yaml")
			doc := "apiVersion: accord.dev/v1alpha1\nkind: Policy\nsbom: optional\nbuilders: [{id: https://accord.dev/builders/local, key: " + pub + "}]\n" +
				"sources: [{uri: \"" + url + "\", refs: " + refs + "}]\n"
			if err := os.WriteFile(policy, []byte(doc), 0o644); err != nil {
				t.Fatal(err)
			}
			out, _, err := accord(t, "verify", artifact, "--store", stDir, "--policy", policy)
			if ok != (err == nil) || (!ok && (exitCode(err) != exitNotVerified || !strings.Contains(out, "FAIL source-allowed"))) {
				t.Errorf("verify %s with refs %s: exit %d (%v), want verified %v\n%s", artifact, refs, exitCode(err), err, ok, out)
			}
		}
	}
	// Verified before the next build: a second artifact under the same
	// name drops the first from the store's index (issue 8, item 6).
	verifyRefs(tag, map[string]bool{"[main]": false, "[refs/heads/main]": false, "[refs/tags/main]": true, "[\"refs/tags/*\"]": true})
	branch, err := build("refs/heads/main")
	if err != nil {
		t.Fatalf("--revision refs/heads/main: %v\n%s", err, branch)
	}
	if sum := storedProvenance(t, stDir, branch); sum.SourceRef != "refs/heads/main" || branch == tag {
		t.Errorf("branch build %s recorded ref %q, want another artifact and refs/heads/main", branch, sum.SourceRef)
	}
	verifyRefs(branch, map[string]bool{"[main]": true, "[refs/heads/main]": true, "[\"refs/tags/*\"]": false})
}

// storedProvenance is the (only) provenance stored for art.
func storedProvenance(t *testing.T, stDir, art string) *attest.Summary {
	t.Helper()
	st, err := store.Open(stDir)
	if err != nil {
		t.Fatal(err)
	}
	name, h, err := resolveArtifact(context.Background(), st, art)
	if err != nil {
		t.Fatal(err)
	}
	envs, err := attestations(context.Background(), st, name, h, attest.SLSAProvenanceV1, io.Discard)
	if err != nil || len(envs) != 1 {
		t.Fatalf("provenance of %s: %d, %v", art, len(envs), err)
	}
	sum, _, err := summaryOf(envs[0])
	if err != nil {
		t.Fatal(err)
	}
	return sum
}

// summaryOf reads a provenance envelope without checking its signature:
// for tests only (accord itself reads provenance through trustedProvenance).
func summaryOf(raw []byte) (*attest.Summary, *attest.ParsedStatement, error) {
	env, err := attest.ParseEnvelope(raw)
	if err != nil {
		return nil, nil, err
	}
	payload, err := base64.StdEncoding.DecodeString(env.Payload)
	if err != nil {
		return nil, nil, err
	}
	stmt, err := attest.ParseStatement(payload)
	if err != nil {
		return nil, nil, err
	}
	sum, err := attest.ParseProvenance(stmt.Predicate)
	return sum, stmt, err
}

package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	ggcrv1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/accord-build/accord/attest"
	"github.com/accord-build/accord/internal/divergence"
	"github.com/accord-build/accord/internal/store"
)

// testBuilders writes a builders file with n-1 validators (crun as root;
// rootless crun is refused, so runc there) and returns its directory.
func testBuilders(t *testing.T, validators int) string {
	t.Helper()
	t.Setenv("ACCORD_PASSWORD", "")
	dir := filepath.Join(t.TempDir(), "builders")
	rt := "crun"
	if os.Geteuid() != 0 {
		rt = "runc"
	}
	if _, stderr, err := accord(t, "builders", "init", dir, "--validators", itoa(validators), "--validator-runtime", rt); err != nil {
		t.Fatalf("builders init: %v\n%s", err, stderr)
	}
	if out, _, err := accord(t, "builders", "check", filepath.Join(dir, "builders.yaml")); err != nil || !strings.Contains(out, "differs in") {
		t.Fatalf("builders check: %v\n%s", err, out)
	}
	return dir
}

func itoa(n int) string { return string(rune('0' + n)) }

// released reports whether the artifact stored at digest carries the
// consensus marker.
func released(t *testing.T, st store.Store, name, digest string) bool {
	t.Helper()
	h, err := ggcrv1.NewHash(digest)
	if err != nil {
		t.Fatal(err)
	}
	layers, err := store.Layers(context.Background(), st, store.AttachmentRef(store.Name(st, name), h, releasedSuffix))
	return err == nil && len(layers) > 0
}

// TestDiagnosis injects four kinds of nondeterminism (a timestamp, the build
// path, map-order output, random bytes): two builders disagree, nothing is
// released, and the divergence reports name the right cause for each; the
// reports are signed and stored; 'accord diff' and 'accord rebuild' give
// the same diagnosis.
func TestDiagnosis(t *testing.T) {
	stDir := builderStore(t)
	t.Setenv("ACCORD_NO_DIFFOSCOPE", "1") // diffoscope is tested on its own
	// The builders run at once here (TestConsensus runs them one after
	// another, as this 2-CPU machine does by default).
	old := buildersConcurrently
	buildersConcurrently = func(int) bool { return true }
	t.Cleanup(func() { buildersConcurrently = old })
	dir := testBuilders(t, 1)
	stdout, stderr, err := accord(t, "run", "--pipeline", "testdata/nondeterministic.yaml", "--source-date-epoch", "1700000000",
		"--store", stDir, "--builders", "2", "--builders-file", filepath.Join(dir, "builders.yaml"), "-o", "json")
	if exitCode(err) != exitNotVerified {
		t.Fatalf("exit %d (%v), want 1: no consensus\nstderr:\n%s\nstdout:\n%s", exitCode(err), err, stderr, stdout)
	}
	var cr consensusReport
	if err := json.Unmarshal([]byte(stdout), &cr); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, stdout)
	}
	if cr.Consensus || len(cr.Released) != 0 || !strings.Contains(cr.Reason, "validator-1") {
		t.Errorf("consensus %v, released %v, reason %q", cr.Consensus, cr.Released, cr.Reason)
	}
	got := map[string][]divergence.Cause{}
	for _, r := range cr.Divergence {
		got[r.A.Name] = r.Causes
	}
	want := map[string][]divergence.Cause{
		"stamp.txt":  {divergence.Timestamp},
		"path.txt":   {divergence.BuildPath},
		"map.txt":    {divergence.Ordering},
		"random.bin": {divergence.Content},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("diagnosed causes (-want +got):\n%s", diff)
	}
	st, err := store.Open(stDir)
	if err != nil {
		t.Fatal(err)
	}
	primary, validator := cr.Builders[0], cr.Builders[1]
	stored := map[string][2]string{}
	for i, a := range primary.Artifacts {
		stored[a.Name] = [2]string{a.Stored, validator.Artifacts[i].Stored}
		if released(t, st, a.Name, a.Stored) {
			t.Errorf("%s was marked released without consensus", a.Name)
		}
	}

	// The report is a signed attestation stored beside the primary's artifact.
	pub, err := os.ReadFile(filepath.Join(dir, "primary.pub"))
	if err != nil {
		t.Fatal(err)
	}
	v, err := attest.LoadVerifier(pub)
	if err != nil {
		t.Fatal(err)
	}
	h, _ := ggcrv1.NewHash(stored["stamp.txt"][0])
	envs, err := attestations(context.Background(), st, "stamp.txt", h, divergence.PredicateType, io.Discard)
	if err != nil || len(envs) != 1 {
		t.Fatalf("stored divergence reports: %d, %v", len(envs), err)
	}
	env, err := attest.ParseEnvelope(envs[0])
	if err != nil {
		t.Fatal(err)
	}
	payload, err := attest.VerifyEnvelope(env, v)
	if err != nil {
		t.Fatalf("the divergence report does not verify with the primary's key: %v", err)
	}
	stmt, err := attest.ParseStatement(payload)
	if err != nil || stmt.PredicateType != divergence.PredicateType || len(stmt.Subject) != 2 {
		t.Fatalf("statement %+v, %v", stmt, err)
	}

	// accord diff says the same, from the store alone.
	for name, want := range map[string]divergence.Cause{"stamp.txt": divergence.Timestamp, "path.txt": divergence.BuildPath} {
		out, _, err := accord(t, "diff", name+"@"+stored[name][0], name+"@"+stored[name][1], "--store", stDir, "--policy", filepath.Join(dir, "policy.yaml"), "-o", "json")
		if exitCode(err) != exitNotVerified {
			t.Fatalf("diff %s: exit %d, want 1", name, exitCode(err))
		}
		var r divergence.Report
		if err := json.Unmarshal([]byte(out), &r); err != nil {
			t.Fatal(err)
		}
		if !cmp.Equal(r.Causes, []divergence.Cause{want}) || r.A.Builder != "https://accord.dev/builders/primary" {
			t.Errorf("diff %s: causes %v (builder %q), want %v", name, r.Causes, r.A.Builder, want)
		}
	}
	if _, _, err := accord(t, "diff", "random.bin@"+stored["random.bin"][0], "random.bin@"+stored["random.bin"][0], "--store", stDir); err != nil {
		t.Errorf("diff of an artifact with itself: %v, want exit 0", err)
	}

	// A validator rebuilding from the provenance alone disagrees and says why.
	stdout, stderr, err = accord(t, "rebuild", "path.txt@"+stored["path.txt"][0], "--store", stDir, "--pipeline", "testdata/nondeterministic.yaml",
		"--builder", "validator-1", "--builders-file", filepath.Join(dir, "builders.yaml"), "-o", "json")
	if exitCode(err) != exitNotVerified {
		t.Fatalf("rebuild: exit %d (%v), want 1\nstderr:\n%s", exitCode(err), err, stderr)
	}
	var rb struct {
		Agree      bool                 `json:"agree"`
		Divergence []*divergence.Report `json:"divergence"`
	}
	if err := json.Unmarshal([]byte(stdout), &rb); err != nil {
		t.Fatalf("rebuild -o json: %v\n%s", err, stdout)
	}
	if rb.Agree || len(rb.Divergence) != 1 || !cmp.Equal(rb.Divergence[0].Causes, []divergence.Cause{divergence.BuildPath}) {
		t.Errorf("rebuild report: %+v", rb)
	}
}

// TestConsensus: the example built from git by a primary and two validators
// that differ in every dimension agrees bit for bit; the artifacts are
// marked released; each validator's profile is in its provenance; a 2-of-3
// policy verifies; a fourth, independent rebuild from the provenance alone
// agrees.
func TestConsensus(t *testing.T) {
	stDir := builderStore(t)
	dir := testBuilders(t, 2)
	url, commit := gitExample(t)
	stdout, stderr, err := accord(t, "run", "--source", url, "--revision", commit, "-p", "name=hello", "-p", "image=accord.dev/examples/hello",
		"--store", stDir, "--builders", "3", "--builders-file", filepath.Join(dir, "builders.yaml"), "-o", "json")
	if err != nil {
		t.Fatalf("run --builders 3: %v\nstderr:\n%s\nstdout:\n%s", err, stderr, stdout)
	}
	var cr consensusReport
	if err := json.Unmarshal([]byte(stdout), &cr); err != nil {
		t.Fatal(err)
	}
	if !cr.Consensus || len(cr.Agreeing) != 3 || len(cr.Released) != 2 {
		t.Fatalf("consensus %v, agreeing %v, released %v: %s", cr.Consensus, cr.Agreeing, cr.Released, cr.Reason)
	}
	for name, d := range cr.Variations {
		if len(d) < 3 {
			t.Errorf("%s differs from the primary in %v only", name, d)
		}
	}
	st, err := store.Open(stDir)
	if err != nil {
		t.Fatal(err)
	}
	var image string
	for _, a := range cr.Builders[0].Artifacts {
		if !released(t, st, a.Name, a.Stored) {
			t.Errorf("%s is not marked released", a.Name)
		}
		if a.Kind == "image" {
			image = a.Name + "@" + a.Digest
		}
	}
	h, _ := ggcrv1.NewHash(strings.SplitN(image, "@", 2)[1])
	envs, err := attestations(context.Background(), st, "accord.dev/examples/hello", h, attest.SLSAProvenanceV1, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	roots := map[string]string{}
	for _, raw := range envs {
		sum, _, err := summaryOf(raw)
		if err != nil {
			t.Fatal(err)
		}
		v, _ := sum.Internal["variation"].(map[string]any)
		roots[sum.BuilderID], _ = v["workspaceRoot"].(string)
	}
	if diff := cmp.Diff(map[string]string{
		"https://accord.dev/builders/primary":     "/workspace",
		"https://accord.dev/builders/validator-1": "/build/validator-1",
		"https://accord.dev/builders/validator-2": "/build/validator-2",
	}, roots); diff != "" {
		t.Errorf("workspace roots in provenance (-want +got):\n%s", diff)
	}

	out, _, err := accord(t, "verify", image, "--store", stDir, "--policy", filepath.Join(dir, "policy.yaml"), "-o", "json")
	if err != nil {
		t.Fatalf("verify 2-of-3: %v\n%s", err, out)
	}

	// An independent validator with the default profile, from the
	// provenance alone.
	key, _ := keyPair(t, t.TempDir(), "independent")
	stdout, stderr, err = accord(t, "rebuild", image, "--store", stDir, "--builder", "independent", "--key", key,
		"--builders-file", filepath.Join(t.TempDir(), "none.yaml"), "--runtime", runtimeForRebuild())
	if exitCode(err) != exitUsage || !strings.Contains(err.Error(), "none.yaml") {
		t.Errorf("a missing --builders-file: exit %d (%v), want 2 naming the file", exitCode(err), err)
	}
	t.Chdir(t.TempDir()) // no builders.yaml here: the default validator profile
	stdout, stderr, err = accord(t, "rebuild", image, "--store", stDir, "--builder", "independent", "--key", key, "--runtime", runtimeForRebuild())
	if exitCode(err) != exitUsage || !strings.Contains(err.Error(), "uses only signed provenance") {
		t.Errorf("a rebuild with no key to check the provenance with: exit %d (%v), want 2", exitCode(err), err)
	}
	stdout, stderr, err = accord(t, "rebuild", image, "--store", stDir, "--builder", "independent", "--key", key, "--runtime", runtimeForRebuild(),
		"--policy", filepath.Join(dir, "policy.yaml"), "--from", "primary")
	if err != nil || !strings.Contains(stdout, "rebuild agrees") {
		t.Fatalf("rebuild: %v\nstderr:\n%s\nstdout:\n%s", err, stderr, stdout)
	}
	envs, _ = attestations(context.Background(), st, "accord.dev/examples/hello", h, attest.SLSAProvenanceV1, io.Discard)
	var ids []string
	for _, raw := range envs {
		sum, _, _ := summaryOf(raw)
		ids = append(ids, sum.BuilderID)
	}
	sort.Strings(ids)
	if !cmp.Equal(ids, []string{"https://accord.dev/builders/independent", "https://accord.dev/builders/primary",
		"https://accord.dev/builders/validator-1", "https://accord.dev/builders/validator-2"}) {
		t.Errorf("provenance stored for the image: %v", ids)
	}
}

func runtimeForRebuild() string {
	if os.Geteuid() == 0 {
		return "crun"
	}
	return "runc"
}

// TestDiffFiles: two local archives with different names line up member by
// member; identical files exit 0.
func TestDiffFiles(t *testing.T) {
	t.Setenv("ACCORD_NO_DIFFOSCOPE", "1")
	dir := t.TempDir()
	mk := func(name, stamp string) string {
		var tb bytes.Buffer
		tw := tar.NewWriter(&tb)
		body := "version 1.0\nbuilt " + stamp + "\n"
		tw.WriteHeader(&tar.Header{Name: "etc/version", Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg})
		tw.Write([]byte(body))
		tw.Close()
		var gb bytes.Buffer
		zw := gzip.NewWriter(&gb)
		zw.Write(tb.Bytes())
		zw.Close()
		p := filepath.Join(dir, name)
		os.WriteFile(p, gb.Bytes(), 0o644)
		return p
	}
	a := mk("out-a.tar.gz", "2026-11-23T11:40:00Z")
	b := mk("out-b.tar.gz", "2026-11-23T17:25:12Z")
	out, _, err := accord(t, "diff", a, b, "-o", "json")
	if exitCode(err) != exitNotVerified {
		t.Fatalf("diff: exit %d, want 1", exitCode(err))
	}
	var r divergence.Report
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatal(err)
	}
	if len(r.Differences) != 1 || r.Differences[0].Path != "out-a.tar.gz!/out-a.tar!/etc/version" || !cmp.Equal(r.Causes, []divergence.Cause{divergence.Timestamp}) {
		t.Errorf("report: %+v", r)
	}
	if _, _, err := accord(t, "diff", a, a); err != nil {
		t.Errorf("a file against itself: %v, want exit 0", err)
	}
	if _, _, err := accord(t, "diff", a, filepath.Join(dir, "missing"), "--store", t.TempDir()); exitCode(err) != exitUsage {
		t.Errorf("a missing file: exit %d, want 2", exitCode(err))
	}
}

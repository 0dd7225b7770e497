package local_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/random"

	"github.com/accord-build/accord/internal/artifact"
	"github.com/accord-build/accord/internal/engine"
	"github.com/accord-build/accord/internal/engine/local"
	"github.com/accord-build/accord/internal/sandbox"
)

// escapeHost is a directory on the host outside the run, holding what an
// attacker's step is after: a secret file (also as out/app), a directory
// the host owns (sub) and an OCI layout (out/image).
type escapeHost struct {
	dir, secret, secretSHA, imageDigest string
}

func newEscapeHost(t *testing.T) *escapeHost {
	t.Helper()
	h := &escapeHost{dir: t.TempDir(), secret: fmt.Sprintf("accord-test-secret-%d", time.Now().UnixNano())}
	sum := sha256.Sum256([]byte(h.secret))
	h.secretSHA = "sha256:" + hex.EncodeToString(sum[:])
	for _, d := range []string{"sub", "out"} {
		if err := os.Mkdir(filepath.Join(h.dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range []string{"secret", "out/app"} {
		if err := os.WriteFile(filepath.Join(h.dir, p), []byte(h.secret), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	img, err := random.Image(256, 1)
	if err != nil {
		t.Fatal(err)
	}
	lp, err := layout.Write(filepath.Join(h.dir, "out", "image"), empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := lp.AppendImage(img); err != nil {
		t.Fatal(err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	h.imageDigest = d.String()
	return h
}

// snapshot is every entry under the host directory with its type, owner
// and (for files) content.
func (h *escapeHost) snapshot(t *testing.T) map[string]string {
	t.Helper()
	m := map[string]string{}
	err := filepath.WalkDir(h.dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		st := info.Sys().(*syscall.Stat_t)
		v := fmt.Sprintf("%s %d:%d", info.Mode(), st.Uid, st.Gid)
		if d.Type().IsRegular() {
			b, _ := os.ReadFile(p)
			v += " " + string(b)
		}
		rel, _ := filepath.Rel(h.dir, p)
		m[rel] = v
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func (h *escapeHost) expand(yaml string) string {
	return strings.NewReplacer("{{HOST}}", h.dir, "{{SECRET_SHA}}", h.secretSHA, "{{IMAGE_DIGEST}}", h.imageDigest).Replace(yaml)
}

// escapePipeline is a pipeline whose task plant runs script plant in
// workspace shared (at /workspace/out), then task use binds shared with
// the given subPath and runs script use (workingDir if given).
func escapePipeline(plant, subPath, workingDir, use string) string {
	bindUse := "{name: in, workspace: shared}"
	if subPath != "" {
		bindUse = fmt.Sprintf("{name: in, workspace: shared, subPath: %q}", subPath)
	}
	wd := ""
	if workingDir != "" {
		wd = "\n        workingDir: " + workingDir
	}
	return `
apiVersion: tekton.dev/v1
kind: Pipeline
metadata: {name: escape}
spec:
  workspaces: [{name: shared}, {name: secrets}]
  tasks:
  - name: keep
    workspaces: [{name: keep, workspace: secrets}]
    taskSpec:
      workspaces: [{name: keep}]
      steps:
      - image: {{IMAGE}}
        script: printf 'sibling-secret-%s' 42 > $(workspaces.keep.path)/secret
  - name: plant
    runAfter: [keep]
    workspaces: [{name: out, workspace: shared}]
    taskSpec:
      workspaces: [{name: out}]
      steps:
      - image: {{IMAGE}}
        script: |
          ` + plant + `
  - name: use
    runAfter: [plant]
    workspaces: [` + bindUse + `]
    taskSpec:
      workspaces: [{name: in}]
      results: [{name: got}]
      steps:
      - name: use
        image: {{IMAGE}}` + wd + `
        script: |
          ` + use + `
`
}

// resultPipeline is one task whose step "leak" runs script and declares
// result x.
func resultPipeline(script string) string {
	return `
apiVersion: tekton.dev/v1
kind: Pipeline
metadata: {name: results-escape}
spec:
  tasks:
  - name: leak
    taskSpec:
      results: [{name: x}]
      steps:
      - name: leak
        image: {{IMAGE}}
        script: |
          ` + script + `
`
}

// artifactPipeline: task build binds subPath a/out of shared and
// announces an output there; task swap (after it) binds all of shared
// and runs swap; the run succeeds and artifact.Collect must refuse.
func artifactPipeline(build, results, swap string) string {
	return `
apiVersion: tekton.dev/v1
kind: Pipeline
metadata: {name: artifact-escape}
spec:
  workspaces: [{name: shared}]
  tasks:
  - name: build
    workspaces: [{name: out, workspace: shared, subPath: a/out}]
    taskSpec:
      workspaces: [{name: out}]
      results: ` + results + `
      steps:
      - image: {{IMAGE}}
        script: |
          ` + build + `
  - name: swap
    runAfter: [build]
    workspaces: [{name: all, workspace: shared}]
    taskSpec:
      workspaces: [{name: all}]
      steps:
      - image: {{IMAGE}}
        script: |
          true ` + swap + `
`
}

const (
	fileResults  = `[{name: BINARY_ARTIFACT_OUTPUTS, type: object, properties: {uri: {type: string}, digest: {type: string}}}]`
	fileAnnounce = `printf '{"uri":"/workspace/out/app","digest":"{{SECRET_SHA}}"}' > $(results.BINARY_ARTIFACT_OUTPUTS.path)`
	imageResults = `[{name: IMAGE_URL}, {name: IMAGE_DIGEST}]`
	imageAnnoun  = `printf example.com/escape > $(results.IMAGE_URL.path); printf {{IMAGE_DIGEST}} > $(results.IMAGE_DIGEST.path)`
	swapA        = `&& mv $(workspaces.all.path)/a $(workspaces.all.path)/a.real && ln -s {{HOST}} $(workspaces.all.path)/a`
)

type escapeCase struct {
	name string
	yaml string
	// uid runs the build under a uid/gid variation (root runners only).
	uid int
	// failing is the task that must fail and reason what its reason says;
	// "" when the run succeeds and artifact.Collect must refuse.
	failing string
	reason  []string
	// maxRead bounds the bytes accord may read during the run (0: no bound).
	maxRead int64
	// inGVisor: under runsc what the step plants stays in gVisor's own
	// kernel (the host never sees it), so the run succeeds without the
	// result instead.
	inGVisor bool
}

// TestSymlinkEscapes plants links (and FIFOs, and huge files) where the
// host side of the local engine looks: a subPath, a workingDir, a
// directory the engine chowns, a result file, an announced artifact. The
// engine must refuse each, read no host file through it and create or
// change nothing on the host outside the run.
func TestSymlinkEscapes(t *testing.T) { testSymlinkEscapes(t, newFixture(t)) }

// TestSymlinkEscapesRunsc: the same under gVisor, whose gofer creates the
// step's files (and links) on the host.
func TestSymlinkEscapesRunsc(t *testing.T) { testSymlinkEscapes(t, newFixtureWith(t, sandbox.Runsc)) }

func testSymlinkEscapes(t *testing.T, f *fixture) {
	warm, _ := f.build(t, resultPipeline("true"), nil)
	if res := f.run(t, warm); !res.Succeeded {
		t.Fatalf("warm-up build failed: %s", res.Reason)
	}
	cases := []escapeCase{
		{name: "subPath is a link to /",
			yaml:    escapePipeline(`ln -s / $(workspaces.out.path)/escape`, "escape", "", `cat $(workspaces.in.path){{HOST}}/secret > $(results.got.path) || true`),
			failing: "use", reason: []string{`subPath "escape"`, "escape in workspace \"shared\" is a symbolic link", "fix:"}},
		{name: "subPath has a link in a middle component",
			yaml:    escapePipeline(`mkdir -p $(workspaces.out.path)/a && ln -s {{HOST}} $(workspaces.out.path)/a/mid`, "a/mid/new/deeper", "", `echo pwned > $(workspaces.in.path)/pwned`),
			failing: "use", reason: []string{"a/mid in workspace \"shared\" is a symbolic link"}},
		{name: "subPath is a link to a sibling workspace",
			yaml:    escapePipeline(`ln -s ../secrets $(workspaces.out.path)/escape`, "escape", "", `cat $(workspaces.in.path)/secret > $(results.got.path) || true`),
			failing: "use", reason: []string{"escape in workspace \"shared\" is a symbolic link"}},
		{name: "subPath is a link to a host directory",
			yaml:    escapePipeline(`ln -s {{HOST}} $(workspaces.out.path)/escape`, "escape", "", `cat $(workspaces.in.path)/secret > $(results.got.path) || true; touch $(workspaces.in.path)/created || true`),
			failing: "use", reason: []string{"escape in workspace \"shared\" is a symbolic link"}},
		{name: "workingDir through a planted link",
			yaml:    escapePipeline(`ln -s {{HOST}} $(workspaces.out.path)/wd`, "", "$(workspaces.in.path)/wd/created", `true`),
			failing: "use", reason: []string{`workingDir "/workspace/in/wd/created"`, "wd in workspace \"shared\" is a symbolic link"}},
		{name: "uid variation: workingDir chowned through a planted link", uid: 1000,
			yaml:    escapePipeline(`ln -s {{HOST}} $(workspaces.out.path)/link`, "", "$(workspaces.in.path)/link/sub", `true`),
			failing: "use", reason: []string{"link in workspace \"shared\" is a symbolic link"}},
		{name: "uid variation: subPath chowned through a planted link", uid: 1000,
			yaml:    escapePipeline(`ln -s {{HOST}} $(workspaces.out.path)/link`, "link/sub", "", `true`),
			failing: "use", reason: []string{"link in workspace \"shared\" is a symbolic link"}},
		{name: "result is a link to a host file",
			yaml:    resultPipeline(`ln -s {{HOST}}/secret $(results.x.path)`),
			failing: "leak", reason: []string{`step "leak"`, `result "x" is a symbolic link`, "fix:"}},
		{name: "result is a link to /etc/shadow",
			yaml:    resultPipeline(`ln -s /etc/shadow $(results.x.path)`),
			failing: "leak", reason: []string{`step "leak"`, `result "x" is a symbolic link`}},
		{name: "result is a FIFO",
			yaml:    resultPipeline(`mkfifo $(results.x.path)`),
			failing: "leak", reason: []string{`step "leak"`, `result "x" is a FIFO, not a regular file`}, inGVisor: true},
		{name: "result is a directory",
			yaml:    resultPipeline(`mkdir $(results.x.path)`),
			failing: "leak", reason: []string{`result "x" is a directory, not a regular file`}},
		{name: "result is a 256 MiB sparse file",
			yaml:    resultPipeline(`truncate -s 256M $(results.x.path)`),
			failing: "leak", reason: []string{`step "leak"`, `result "x" is 268435456 bytes, over Tekton's limit of 4096`}, maxRead: 64 << 20},
		{name: "artifact file is a link to a host file",
			yaml: artifactPipeline(`ln -s {{HOST}}/secret $(workspaces.out.path)/app; `+fileAnnounce, fileResults, "")},
		{name: "artifact file reached through a subPath swapped for a link",
			yaml: artifactPipeline(`printf mine > $(workspaces.out.path)/app; `+fileAnnounce, fileResults, swapA)},
		{name: "image layout reached through a subPath swapped for a link",
			yaml: artifactPipeline(imageAnnoun, imageResults, swapA)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.uid != 0 && f.runner.Rootless() {
				t.Skip("a uid/gid variation needs a root runner (rootless runners refuse it: TestVariationRootlessUID)")
			}
			if tc.inGVisor && f.runner.Runtime() == sandbox.Runsc {
				tc.failing, tc.reason = "", nil
			}
			testEscape(t, f, tc)
		})
	}
}

func testEscape(t *testing.T, f *fixture, tc escapeCase) {
	host := newEscapeHost(t)
	before := host.snapshot(t)
	b, rec := f.build(t, host.expand(tc.yaml), nil)
	b.Variation.UID, b.Variation.GID = tc.uid, tc.uid
	b.RecordArtifacts = true
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	type outcome struct {
		res *engine.Result
		err error
	}
	done := make(chan outcome, 1)
	read0 := readBytes(t)
	go func() {
		res, err := f.executor().Run(ctx, b)
		done <- outcome{res, err}
	}()
	var res *engine.Result
	select {
	case o := <-done:
		if o.err != nil {
			t.Fatalf("Run: %v", o.err)
		}
		res = o.res
	case <-time.After(3 * time.Minute):
		t.Fatal("the run hangs (reading a FIFO?)")
	}
	if n := readBytes(t) - read0; tc.maxRead > 0 && n > tc.maxRead {
		t.Errorf("accord read %d bytes during the run: it read the oversized result", n)
	}
	var leaks []string
	if tc.failing != "" {
		tr := task(t, res, tc.failing)
		if res.Succeeded || tr.Status != engine.Failed {
			// Names only: a value may be a host file.
			var names []string
			for _, r := range tr.Results {
				names = append(names, r.Name)
			}
			t.Fatalf("task %s: %s (run succeeded: %v), want it failed; it has results %q", tc.failing, tr.Status, res.Succeeded, names)
		}
		t.Logf("reason: %s", tr.Reason)
		for _, want := range tc.reason {
			if !strings.Contains(tr.Reason, want) {
				t.Errorf("reason %q does not say %q", tr.Reason, want)
			}
		}
	} else if tc.inGVisor {
		if tr := task(t, res, "leak"); !res.Succeeded || len(tr.Results) != 0 {
			t.Fatalf("run succeeded: %v (%s), task leak has %d results; want a success without results", res.Succeeded, res.Reason, len(tr.Results))
		}
	} else {
		if !res.Succeeded {
			t.Fatalf("build failed: %s", res.Reason)
		}
		arts, err := artifact.Collect(ctx, res, f.store, true)
		switch {
		case err == nil:
			t.Errorf("Collect stored %+v, read through a link", arts)
		case !errors.Is(err, artifact.ErrNotFound) || !strings.Contains(err.Error(), "announced"):
			t.Errorf("Collect: %v; want an ErrNotFound naming the announced artifact", err)
		case strings.Contains(err.Error(), host.secretSHA):
			t.Errorf("Collect's error shows the digest of the host file: %v", err)
		default:
			t.Logf("Collect: %v", err)
			leaks = append(leaks, err.Error())
		}
		for _, name := range []string{"app", "example.com/escape"} {
			if h, err := f.store.Resolve(name); err == nil {
				t.Errorf("the store has %s as %s", name, h)
			}
		}
	}
	j, _ := json.Marshal(res)
	leaks = append(leaks, string(j), res.Reason)
	for _, tr := range res.Tasks {
		for _, s := range tr.Steps {
			leaks = append(leaks, rec.stdout(tr.Name, s.Name))
		}
	}
	for _, s := range leaks {
		if strings.Contains(s, host.secret) || strings.Contains(s, "sibling-secret-42") {
			t.Errorf("the host's secret leaked into the run's results, outputs or errors")
		}
	}
	if diff := cmp.Diff(before, host.snapshot(t)); diff != "" {
		t.Errorf("the host directory changed (-before +after):\n%s", diff)
	}
}

// readBytes is how many bytes this process has read so far.
func readBytes(t *testing.T) int64 {
	t.Helper()
	b, err := os.ReadFile("/proc/self/io")
	if err != nil {
		t.Fatalf("reading /proc/self/io: %v", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "rchar: "); ok {
			n, _ := strconv.ParseInt(v, 10, 64)
			return n
		}
	}
	t.Fatal("no rchar in /proc/self/io")
	return 0
}

// TestSymlinkEscapesConcurrent: with tasks in parallel, a step of one task
// swaps a directory of the workspace for a link to a host directory and
// back, as fast as it can, while another task binds that directory as its
// subPath, step after step. No step may ever get the host directory: the
// runtime binds by path, so accord rechecks each subPath with the
// workspace locked against writers until the step ends.
func TestSymlinkEscapesConcurrent(t *testing.T) {
	f := newFixture(t)
	host := newEscapeHost(t)
	before := host.snapshot(t)
	// try-0 waits until the swapping has begun; the others bind the
	// subPath while it goes on (most of the time it is a link).
	use := `
      - name: try-0
        image: {{IMAGE}}
        script: sleep 1.5`
	for i := 1; i < 8; i++ {
		use += fmt.Sprintf(`
      - name: try-%d
        image: {{IMAGE}}
        script: cat $(workspaces.in.path)/secret >> $(results.got.path) 2>/dev/null || true`, i)
	}
	yaml := `
apiVersion: tekton.dev/v1
kind: Pipeline
metadata: {name: escape-race}
spec:
  workspaces: [{name: shared}]
  tasks:
  - name: swap
    workspaces: [{name: all, workspace: shared}]
    taskSpec:
      workspaces: [{name: all}]
      steps:
      - image: {{IMAGE}}
        script: |
          cd $(workspaces.all.path)
          sleep 1
          mkdir -p escape
          end=$(( $(date +%s) + 3 ))
          while [ "$(date +%s)" -lt "$end" ]; do
            mv escape escape.d && ln -s {{HOST}} escape && sleep 0.2 && rm escape && mv escape.d escape
          done
  - name: use
    workspaces: [{name: in, workspace: shared, subPath: escape}]
    taskSpec:
      workspaces: [{name: in}]
      results: [{name: got}]
      steps:` + use + "\n"
	b, rec := f.build(t, host.expand(yaml), nil)
	res := f.run(t, b, local.WithParallel(2))
	tr := task(t, res, "use")
	j, _ := json.Marshal(res)
	leaks := []string{string(j)}
	for _, s := range tr.Steps {
		leaks = append(leaks, rec.stdout("use", s.Name))
	}
	for _, s := range leaks {
		if strings.Contains(s, host.secret) {
			t.Fatalf("a step of task use read the host's secret through the swapped subPath")
		}
	}
	if tr.Status != engine.Succeeded && !strings.Contains(tr.Reason, "is a symbolic link") {
		t.Errorf("task use: %s: %s", tr.Status, tr.Reason)
	}
	if diff := cmp.Diff(before, host.snapshot(t)); diff != "" {
		t.Errorf("the host directory changed (-before +after):\n%s", diff)
	}
}

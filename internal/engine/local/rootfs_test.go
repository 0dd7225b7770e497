package local_test

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"
	ggcrv1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/accord-build/accord/internal/engine"
	"github.com/accord-build/accord/internal/testutil"
)

// imageWith puts into f's store the base image with files added (name ->
// content; a "->" prefix makes a link) and its config changed by edit, and
// returns its pinned reference.
func (f *fixture) imageWith(t *testing.T, name string, files map[string]string, edit func(*ggcrv1.Config)) string {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		h := &tar.Header{Name: n, Mode: 0o644, Typeflag: tar.TypeReg, Size: int64(len(files[n]))}
		if l, ok := strings.CutPrefix(files[n], "->"); ok {
			h = &tar.Header{Name: n, Typeflag: tar.TypeSymlink, Linkname: l, Mode: 0o777}
		}
		if strings.HasSuffix(n, "/") { // a directory; the value is its uid:gid
			h = &tar.Header{Name: n, Typeflag: tar.TypeDir, Mode: 0o755}
			fmt.Sscanf(files[n], "%d:%d", &h.Uid, &h.Gid)
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			tw.Write([]byte(files[n]))
		}
	}
	tw.Close()
	img, err := mutate.AppendLayers(testutil.BaseImage(t), static.NewLayer(buf.Bytes(), types.OCIUncompressedLayer))
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	if edit != nil {
		edit(&cf.Config)
	}
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		t.Fatal(err)
	}
	ref := "accord.dev/test/" + name
	h, err := f.store.Put(context.Background(), ref, img)
	if err != nil {
		t.Fatal(err)
	}
	return ref + "@" + h.String()
}

// cacheState lists the rootfs cache: every path with its kind, mode and
// content, no link followed.
func cacheState(t *testing.T, dir string) map[string]string {
	t.Helper()
	m := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.Type()&fs.ModeSymlink != 0:
			l, _ := os.Readlink(p)
			m[rel] = "-> " + l
		case d.IsDir():
			m[rel] = info.Mode().String()
		default:
			b, _ := os.ReadFile(p)
			m[rel] = fmt.Sprintf("%v %x", info.Mode(), b)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// catalogStylePipeline writes where a public catalog Task's script writes:
// $GOPATH/src, $HOME, /root/.cache, image directories, a workingDir the
// image lacks and a workspace mountPath outside /workspace; the next task
// sees the image as it was.
const catalogStylePipeline = `
apiVersion: tekton.dev/v1
kind: Pipeline
metadata: {name: catalog-style}
spec:
  workspaces: [{name: ws}]
  tasks:
    - name: build
      workspaces: [{name: source, workspace: ws}]
      taskSpec:
        workspaces: [{name: source, mountPath: /src/app}]
        results: [{name: out}]
        steps:
          - name: golang-style
            image: {{IMAGE}}
            workingDir: /go/src/github.com/x/y
            env: [{name: GOPATH, value: /go}]
            script: |
              mkdir -p $GOPATH/src/github.com/x/y && echo > $HOME/f && mkdir -p /root/.cache/x
              echo changed > /etc/hosts && rm /etc/group && chmod 700 /usr/bin && echo new > /bin/added
              pwd > /src/app/pwd
              printf ok > $(results.out.path)
    - name: after
      runAfter: [build]
      workspaces: [{name: source, workspace: ws}]
      taskSpec:
        workspaces: [{name: source}]
        results: [{name: seen}]
        steps:
          - name: check
            image: {{IMAGE}}
            script: |
              test ! -e /root/.cache/x && test ! -e /go && test -e /etc/group && test ! -e /bin/added
              printf '%s %s' "$(cat /etc/hosts | head -n 1)" "$(stat -c %a /usr/bin)" > $(results.seen.path)
`

// TestCatalogStyleWritableRoot: a catalog-style step writes its root
// filesystem as in a pod (runc and crun, root and rootless); the next task
// gets the image as it was and the rootfs cache never changes. Under runsc
// the step's working directory, which the image lacks, is refused instead
// (gVisor's gofer would make it in the cached image itself; see
// TestRunscLeavesTheImageCache in internal/sandbox).
func TestCatalogStyleWritableRoot(t *testing.T) {
	for _, rt := range runcLike() {
		t.Run(string(rt), func(t *testing.T) {
			f := newFixtureWith(t, rt)
			b, _ := f.build(t, catalogStylePipeline, nil)
			// Unpack first, so the whole cache is compared.
			if _, err := f.executor().Run(context.Background(), b); err != nil {
				t.Fatal(err)
			}
			before := cacheState(t, f.rootfs.Dir())
			b, _ = f.build(t, catalogStylePipeline, nil)
			res := f.run(t, b)
			if !res.Succeeded {
				t.Fatalf("build failed: %s", res.Reason)
			}
			if diff := cmp.Diff([]string{"ok"}, resultValues(task(t, res, "build"))); diff != "" {
				t.Errorf("build results (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff([]string{"127.0.0.1\tlocalhost 755"}, resultValues(task(t, res, "after"))); diff != "" {
				t.Errorf("the next task sees (-want +got):\n%s", diff)
			}
			got := readTree(t, wsFS(t, task(t, res, "build"), "/src/app"))
			if got["pwd"] != "/go/src/github.com/x/y\n" {
				t.Errorf("workingDir the image lacks: pwd wrote %q", got["pwd"])
			}
			if diff := cmp.Diff(before, cacheState(t, f.rootfs.Dir())); diff != "" {
				t.Errorf("the rootfs cache changed (-before +after):\n%s", diff)
			}
		})
	}
}

func resultValues(tr engine.TaskResult) []string {
	var out []string
	for _, r := range tr.Results {
		out = append(out, r.Value.StringVal)
	}
	return out
}

// userImageFiles give the test images a user and groups of their own.
var userImageFiles = map[string]string{
	"etc/passwd": "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1001:app:/home/app:/bin/sh\nnobody:x:65534:65534::/nonexistent:/bin/false\n",
	"etc/group":  "root:x:0:\nstaff:x:50:\napp:x:1001:\nnogroup:x:65534:\n",
}

// userPipeline prints who its step runs as, writes $HOME and its results,
// and reports the image's Env and WorkingDir as the step saw them.
const userPipeline = `
apiVersion: tekton.dev/v1
kind: Pipeline
metadata: {name: users}
spec:
  tasks:
    - name: who
      taskSpec:
        results: [{name: id}]
        steps:
          - name: who
            image: {{IMAGE}}
{{SC}}            script: |
              echo home > $HOME/f
              printf '%s:%s %s %s %s' "$(id -u)" "$(id -g)" "$FROM_IMAGE" "$PWD" "$HOME" > $(results.id.path)
`

// TestImageUser: the image's User (uid, uid:gid, name, name:group, looked
// up in the image's /etc/passwd and /etc/group), Env and WorkingDir apply
// as in a pod; the step's securityContext runAsUser/runAsGroup win over the
// image's User, which wins over the builders file's uid/gid variation;
// runAsNonRoot refuses root, naming the step and the fix. A rootless
// runner refuses any non-root step with its reason.
func TestImageUser(t *testing.T) {
	f := newFixture(t)
	for _, tc := range []struct {
		name, user, sc string
		variation      int
		want           string // uid:gid, or the error's words
		wantErr        []string
	}{
		{name: "no User: root", want: "0:0"},
		{name: "numeric uid with a passwd entry", user: "1000", want: "1000:1001"},
		{name: "numeric uid without one", user: "4242", want: "4242:0"},
		{name: "uid:gid", user: "1000:50", want: "1000:50"},
		{name: "name", user: "app", want: "1000:1001"},
		{name: "name:group", user: "app:staff", want: "1000:50"},
		{name: "nobody", user: "nobody:nogroup", want: "65534:65534"},
		{name: "explicit root", user: "root", want: "0:0"},
		{name: "runAsUser over the image's User", user: "app", sc: "{runAsUser: 2000}", want: "2000:0"},
		{name: "runAsUser takes its passwd group", sc: "{runAsUser: 1000}", want: "1000:1001"},
		{name: "runAsGroup over the image's group", user: "app", sc: "{runAsGroup: 50}", want: "1000:50"},
		{name: "runAsNonRoot with a non-root image User", user: "app", sc: "{runAsNonRoot: true}", want: "1000:1001"},
		{name: "variation applies without a User", variation: 3000, want: "3000:3000"},
		{name: "the image's User wins over the variation", user: "app", variation: 3000, want: "1000:1001"},
		{name: "runAsUser wins over the variation", sc: "{runAsUser: 2000, runAsGroup: 2000}", variation: 3000, want: "2000:2000"},
		{name: "runAsNonRoot refuses an image without User", sc: "{runAsNonRoot: true}",
			wantErr: []string{`step "who"`, "runAsNonRoot", "uid 0", "fix: set securityContext.runAsUser"}},
		{name: "runAsNonRoot refuses User root", user: "root", sc: "{runAsNonRoot: true}",
			wantErr: []string{`step "who"`, `the image's User "root"`, "fix:"}},
		{name: "runAsNonRoot refuses runAsUser 0", user: "app", sc: "{runAsNonRoot: true, runAsUser: 0}",
			wantErr: []string{`step "who"`, "its securityContext.runAsUser", "fix:"}},
		{name: "unknown user name", user: "ghost", wantErr: []string{`User "ghost"`, `no entry "ghost"`, "fix:"}},
		{name: "unknown group name", user: "app:ghosts", wantErr: []string{`User "app:ghosts"`, `no entry "ghosts"`, "fix:"}},
		{name: "uid out of range", sc: "{runAsUser: 70000}", wantErr: []string{"runAsUser 70000", "fix:"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			img := f.imageWith(t, "user", userImageFiles, func(c *ggcrv1.Config) {
				c.User, c.WorkingDir = tc.user, "/srv/app/work"
				c.Env = append(c.Env, "FROM_IMAGE=yes")
			})
			sc := ""
			if tc.sc != "" {
				sc = "            securityContext: " + tc.sc + "\n"
			}
			y := strings.ReplaceAll(strings.ReplaceAll(userPipeline, "{{SC}}", sc), "{{IMAGE}}", img)
			b, _ := f.build(t, y, nil)
			b.Variation.UID, b.Variation.GID = tc.variation, tc.variation
			nonRoot := tc.want != "" && tc.want != "0:0"
			if nonRoot && f.runner.Rootless() {
				tc.wantErr, tc.want = []string{"rootless runner owns a single host id", "fix: run accord as root"}, ""
			}
			res := f.run(t, b)
			tr := task(t, res, "who")
			if tc.wantErr != nil {
				wantRefused(t, res, tr, tc.wantErr)
				return
			}
			if !res.Succeeded {
				t.Fatalf("build failed: %s", tr.Reason)
			}
			want := tc.want + " yes /srv/app/work /tekton/home"
			if diff := cmp.Diff([]string{want}, resultValues(tr)); diff != "" {
				t.Errorf("id, image env, workingDir, HOME (-want +got):\n%s", diff)
			}
		})
	}
}

// wantRefused checks that the run failed and that task tr's reason says
// each of words.
func wantRefused(t *testing.T, res *engine.Result, tr engine.TaskResult, words []string) {
	t.Helper()
	if res.Succeeded {
		t.Fatalf("ran: %v", resultValues(tr))
	}
	for _, w := range words {
		if !strings.Contains(tr.Reason, w) {
			t.Errorf("reason %q does not say %q", tr.Reason, w)
		}
	}
}

// TestImageHome: the image's HOME wins over accord's /tekton/home, the
// step's env over both; without either, HOME is /tekton/home on every
// builder (builds stay deterministic).
func TestImageHome(t *testing.T) {
	f := newFixture(t)
	for _, tc := range []struct{ name, imageHome, stepEnv, want string }{
		{"default", "", "", "/tekton/home"},
		{"image HOME", "/root", "", "/root"},
		{"step env HOME", "/root", "            env: [{name: HOME, value: /tmp/h}]\n", "/tmp/h"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			img := f.imageWith(t, "home", nil, func(c *ggcrv1.Config) {
				if tc.imageHome != "" {
					c.Env = append(c.Env, "HOME="+tc.imageHome)
				}
			})
			y := strings.ReplaceAll(strings.ReplaceAll(userPipeline, "{{SC}}", tc.stepEnv+"            workingDir: /\n"), "{{IMAGE}}", img)
			y = strings.Replace(y, "echo home > $HOME/f", "mkdir -p $HOME && echo home > $HOME/f", 1)
			b, rec := f.build(t, y, nil)
			res := f.run(t, b)
			if !res.Succeeded {
				t.Fatalf("build failed: %s\nstderr: %s", res.Reason, rec.stderr("who", "who"))
			}
			want := "0:0  / " + tc.want
			if diff := cmp.Diff([]string{want}, resultValues(task(t, res, "who"))); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

// TestImageUserLinks: the image's /etc/passwd and /etc/group are read
// beneath its rootfs: a link in the image that names a host file (by an
// absolute path, or by climbing out with ..) resolves inside the image, so
// a user the host file defines is not found.
func TestImageUserLinks(t *testing.T) {
	f := newFixture(t)
	host := filepath.Join(t.TempDir(), "passwd")
	if err := os.WriteFile(host, []byte("evil:x:4242:4242::/:/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	climb := strings.Repeat("../", 40) + strings.TrimPrefix(host, "/")
	for _, tc := range []struct {
		name, user string
		files      map[string]string
	}{
		{"passwd links to a host file by absolute path", "evil", map[string]string{"etc/passwd": "->" + host}},
		{"passwd climbs out with ..", "evil", map[string]string{"etc/passwd": "->" + climb}},
		{"passwd links through a chain", "evil", map[string]string{"etc/passwd": "->/etc/pw2", "etc/pw2": "->" + climb}},
		{"group links to a host file", "root:evil", map[string]string{"etc/group": "->" + host}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			img := f.imageWith(t, "links", tc.files, func(c *ggcrv1.Config) { c.User = tc.user })
			y := strings.ReplaceAll(strings.ReplaceAll(userPipeline, "{{SC}}", ""), "{{IMAGE}}", img)
			b, _ := f.build(t, y, nil)
			res := f.run(t, b)
			tr := task(t, res, "who")
			if res.Succeeded {
				t.Fatalf("ran as a user of the host's file: %v", resultValues(tr))
			}
			if !strings.Contains(tr.Reason, `no entry "evil"`) && !strings.Contains(tr.Reason, "no such file") {
				t.Errorf("reason %q: want the user not found in the image", tr.Reason)
			}
		})
	}
}

// sharedPipeline: steps of different users, in one task and in two, write
// one workspace, $HOME and the results in turn, each changing what the one
// before wrote; the first plants links naming host paths (VICTIM) in the
// workspace, which handing it to the next user must not follow.
const sharedPipeline = `
apiVersion: tekton.dev/v1
kind: Pipeline
metadata: {name: shared}
spec:
  workspaces: [{name: ws}]
  tasks:
    - name: first
      workspaces: [{name: w, workspace: ws}]
      taskSpec:
        workspaces: [{name: w}]
        results: [{name: r}]
        steps:
          - name: root
            image: {{IMAGE}}
            securityContext: {runAsUser: 0}
            script: |
              mkdir -p $(workspaces.w.path)/d && echo root > $(workspaces.w.path)/d/f && echo root > $HOME/h
              ln -s VICTIM $(workspaces.w.path)/evil && ln -s VICTIMDIR $(workspaces.w.path)/evildir
          - name: nonroot
            image: {{IMAGE}}
            securityContext: {runAsUser: 65532, runAsGroup: 65532, runAsNonRoot: true}
            script: |
              echo nonroot >> $(workspaces.w.path)/d/f && echo nonroot >> $HOME/h && printf "$(id -u)" > $(results.r.path)
    - name: second
      runAfter: [first]
      workspaces: [{name: w, workspace: ws}]
      taskSpec:
        workspaces: [{name: w}]
        results: [{name: r}]
        steps:
          - name: default
            image: {{IMAGE}}
            script: |
              echo default >> $(workspaces.w.path)/d/f && mkdir $(workspaces.w.path)/d/sub && printf "$(id -u)" > $(results.r.path)
          - name: app
            image: {{IMAGE}}
            securityContext: {runAsUser: 1000}
            script: |
              echo app >> $(workspaces.w.path)/d/f && echo x > $(workspaces.w.path)/d/sub/g
`

// TestStepUsersShareWorkspaces: steps that name their own users write the
// workspaces, home and results the steps before them wrote, with and
// without a uid/gid variation; links a step planted in the workspace are
// not followed when it is handed to the next user. A rootless runner
// refuses the non-root steps with its reason.
func TestStepUsersShareWorkspaces(t *testing.T) {
	f := newFixture(t)
	dir := t.TempDir()
	victim, victimDir := filepath.Join(dir, "victim"), filepath.Join(dir, "victimdir")
	if err := os.WriteFile(victim, []byte("host\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(victimDir, 0o700); err != nil {
		t.Fatal(err)
	}
	owner := func(p string) string {
		st, err := os.Lstat(p)
		if err != nil {
			t.Fatal(err)
		}
		s := st.Sys().(*syscall.Stat_t)
		return fmt.Sprintf("%d:%d %v", s.Uid, s.Gid, st.Mode())
	}
	before := []string{owner(victim), owner(victimDir)}
	for _, variation := range []int{0, 3000} {
		t.Run(fmt.Sprintf("variation uid %d", variation), func(t *testing.T) {
			y := strings.NewReplacer("VICTIMDIR", victimDir, "VICTIM", victim).Replace(sharedPipeline)
			b, _ := f.build(t, y, nil)
			b.Variation.UID, b.Variation.GID = variation, variation
			res := f.run(t, b)
			if f.runner.Rootless() {
				if res.Succeeded || !strings.Contains(res.Reason+task(t, res, "first").Reason, "rootless runner owns a single host id") {
					t.Fatalf("a rootless runner ran a non-root step, or did not say why: %s", task(t, res, "first").Reason)
				}
				return
			}
			if !res.Succeeded {
				t.Fatalf("build failed: %s / %s", task(t, res, "first").Reason, task(t, res, "second").Reason)
			}
			got := readTree(t, wsFS(t, task(t, res, "second"), "/workspace/w"))
			if want := "root\nnonroot\ndefault\napp\n"; got["d/f"] != want {
				t.Errorf("d/f = %q, want %q", got["d/f"], want)
			}
			ids := append(resultValues(task(t, res, "first")), resultValues(task(t, res, "second"))...)
			if diff := cmp.Diff([]string{"65532", fmt.Sprint(variation)}, ids); diff != "" {
				t.Errorf("ids (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(before, []string{owner(victim), owner(victimDir)}); diff != "" {
				t.Errorf("handing the workspace over followed a planted link (-before +after):\n%s", diff)
			}
		})
	}
}

// TestStepTemplateUser: a stepTemplate's securityContext reaches its steps
// (Tekton merges it), a step's own wins over it.
func TestStepTemplateUser(t *testing.T) {
	f := newFixture(t)
	img := f.imageWith(t, "user", userImageFiles, nil)
	for _, tc := range []struct{ name, step, want string }{
		{"from the template", "", "1000:1001"},
		{"the step's own wins", "            securityContext: {runAsUser: 0}\n", "0:0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			y := strings.ReplaceAll(strings.ReplaceAll(userPipeline, "{{SC}}", tc.step), "{{IMAGE}}", img)
			y = strings.Replace(y, "        steps:\n", "        stepTemplate:\n          securityContext: {runAsUser: 1000}\n        steps:\n", 1)
			b, _ := f.build(t, y, nil)
			res := f.run(t, b)
			if f.runner.Rootless() && tc.want != "0:0" {
				if res.Succeeded {
					t.Fatal("a rootless runner ran a non-root step")
				}
				return
			}
			if !res.Succeeded {
				t.Fatalf("build failed: %s", task(t, res, "who").Reason)
			}
			if got := resultValues(task(t, res, "who")); len(got) != 1 || !strings.HasPrefix(got[0], tc.want+" ") {
				t.Errorf("ran as %v, want %s", got, tc.want)
			}
		})
	}
}

// TestImageOwners: under a root runner, image files keep the owners the
// image gives them (mapped into the step's user namespace), so an image's
// User owns and writes its home directory, as in a pod.
func TestImageOwners(t *testing.T) {
	f := newFixture(t)
	files := map[string]string{"home/": "0:0", "home/app/": "1000:1001", "srv/": "0:0", "srv/www/": "33:33"}
	for k, v := range userImageFiles {
		files[k] = v
	}
	img := f.imageWith(t, "owners", files, func(c *ggcrv1.Config) {
		c.User = "app"
		c.Env = append(c.Env, "HOME=/home/app")
	})
	y := strings.ReplaceAll(strings.ReplaceAll(userPipeline, "{{SC}}", ""), "{{IMAGE}}", img)
	y = strings.Replace(y, "echo home > $HOME/f", "echo home > $HOME/f && stat -c '%u:%g' /home/app /srv/www /etc/passwd $HOME/f", 1)
	b, rec := f.build(t, y, nil)
	res := f.run(t, b)
	if f.runner.Rootless() {
		if res.Succeeded {
			t.Fatal("a rootless runner ran a non-root step")
		}
		return
	}
	if !res.Succeeded {
		t.Fatalf("build failed: %s", task(t, res, "who").Reason)
	}
	if diff := cmp.Diff("1000:1001\n33:33\n0:0\n1000:1001\n", rec.stdout("who", "who")); diff != "" {
		t.Errorf("owners the step sees (-want +got):\n%s", diff)
	}
}

package trigger

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// tagGit runs git in dir for the tests' repositories and returns its
// output.
func tagGit(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", append([]string{"-c", "user.name=T", "-c", "user.email=t@example.com", "-c", "init.defaultBranch=main"}, args...)...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %v: %v\n%s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

// tagRepo makes a repository with two commits: v1 a lightweight tag of
// the first, v2 an annotated tag of the second, v3 an annotated tag of
// v2; and refs that end in refs/tags/v8 and refs/tags/v9 without being
// tags. It returns its path and the two commits.
func tagRepo(t *testing.T, name string) (dir, c1, c2 string) {
	t.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		t.Fatal("git is not installed (hack/lib.sh install_deps installs it)")
	}
	dir = filepath.Join(t.TempDir(), name)
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	tagGit(t, dir, "init", "-q")
	tagGit(t, dir, "commit", "-q", "--allow-empty", "-m", "one "+name)
	c1 = tagGit(t, dir, "rev-parse", "HEAD")
	tagGit(t, dir, "tag", "v1")
	tagGit(t, dir, "commit", "-q", "--allow-empty", "-m", "two "+name)
	c2 = tagGit(t, dir, "rev-parse", "HEAD")
	tagGit(t, dir, "tag", "-a", "-m", "release two", "v2")
	tagGit(t, dir, "tag", "-a", "-m", "a tag of a tag", "v3", "v2")
	tagGit(t, dir, "branch", "refs/tags/v9", c1)
	tagGit(t, dir, "update-ref", "refs/other/refs/tags/v8", c1)
	return dir, c1, c2
}

func TestGitResolveTag(t *testing.T) {
	dir, c1, c2 := tagRepo(t, "widget")
	if obj := tagGit(t, dir, "rev-parse", "v2"); obj == c2 {
		t.Fatal("v2 is not an annotated tag")
	}
	for _, tc := range []struct {
		name, url, tag, want string
		notFound             bool
	}{
		{name: "lightweight tag", url: dir, tag: "v1", want: c1},
		{name: "annotated tag, peeled", url: dir, tag: "v2", want: c2},
		{name: "tag of a tag, peeled", url: dir, tag: "v3", want: c2},
		{name: "file URL", url: "file://" + dir, tag: "v2", want: c2},
		{name: "no such tag", url: dir, tag: "v4", notFound: true},
		{name: "a branch whose name ends in refs/tags/v9", url: dir, tag: "v9", notFound: true},
		{name: "a ref whose name ends in refs/tags/v8", url: dir, tag: "v8", notFound: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := GitResolveTag(context.Background(), tc.url, tc.tag)
			switch {
			case tc.notFound:
				if !errors.Is(err, ErrTagNotFound) || IsRetryable(err) {
					t.Fatalf("GitResolveTag = %q, %v; want ErrTagNotFound, not retryable", got, err)
				}
			case err != nil:
				t.Fatalf("GitResolveTag: %v", err)
			case got != tc.want:
				t.Errorf("GitResolveTag = %s, want %s", got, tc.want)
			}
		})
	}
}

// TestGitResolveTagRefusesOptionsAndHelpers: a clone URL or tag that git
// could take for an option, or a transport helper that runs a command,
// is refused before git runs.
func TestGitResolveTagRefusesOptionsAndHelpers(t *testing.T) {
	dir, _, _ := tagRepo(t, "widget")
	marker := filepath.Join(t.TempDir(), "pwned")
	for _, tc := range []struct{ name, url, tag string }{
		{"URL --upload-pack", "--upload-pack=touch " + marker, "v1"},
		{"URL -u", "-utouch " + marker, "v1"},
		{"URL ext helper", "ext::sh -c touch% " + marker, "v1"},
		{"URL fd helper", "fd::0", "v1"},
		{"URL ssh option host", "ssh://-oProxyCommand=touch " + marker + "/x", "v1"},
		{"URL scp option host", "git@-oProxyCommand=x:x", "v1"},
		{"URL plain http", "http://127.0.0.1:1/x.git", "v1"},
		{"URL empty", "", "v1"},
		{"tag option", dir, "--upload-pack=touch " + marker},
		{"tag dash", dir, "-v1"},
		{"tag revision expression", dir, "v1^{}"},
		{"tag wildcard", dir, "v*"},
		{"tag full ref", dir, "refs/heads/main"},
		{"tag dot-dot", dir, "v1..v2"},
		{"tag white space", dir, "v1 v2"},
		{"tag empty", dir, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := GitResolveTag(context.Background(), tc.url, tc.tag)
			if err == nil || IsRetryable(err) || errors.Is(err, ErrTagNotFound) {
				t.Fatalf("GitResolveTag(%q, %q) = %q, %v; want a refusal", tc.url, tc.tag, got, err)
			}
			if _, err := os.Stat(marker); err == nil {
				t.Fatal("git ran a command of the input")
			}
		})
	}
}

// TestGitResolveTagScrubsEnvironment: the server's environment and the
// user's git configuration cannot point the lookup at another repository
// (url.<base>.insteadOf in GIT_CONFIG_PARAMETERS, GIT_CONFIG_COUNT or
// ~/.gitconfig).
func TestGitResolveTagScrubsEnvironment(t *testing.T) {
	dir, c1, _ := tagRepo(t, "widget")
	evil, e1, _ := tagRepo(t, "evil")
	if e1 == c1 {
		t.Fatal("the two repositories share a commit")
	}
	home := t.TempDir()
	gitconfig := "[url \"" + evil + "\"]\n\tinsteadOf = " + dir + "\n"
	if err := os.WriteFile(filepath.Join(home, ".gitconfig"), []byte(gitconfig), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		env  map[string]string
	}{
		{"GIT_CONFIG_PARAMETERS", map[string]string{"GIT_CONFIG_PARAMETERS": "'url." + evil + ".insteadof'='" + dir + "'"}},
		{"GIT_CONFIG_COUNT", map[string]string{"GIT_CONFIG_COUNT": "1", "GIT_CONFIG_KEY_0": "url." + evil + ".insteadOf", "GIT_CONFIG_VALUE_0": dir}},
		{"HOME/.gitconfig", map[string]string{"HOME": home}},
		{"XDG_CONFIG_HOME", map[string]string{"XDG_CONFIG_HOME": home, "HOME": home}},
		{"GIT_DIR", map[string]string{"GIT_DIR": filepath.Join(evil, ".git")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			got, err := GitResolveTag(context.Background(), dir, "v1")
			if err != nil {
				t.Fatalf("GitResolveTag: %v", err)
			}
			if got != c1 {
				t.Fatalf("GitResolveTag = %s (evil's is %s), want %s: the environment redirected git", got, e1, c1)
			}
		})
	}
}

// fakeGit installs a shell script as the git that runs.
func fakeGit(t *testing.T, script string) {
	t.Helper()
	p := filepath.Join(t.TempDir(), "git")
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+script), 0o755); err != nil {
		t.Fatal(err)
	}
	old := gitProgram
	gitProgram = p
	t.Cleanup(func() { gitProgram = old })
}

func TestGitResolveTagTimesOut(t *testing.T) {
	// The shell's child keeps git's output open after the shell is
	// killed: the wait must not hang on it either.
	fakeGit(t, "sleep 30\n")
	old := tagTimeout
	tagTimeout = 200 * time.Millisecond
	t.Cleanup(func() { tagTimeout = old })
	start := time.Now()
	_, err := GitResolveTag(context.Background(), "https://github.com/acme/widget.git", "v1")
	if err == nil || !IsRetryable(err) {
		t.Fatalf("GitResolveTag = %v, want a retryable timeout", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("GitResolveTag took %v after a 200ms timeout", d)
	}
}

func TestGitResolveTagUnreachable(t *testing.T) {
	_, err := GitResolveTag(context.Background(), filepath.Join(t.TempDir(), "gone"), "v1")
	if err == nil || !IsRetryable(err) {
		t.Fatalf("GitResolveTag = %v, want a retryable error", err)
	}
}

// TestGitResolveTagArguments: "--" ends git's options before the URL,
// the patterns are the exact tag and its peeled form, the hardening
// options come first, and the environment holds only what is passed on.
func TestGitResolveTagArguments(t *testing.T) {
	out := filepath.Join(t.TempDir(), "out")
	fakeGit(t, `for a in "$@"; do printf '%s\n' "$a"; done > `+out+`.args
env > `+out+`.env
printf '%s\trefs/tags/v1\n' 1111111111111111111111111111111111111111
printf '%s\trefs/tags/v1^{}\n' 2222222222222222222222222222222222222222
printf '%s\trefs/heads/refs/tags/v1\n' 3333333333333333333333333333333333333333
`)
	t.Setenv("GIT_SSH_COMMAND", "touch /tmp/pwned")
	t.Setenv("GIT_EXEC_PATH", "/tmp/evil")
	got, err := GitResolveTag(context.Background(), "https://github.com/acme/widget.git", "v1")
	if err != nil || got != strings.Repeat("2", 40) {
		t.Fatalf("GitResolveTag = %q, %v; want the peeled commit", got, err)
	}
	b, err := os.ReadFile(out + ".args")
	if err != nil {
		t.Fatal(err)
	}
	args := strings.Split(strings.TrimSpace(string(b)), "\n")
	tail := strings.Join(args[len(args)-5:], " ")
	if want := "ls-remote -- https://github.com/acme/widget.git refs/tags/v1 refs/tags/v1^{}"; tail != want {
		t.Errorf("git ... %s, want it to end %s", tail, want)
	}
	if strings.Join(args[:2], " ") != "-c protocol.allow=never" {
		t.Errorf("git %v: want the hardening options first", args)
	}
	b, err = os.ReadFile(out + ".env")
	if err != nil {
		t.Fatal(err)
	}
	env := string(b)
	for _, want := range []string{"GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null", "GIT_TERMINAL_PROMPT=0", "GIT_SSH_COMMAND=ssh -o BatchMode=yes", "GIT_ALLOW_PROTOCOL=https:ssh:git:file"} {
		if !strings.Contains(env, want+"\n") {
			t.Errorf("git's environment lacks %s:\n%s", want, env)
		}
	}
	for _, bad := range []string{"touch /tmp/pwned", "GIT_EXEC_PATH=/tmp/evil"} {
		if strings.Contains(env, bad) {
			t.Errorf("git's environment has %s", bad)
		}
	}
}

// TestDecideTagsWithGit: tags pushed, created and released are resolved
// with real git (the default ResolveTag) at the configured clone URL; an
// annotated tag builds the commit, not the tag object.
func TestDecideTagsWithGit(t *testing.T) {
	dir, c1, c2 := tagRepo(t, "widget")
	cfg := policyConfig()
	cfg.Repos[0].CloneURL = dir
	d := &Decider{Config: cfg}
	for _, tc := range []struct {
		name, event, file, tag, want string
		kind                         Kind
	}{
		{"pushed lightweight tag", "push", "push-tag-created.json", "v1", c1, KindTag},
		{"pushed annotated tag", "push", "push-tag-created.json", "v2", c2, KindTag},
		{"created tag of a tag", "create", "create-tag.json", "v3", c2, KindTag},
		{"released annotated tag", "release", "release-published.json", "v2", c2, KindRelease},
		{"tag that is not there", "create", "create-tag.json", "v4", "", KindTag},
		{"branch named like the tag", "create", "create-tag.json", "v9", "", KindTag},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := editPayload(t, policyFixture(t, tc.file), func(m map[string]any) {
				switch tc.event {
				case "push":
					m["ref"] = "refs/tags/" + tc.tag
				case "create":
					m["ref"] = tc.tag
				case "release":
					jsonObj(m, "release")["tag_name"] = tc.tag
				}
			})
			reqs, note, err := d.Decide(context.Background(), Delivery{ID: "d", Event: tc.event, Body: body})
			if err != nil {
				t.Fatalf("Decide: %v", err)
			}
			if tc.want == "" {
				if len(reqs) != 0 || !strings.Contains(note, "is not at") {
					t.Fatalf("Decide = %+v, %q; want nothing, the tag is not there", reqs, note)
				}
				return
			}
			if len(reqs) != 1 || reqs[0].Commit != tc.want || reqs[0].Kind != tc.kind || reqs[0].Ref != "refs/tags/"+tc.tag || reqs[0].CloneURL != dir {
				t.Fatalf("Decide = %+v, %q; want a %s of %s at %s", reqs, note, tc.kind, tc.tag, tc.want)
			}
		})
	}
}

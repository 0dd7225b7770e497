package source

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestValidateURI(t *testing.T) {
	for _, tc := range []struct {
		uri  string
		want string // substring of the error; "" accepts
	}{
		{"https://example.com/org/app.git", ""},
		{"HTTPS://example.com/org/app.git", ""},
		{"ssh://git@example.com:2222/org/app.git", ""},
		{"ssh://[::1]/org/app.git", ""},
		{"git://example.com/app.git", ""},
		{"file:///srv/git/app.git", ""},
		{"file://localhost/srv/git/app.git", ""},
		{"/srv/git/app.git", ""},
		{"git@example.com:org/app.git", ""},
		{"deploy.user@git-host.example:app.git", ""},

		{"", "empty"},
		{"--upload-pack=touch /tmp/pwned;@example.com:x", "starts with '-'"},
		{"-c core.sshCommand=touch /tmp/pwned", "starts with '-'"},
		{"-oProxyCommand=touch%20/tmp/pwned@example.com:x", "starts with '-'"},
		{"ext::sh -c touch% /tmp/pwned", "white space"},
		{"ext::sh%20-c%20touch%25%20/tmp/pwned", "transport helper"},
		{"fd::3", "transport helper"},
		{"fd::0,1/x", "transport helper"},
		{"file::/srv/git/app.git", "transport helper"},
		{"git@example.com::x", "transport helper"},
		{"http://example.com/app.git", `scheme "http" is not allowed`},
		{"ftp://example.com/app.git", `scheme "ftp" is not allowed`},
		{"git+https://example.com/app.git", `scheme "git+https" is not allowed`},
		{"ssh://-oProxyCommand=touch%20%2Ftmp%2Fpwned/x", "invalid URL escape"},
		{"ssh://-oProxyCommand=x/y", "host starts with '-'"},
		{"ssh://-oProxyCommand=x@example.com/app.git", "user starts with '-'"},
		{"ssh://example.com/app%0a.git", "control character"},
		{"https:example.com/app.git", "not a https/ssh/git/file URL"},
		{"https:///app.git", "no host"},
		{"file://evil.example/srv/app.git", "file URLs are local"},
		{"git@-oProxyCommand=x:app.git", "not a https/ssh/git/file URL"},
		{"git@-x:app.git", "host starts with '-'"},
		{"-u@x:app.git", "starts with '-'"},
		{"git@example.com:-u.git", "path starts with '-'"},
		{"example.com:app.git", "not a https/ssh/git/file URL"},
		{"relative/path.git", "not a https/ssh/git/file URL"},
		{"./app.git", "not a https/ssh/git/file URL"},
		{"https://example.com/app.git\n--upload-pack=x", "white space"},
		{"https://example.com/a\x00b", "control character"},
		{"https://example.com/app.git#frag", "fragment"},
		{"https://example.com/" + strings.Repeat("a", 5000), "more than 4096"},
		{"https://example.com/\xff", "not UTF-8"},
	} {
		t.Run(tc.uri, func(t *testing.T) {
			err := ValidateURI(tc.uri)
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("ValidateURI(%q) = %v, want nil", tc.uri, err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("ValidateURI(%q) = %v, want an error with %q", tc.uri, err, tc.want)
			}
		})
	}
}

func TestValidateRevisionAndCommit(t *testing.T) {
	const sha = "0123456789abcdef0123456789abcdef01234567"
	for _, tc := range []struct {
		rev          string
		okRev, okSHA bool
	}{
		{sha, true, true},
		{strings.ToUpper(sha), true, false},
		{"", true, false},
		{"main", true, false},
		{"refs/heads/main", true, false},
		{"refs/tags/v1.2.3", true, false},
		{"feature/x_y-z+1", true, false},
		{"HEAD", true, false},
		{sha[:12], true, false},
		{"--output=/tmp/x", false, false},
		{"-c", false, false},
		{"--upload-pack=touch /tmp/pwned", false, false},
		{"main:refs/heads/evil", false, false},
		{"a..b", false, false},
		{"main@{1}", false, false},
		{"main^{}", false, false},
		{"ma in", false, false},
		{"main\n", false, false},
		{"refs/heads/", false, false},
		{"x.lock", false, false},
		{"refs//heads", false, false},
		{"refs/.hidden", false, false},
		{"*", false, false},
		{sha + "0", true, false}, // a name, as far as its form goes
	} {
		t.Run(tc.rev, func(t *testing.T) {
			if err := ValidateRevision(tc.rev); (err == nil) != tc.okRev {
				t.Errorf("ValidateRevision(%q) = %v, want ok %v", tc.rev, err, tc.okRev)
			}
			if err := ValidateCommit(tc.rev); (err == nil) != tc.okSHA {
				t.Errorf("ValidateCommit(%q) = %v, want ok %v", tc.rev, err, tc.okSHA)
			}
		})
	}
}

// FuzzSourceURI: whatever ValidateURI accepts is something git cannot take
// for an option or a transport helper, and uses an allowed transport.
func FuzzSourceURI(f *testing.F) {
	for _, s := range []string{"https://example.com/a.git", "git@h:p", "/abs", "file:///x", "ext::sh -c x", "--upload-pack=x@h:p", "ssh://-o@h/x", "fd::1", "ssh://[::1]/x"} {
		f.Add(s)
	}
	scheme := regexp.MustCompile(`^(?i)(https|ssh|git|file)://`)
	f.Fuzz(func(t *testing.T, uri string) {
		if ValidateURI(uri) != nil {
			return
		}
		if strings.HasPrefix(uri, "-") || strings.ContainsAny(uri, " \t\r\n\x00") || hasControl(uri) {
			t.Fatalf("accepted %q: option-like or white space", uri)
		}
		if !scheme.MatchString(uri) && (helperRE.MatchString(uri) || strings.Contains(uri, "::")) {
			t.Fatalf("accepted transport helper %q", uri)
		}
		if !scheme.MatchString(uri) && !strings.HasPrefix(uri, "/") && !scpRE.MatchString(uri) {
			t.Fatalf("accepted %q: neither an allowed URL, an absolute path nor user@host:path", uri)
		}
		if m := scpRE.FindStringSubmatch(uri); m != nil && !scheme.MatchString(uri) {
			for _, p := range m[1:] {
				if strings.HasPrefix(p, "-") {
					t.Fatalf("accepted %q: a part starts with '-'", uri)
				}
			}
		}
	})
}

// ambiguousRepo is a bare repository with a branch main and a tag main on
// different commits, a branch v1 and an annotated tag v2.
func ambiguousRepo(t *testing.T) (bare, branch, tag string) {
	t.Helper()
	root := t.TempDir()
	work := filepath.Join(root, "work")
	runGit(t, root, nil, "init", "-q", "-b", "main", work)
	runGit(t, work, nil, "commit", "-q", "--allow-empty", "-m", "one")
	tag = runGit(t, work, nil, "rev-parse", "HEAD")
	runGit(t, work, nil, "tag", "main")
	runGit(t, work, nil, "tag", "-a", "-m", "v2", "v2")
	runGit(t, work, nil, "commit", "-q", "--allow-empty", "-m", "two")
	branch = runGit(t, work, nil, "rev-parse", "HEAD")
	runGit(t, work, nil, "branch", "v1", branch)
	bare = filepath.Join(root, "remote.git")
	runGit(t, root, nil, "clone", "-q", "--bare", work, bare)
	return bare, branch, tag
}

// TestResolveRefs: a name is recorded as the full ref it resolved to, and
// a short name that is a branch and a tag is refused, naming both.
func TestResolveRefs(t *testing.T) {
	isolateGit(t)
	bare, branch, tag := ambiguousRepo(t)
	for _, tc := range []struct {
		rev, commit, ref string
		err              string
	}{
		{rev: "main", err: `"main" is ambiguous: the repository has refs/heads/main and refs/tags/main`},
		{rev: "refs/heads/main", commit: branch, ref: "refs/heads/main"},
		{rev: "refs/tags/main", commit: tag, ref: "refs/tags/main"},
		{rev: "heads/main", commit: branch, ref: "refs/heads/main"},
		{rev: "tags/main", commit: tag, ref: "refs/tags/main"},
		{rev: "v1", commit: branch, ref: "refs/heads/v1"},
		{rev: "v2", commit: tag, ref: "refs/tags/v2"},
		{rev: "", commit: branch, ref: ""},
		{rev: "HEAD", commit: branch, ref: "HEAD"},
		{rev: "refs/heads/v2", err: "no branch or tag of that name"},
		{rev: "refs/tags/v1", err: "no branch or tag of that name"},
	} {
		t.Run(tc.rev, func(t *testing.T) {
			co, err := Fetch(context.Background(), bare, tc.rev, filepath.Join(t.TempDir(), "src"))
			if tc.err != "" {
				var se *Error
				if !errors.As(err, &se) || !strings.Contains(se.Msg, tc.err) {
					t.Fatalf("Fetch(%q) = %+v, %v; want an error with %q", tc.rev, co, err, tc.err)
				}
				if strings.Contains(tc.err, "ambiguous") && !strings.Contains(se.Fix, "refs/heads/main or refs/tags/main") {
					t.Errorf("fix %q does not name both full refs", se.Fix)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if co.Commit != tc.commit || co.Ref != tc.ref {
				t.Errorf("Fetch(%q) = commit %s ref %q, want %s %q", tc.rev, co.Commit, co.Ref, tc.commit, tc.ref)
			}
		})
	}
}

// shortCtx bounds a git command that an attack could leave waiting (fd::
// reads a descriptor nobody writes).
func shortCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// permissiveGit gives git a global configuration that allows every
// transport, as a careless host might: accord's own settings must win.
func permissiveGit(t *testing.T) {
	t.Helper()
	isolateGit(t)
	cfg := filepath.Join(t.TempDir(), "gitconfig")
	if err := os.WriteFile(cfg, []byte("[protocol]\n\tallow = always\n[protocol \"ext\"]\n\tallow = always\n[protocol \"fd\"]\n\tallow = always\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("GIT_CONFIG_GLOBAL", cfg)
	t.Setenv("GIT_ALLOW_PROTOCOL", "ext:fd:file:https:ssh:git")
}

// TestFetchRefusesInjection: a repository location or revision that git
// would take for an option or a command is refused before git runs, and
// nothing runs.
func TestFetchRefusesInjection(t *testing.T) {
	permissiveGit(t)
	repo := newTestRepo(t)
	sha := repo.commits[1].sha
	const mark = "MARK" // each variant gets its own marker file
	for _, tc := range []struct{ name, uri, rev string }{
		{"upload-pack option as the URI", "--upload-pack=touch " + mark + ";@x:y", sha},
		{"upload-pack option as the URI, by branch", "--upload-pack=touch " + mark + ";@x:y", "main"},
		{"config option as the URI", "-c core.sshCommand=touch " + mark + " git@x:y", sha},
		{"ext transport", "ext::sh -c touch% " + mark, sha},
		{"ext transport without spaces", "ext::sh%20-c%20touch%25%20" + mark, sha},
		{"fd transport", "fd::3", sha},
		{"ssh host as an option", "ssh://-oProxyCommand=touch%20" + mark + "/x", sha},
		{"scp host as an option", "git@-oProxyCommand=touch:x", sha},
		{"option as the revision", repo.bare, "--output=" + mark},
		{"upload-pack as the revision", repo.bare, "--upload-pack=touch " + mark},
		{"refspec as the revision", repo.bare, "main:refs/heads/x"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			marker := filepath.Join(t.TempDir(), "pwned")
			tc.uri, tc.rev = strings.ReplaceAll(tc.uri, mark, marker), strings.ReplaceAll(tc.rev, mark, marker)
			co, err := Fetch(shortCtx(t), tc.uri, tc.rev, filepath.Join(t.TempDir(), "src"))
			var se *Error
			if !errors.As(err, &se) || se.Fix == "" {
				t.Errorf("Fetch(%q, %q) = %+v, %v; want a *source.Error with a fix", tc.uri, tc.rev, co, err)
			}
			if _, err := os.Stat(marker); err == nil {
				t.Fatalf("the attack ran: %s exists", marker)
			}
		})
	}
}

// TestGitHardening: below the checks, git itself refuses the dangerous
// transports and takes no operand for an option, whatever the host's
// configuration allows.
func TestGitHardening(t *testing.T) {
	permissiveGit(t)
	repo := newTestRepo(t)
	const mark = "MARK" // each variant gets its own marker file
	dir := t.TempDir()
	if _, err := git(context.Background(), dir, []string{"init", "-q"}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name     string
		cmd      []string
		operands []string
	}{
		{"ext transport", []string{"ls-remote"}, []string{"ext::sh -c touch% " + mark}},
		{"ext transport, fetch", []string{"fetch", "-q"}, []string{"ext::sh -c touch% " + mark, "main"}},
		{"fd transport", []string{"ls-remote"}, []string{"fd::0"}},
		{"upload-pack option", []string{"ls-remote"}, []string{"--upload-pack=touch " + mark + ";", repo.bare}},
		{"upload-pack option, fetch", []string{"fetch", "-q"}, []string{"--upload-pack=touch " + mark + ";", repo.commits[0].sha}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			marker := filepath.Join(t.TempDir(), "pwned")
			for i := range tc.operands {
				tc.operands[i] = strings.ReplaceAll(tc.operands[i], mark, marker)
			}
			if out, err := git(shortCtx(t), dir, tc.cmd, tc.operands...); err == nil {
				t.Errorf("git %v -- %q succeeded: %s", tc.cmd, tc.operands, out)
			}
			if _, err := os.Stat(marker); err == nil {
				t.Fatalf("the attack ran: %s exists", marker)
			}
		})
	}
}

// TestGitInvocations: every git command Fetch runs carries the hardening
// and ends its options with "--" before any operand.
func TestGitInvocations(t *testing.T) {
	isolateGit(t)
	repo := newTestRepo(t)
	real, err := exec.LookPath("git")
	if err != nil {
		t.Fatal(err)
	}
	log := filepath.Join(t.TempDir(), "git.log")
	wrapper := filepath.Join(t.TempDir(), "git")
	script := "#!/bin/sh\nfor a in \"$@\"; do printf '%s\\037' \"$a\" >> " + log + "; done\necho >> " + log + "\nexec " + real + " \"$@\"\n"
	if err := os.WriteFile(wrapper, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	old := gitBinary
	gitBinary = wrapper
	t.Cleanup(func() { gitBinary = old })
	for _, rev := range []string{"main", repo.commits[0].sha, ""} {
		if _, err := Fetch(context.Background(), "file://"+repo.bare, rev, filepath.Join(t.TempDir(), "src")); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(log)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) < 10 {
		t.Fatalf("logged %d git commands, want at least 10", len(lines))
	}
	for _, l := range lines {
		args := strings.Split(strings.TrimSuffix(l, "\037"), "\037")
		if strings.Join(args[:len(Hardening)], " ") != strings.Join(Hardening, " ") {
			t.Errorf("git %q: does not start with the hardening", args)
		}
		dashes := -1
		for i, a := range args {
			if a == "--" {
				dashes = i
				break
			}
		}
		if dashes < 0 {
			t.Errorf("git %q: no -- before the operands", args)
			continue
		}
		for _, a := range args[dashes+1:] {
			if strings.HasPrefix(a, "-") {
				t.Errorf("git %q: operand %q looks like an option", args, a)
			}
		}
	}
}

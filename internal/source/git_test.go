package source

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// commitSpec is one commit of the test repository: the files it changes
// (nil content deletes), and fixed author and committer dates.
type commitSpec struct {
	files                  map[string]*string
	authorDate, commitDate string
	authorEpoch, dateEpoch int64
	tree                   map[string]string // the whole tree after the commit
	sha                    string
}

func str(s string) *string { return &s }

// testRepo is a repository with three commits on main, a branch, a
// lightweight and an annotated tag, served from a bare clone.
type testRepo struct {
	commits [3]*commitSpec
	work    string // path of the repository the commits were made in
	bare    string // path of the bare clone
	tagObj  string // the annotated tag's object name
}

func runGit(t *testing.T, dir string, env []string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(),
		"GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null", "LC_ALL=C",
		"GIT_AUTHOR_NAME=A U Thor", "GIT_AUTHOR_EMAIL=author@example.com",
		"GIT_COMMITTER_NAME=C O Mitter", "GIT_COMMITTER_EMAIL=committer@example.com")
	cmd.Env = append(cmd.Env, env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

func newTestRepo(t *testing.T) *testRepo {
	t.Helper()
	root := t.TempDir()
	work := filepath.Join(root, "work")
	if err := os.Mkdir(work, 0o755); err != nil {
		t.Fatal(err)
	}
	runGit(t, work, nil, "init", "-q", "-b", "main")
	r := &testRepo{commits: [3]*commitSpec{
		{
			files:      map[string]*string{"README": str("one\n"), "src/main.go": str("package main\n")},
			authorDate: "2001-01-01T00:00:00Z", authorEpoch: 978307200,
			commitDate: "2001-02-03T04:05:06Z", dateEpoch: 981173106,
		},
		{
			files:      map[string]*string{"README": str("two\n"), "docs/b.txt": str("b\n")},
			authorDate: "2002-01-01T00:00:00Z", authorEpoch: 1009843200,
			commitDate: "2002-06-07T08:09:10+02:00", dateEpoch: 1023430150,
		},
		{
			files:      map[string]*string{"README": str("three\n"), "docs/b.txt": nil, "src/util.go": str("package main\n\nfunc f() {}\n")},
			authorDate: "2003-01-01T00:00:00Z", authorEpoch: 1041379200,
			commitDate: "2003-03-03T03:03:03Z", dateEpoch: 1046660583,
		},
	}}
	tree := map[string]string{}
	for i, c := range r.commits {
		for p, content := range c.files {
			full := filepath.Join(work, p)
			if content == nil {
				delete(tree, p)
				runGit(t, work, nil, "rm", "-q", p)
				continue
			}
			tree[p] = *content
			if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(full, []byte(*content), 0o644); err != nil {
				t.Fatal(err)
			}
			runGit(t, work, nil, "add", p)
		}
		c.tree = map[string]string{}
		for p, v := range tree {
			c.tree[p] = v
		}
		runGit(t, work, []string{"GIT_AUTHOR_DATE=" + c.authorDate, "GIT_COMMITTER_DATE=" + c.commitDate}, "commit", "-q", "-m", "commit "+string(rune('1'+i)))
		c.sha = runGit(t, work, nil, "rev-parse", "HEAD")

		switch i {
		case 0:
			runGit(t, work, nil, "branch", "release")
			runGit(t, work, nil, "tag", "v0.1")
			// A branch whose name ends in "/main" must not be taken for main.
			runGit(t, work, nil, "branch", "feature/main")
		case 1:
			runGit(t, work, []string{"GIT_COMMITTER_DATE=2010-10-10T10:10:10Z"}, "tag", "-a", "-m", "release 1.0", "v1.0")
			r.tagObj = runGit(t, work, nil, "rev-parse", "v1.0")
		case 2:
			// "dup" is a branch at the first commit and an annotated tag
			// at the last; git takes the tag, accord refuses the name.
			runGit(t, work, nil, "branch", "dup", r.commits[0].sha)
			runGit(t, work, []string{"GIT_COMMITTER_DATE=2011-11-11T11:11:11Z"}, "tag", "-a", "-m", "dup", "dup")
		}
	}
	r.work = work
	r.bare = filepath.Join(root, "remote.git")
	runGit(t, root, nil, "clone", "-q", "--bare", work, r.bare)
	if r.tagObj == r.commits[1].sha {
		t.Fatal("v1.0 is not an annotated tag")
	}
	return r
}

// workTree reads every file under dir except .git.
func workTree(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && d.Name() == ".git" {
			return filepath.SkipDir
		}
		if d.IsDir() {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		out[filepath.ToSlash(rel)] = string(b)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// isolateGit keeps the user's and the system's git configuration out of Fetch.
func isolateGit(t *testing.T) {
	t.Setenv("HOME", t.TempDir())
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	t.Setenv("GIT_CONFIG_GLOBAL", "/dev/null")
}

func TestFetch(t *testing.T) {
	isolateGit(t)
	repo := newTestRepo(t)
	fileURL := "file://" + repo.bare
	c1, c2, c3 := repo.commits[0], repo.commits[1], repo.commits[2]

	for _, tc := range []struct {
		name     string
		uri      string
		revision string
		want     *commitSpec
		wantRef  string
	}{
		{"full SHA of a non-tip commit", fileURL, c2.sha, c2, ""},
		{"full SHA in upper case", fileURL, strings.ToUpper(c2.sha), c2, ""},
		{"full SHA of the first commit, path URL", repo.bare, c1.sha, c1, ""},
		{"branch", fileURL, "release", c1, "refs/heads/release"},
		{"default branch by name", fileURL, "main", c3, "refs/heads/main"},
		{"branch by full ref name", fileURL, "refs/heads/release", c1, "refs/heads/release"},
		{"branch with a slash", fileURL, "feature/main", c1, "refs/heads/feature/main"},
		{"lightweight tag", fileURL, "v0.1", c1, "refs/tags/v0.1"},
		{"annotated tag", fileURL, "v1.0", c2, "refs/tags/v1.0"},
		{"branch by heads/NAME", fileURL, "heads/release", c1, "refs/heads/release"},
		{"annotated tag by tags/NAME", fileURL, "tags/v1.0", c2, "refs/tags/v1.0"},
		{"tag by refs/tags/ when a branch has its name", fileURL, "refs/tags/dup", c3, "refs/tags/dup"},
		{"annotated tag by full ref name", fileURL, "refs/tags/v1.0", c2, "refs/tags/v1.0"},
		{"branch by refs/heads/ when a tag has its name", fileURL, "refs/heads/dup", c1, "refs/heads/dup"},
		{"HEAD", fileURL, "", c3, ""},
		{"HEAD by name", fileURL, "HEAD", c3, "HEAD"},
		{"HEAD, path URL", repo.bare, "", c3, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "src")
			co, err := Fetch(context.Background(), tc.uri, tc.revision, dir)
			if err != nil {
				t.Fatal(err)
			}
			want := &Checkout{Dir: dir, URI: tc.uri, Ref: tc.wantRef, Commit: tc.want.sha, DateEpoch: tc.want.dateEpoch}
			if diff := cmp.Diff(want, co); diff != "" {
				t.Errorf("checkout (-want +got):\n%s", diff)
			}
			if co.Commit == repo.tagObj {
				t.Error("resolved to the tag object, not the commit")
			}
			if co.DateEpoch == tc.want.authorEpoch {
				t.Error("DateEpoch is the author date, want the committer date")
			}
			if diff := cmp.Diff(tc.want.tree, workTree(t, dir)); diff != "" {
				t.Errorf("work tree (-want +got):\n%s", diff)
			}
			// Only that commit was fetched (depth 1).
			if n := runGit(t, dir, nil, "rev-list", "--count", "HEAD"); n != "1" {
				t.Errorf("fetched %s commits, want 1", n)
			}
		})
	}
}

// TestFetchResolvesLikeGit checks every name against git's own resolution
// in the original repository.
func TestFetchResolvesLikeGit(t *testing.T) {
	isolateGit(t)
	repo := newTestRepo(t)
	for _, name := range []string{"main", "release", "feature/main", "v0.1", "v1.0", "heads/release", "tags/v1.0", "refs/heads/main", "refs/tags/dup", "HEAD"} {
		t.Run(name, func(t *testing.T) {
			want := runGit(t, repo.work, nil, "rev-parse", "--verify", "-q", name+"^{commit}")
			co, err := Fetch(context.Background(), repo.bare, name, filepath.Join(t.TempDir(), "src"))
			if err != nil {
				t.Fatal(err)
			}
			if co.Commit != want {
				t.Errorf("Fetch(%q) = %s, git rev-parse says %s", name, co.Commit, want)
			}
		})
	}
}

func TestSubcommand(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"fetch", "-q"}, "fetch"},
		{[]string{"-c", "protocol.version=2", "fetch", "-q"}, "fetch"},
		{[]string{"-c", "a=b", "-c", "advice.detachedHead=false", "checkout", "FETCH_HEAD"}, "checkout"},
		{[]string{"-C", "/tmp", "status"}, "status"},
		{[]string{"--version"}, "--version"},
	} {
		if got := subcommand(tc.args); got != tc.want {
			t.Errorf("subcommand(%q) = %q, want %q", tc.args, got, tc.want)
		}
	}
}

func TestFetchErrors(t *testing.T) {
	isolateGit(t)
	repo := newTestRepo(t)
	fileURL := "file://" + repo.bare
	missing := filepath.Join(t.TempDir(), "no-such-repo.git")
	const unknownSHA = "0123456789abcdef0123456789abcdef01234567"

	for _, tc := range []struct {
		name     string
		uri      string
		revision string
		msg      string // substring of Error.Msg
		fix      string // substring of Error.Fix
	}{
		{"nonexistent repository path", missing, "", "git ls-remote", "check the URL"},
		{"nonexistent repository by branch", "file://" + missing, "main", "git ls-remote", "check the URL"},
		{"nonexistent repository by SHA", missing, repo.commits[0].sha, "git fetch", "commit exists there"},
		{"nonexistent branch", fileURL, "no-such-branch", "no branch or tag of that name", "full 40-character commit hash"},
		{"branch name suffix only", fileURL, "ain", "no branch or tag of that name", "git ls-remote lists them"},
		{"nonexistent SHA", fileURL, unknownSHA, "git fetch", "commit exists there"},
		{"abbreviated SHA", fileURL, repo.commits[1].sha[:12], "no branch or tag of that name", "full 40-character commit hash"},
		{"branch and annotated tag of the same name", fileURL, "dup", `"dup" is ambiguous: the repository has refs/heads/dup and refs/tags/dup`, "refs/heads/dup or refs/tags/dup"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			co, err := Fetch(context.Background(), tc.uri, tc.revision, filepath.Join(t.TempDir(), "src"))
			if err == nil {
				t.Fatalf("Fetch succeeded: %+v", co)
			}
			var se *Error
			if !errors.As(err, &se) {
				t.Fatalf("got %T (%v), want *source.Error", err, err)
			}
			if se.URI != tc.uri || se.Revision != tc.revision {
				t.Errorf("Error names %q at %q, want %q at %q", se.URI, se.Revision, tc.uri, tc.revision)
			}
			if !strings.Contains(se.Msg, tc.msg) {
				t.Errorf("Msg = %q, want it to contain %q", se.Msg, tc.msg)
			}
			if se.Fix == "" || !strings.Contains(se.Fix, tc.fix) {
				t.Errorf("Fix = %q, want it to contain %q", se.Fix, tc.fix)
			}
			if s := se.Error(); !strings.Contains(s, tc.uri) || !strings.Contains(s, "\n  fix: ") {
				t.Errorf("Error() = %q", s)
			}
		})
	}
}

func TestFetchCanceled(t *testing.T) {
	isolateGit(t)
	repo := newTestRepo(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if co, err := Fetch(ctx, repo.bare, "main", filepath.Join(t.TempDir(), "src")); err == nil {
		t.Fatalf("Fetch with a canceled context succeeded: %+v", co)
	}
}

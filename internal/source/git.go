package source

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
)

// Checkout is a fetched source tree.
type Checkout struct {
	// Dir holds the work tree (and a .git directory).
	Dir string
	// URI is the repository URL as given.
	URI string
	// Ref is the branch or tag that was asked for ("" for a commit).
	Ref string
	// Commit is the full commit hash.
	Commit string
	// DateEpoch is the committer time, for SOURCE_DATE_EPOCH.
	DateEpoch int64
}

var fullSHA = regexp.MustCompile(`^[0-9a-f]{40}$`)

// Error is a failed fetch, with git's own words and a fix.
type Error struct {
	URI, Revision, Msg, Fix string
}

func (e *Error) Error() string {
	return fmt.Sprintf("fetching %s at %q: %s\n  fix: %s", e.URI, e.Revision, e.Msg, e.Fix)
}

// Fetch fetches revision of the repository at uri into dir (created, must
// not exist or be empty). revision is a full commit hash (fetched directly;
// git protocol v2 allows a commit that is not a branch tip), or a branch or
// tag name that is resolved with ls-remote first; empty means HEAD. Only
// that commit is fetched (depth 1).
func Fetch(ctx context.Context, uri, revision, dir string) (*Checkout, error) {
	c := &Checkout{Dir: dir, URI: uri}
	commit := strings.ToLower(revision)
	if !fullSHA.MatchString(commit) {
		c.Ref = revision
		var err error
		if commit, err = resolve(ctx, uri, revision); err != nil {
			return nil, err
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	steps := [][]string{
		{"init", "-q"},
		{"-c", "protocol.version=2", "fetch", "-q", "--depth=1", "--no-tags", uri, commit},
		{"-c", "advice.detachedHead=false", "checkout", "-q", "FETCH_HEAD"},
	}
	for _, args := range steps {
		if _, err := git(ctx, dir, args...); err != nil {
			return nil, &Error{URI: uri, Revision: revision, Msg: err.Error(), Fix: "check that the URL is reachable from this machine and that the commit exists there (git fetch works by exact commit with protocol v2)"}
		}
	}
	head, err := git(ctx, dir, "rev-parse", "HEAD")
	if err != nil {
		return nil, err
	}
	if head != commit {
		return nil, &Error{URI: uri, Revision: revision, Msg: "fetched " + head + ", not " + commit, Fix: "give the full 40-character commit hash"}
	}
	c.Commit = head
	ct, err := git(ctx, dir, "show", "-s", "--format=%ct", "HEAD")
	if err != nil {
		return nil, err
	}
	if c.DateEpoch, err = strconv.ParseInt(ct, 10, 64); err != nil {
		return nil, fmt.Errorf("commit time %q: %w", ct, err)
	}
	return c, nil
}

// resolve turns a branch, tag or "" (HEAD) into a commit with ls-remote.
// Annotated tags resolve to the commit they point at.
func resolve(ctx context.Context, uri, ref string) (string, error) {
	args := []string{"ls-remote", uri}
	if ref == "" {
		args = append(args, "HEAD")
	} else {
		args = append(args, ref, ref+"^{}")
	}
	out, err := git(ctx, "", args...)
	if err != nil {
		return "", &Error{URI: uri, Revision: ref, Msg: err.Error(), Fix: "check the URL (a git URL or a path to a repository) and that it is reachable"}
	}
	// ls-remote matches its patterns against the tail of ref names, so
	// "main" also lists refs/heads/feature/main (sorted before it). Take
	// only an exact name, in git's order for a short name, and for an
	// annotated tag the commit it points at.
	refs := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) == 2 {
			refs[f[1]] = f[0]
		}
	}
	names := []string{"HEAD"}
	if ref != "" {
		names = []string{ref, "refs/" + ref, "refs/tags/" + ref, "refs/heads/" + ref}
	}
	for _, n := range names {
		if c, ok := refs[n+"^{}"]; ok {
			return c, nil
		}
		if c, ok := refs[n]; ok {
			return c, nil
		}
	}
	return "", &Error{URI: uri, Revision: ref, Msg: "no branch or tag of that name", Fix: "give a branch, a tag, or a full 40-character commit hash (git ls-remote lists them)"}
}

func git(ctx context.Context, dir string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_TERMINAL_PROMPT=0", "GIT_CONFIG_NOSYSTEM=1", "LC_ALL=C")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		msg := strings.TrimSpace(stderr.String())
		if msg == "" {
			msg = err.Error()
		}
		return "", fmt.Errorf("git %s: %s", subcommand(args), msg)
	}
	return strings.TrimSpace(string(out)), nil
}

// subcommand returns the git command in args, after any "-c name=value".
func subcommand(args []string) string {
	for i := 0; i < len(args); i++ {
		switch {
		case args[i] == "-c" || args[i] == "-C":
			i++
		case !strings.HasPrefix(args[i], "-"):
			return args[i]
		}
	}
	return strings.Join(args, " ")
}

package source

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// Checkout is a fetched source tree.
type Checkout struct {
	// Dir holds the work tree (and a .git directory).
	Dir string
	// URI is the repository URL as given.
	URI string
	// Ref is the full name of the branch or tag that was asked for
	// (refs/heads/main, refs/tags/v1), "HEAD" for HEAD by name, and ""
	// for a commit or the default HEAD.
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
// tag name that is resolved with ls-remote first; empty means HEAD. A short
// name that is both a branch and a tag is refused. Only that commit is
// fetched (depth 1). uri and revision are checked first ([ValidateURI],
// [ValidateRevision]), and every git command runs with [Hardening].
func Fetch(ctx context.Context, uri, revision, dir string) (*Checkout, error) {
	if err := ValidateURI(uri); err != nil {
		return nil, &Error{URI: uri, Revision: revision, Msg: err.Error(), Fix: "give an " + strings.Join(Schemes, ", ") + " URL, a user@host:path or an absolute path"}
	}
	if err := ValidateRevision(revision); err != nil {
		return nil, &Error{URI: uri, Revision: revision, Msg: err.Error(), Fix: "give a branch, a tag, or a full 40-character commit hash"}
	}
	c := &Checkout{Dir: dir, URI: uri}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	// Every git command runs in this new repository, so that no
	// repository around the current directory lends its configuration.
	if _, err := git(ctx, dir, []string{"init", "-q"}); err != nil {
		return nil, err
	}
	commit := strings.ToLower(revision)
	if !fullSHA.MatchString(commit) {
		var err error
		if commit, c.Ref, err = resolve(ctx, dir, uri, revision); err != nil {
			return nil, err
		}
	}
	steps := []struct{ cmd, operands []string }{
		{[]string{"-c", "protocol.version=2", "fetch", "-q", "--depth=1", "--no-tags"}, []string{uri, commit}},
		// FETCH_HEAD before "--": checkout's operands after it are paths.
		{[]string{"-c", "advice.detachedHead=false", "checkout", "-q", "FETCH_HEAD"}, nil},
	}
	for _, s := range steps {
		if _, err := git(ctx, dir, s.cmd, s.operands...); err != nil {
			return nil, &Error{URI: uri, Revision: revision, Msg: err.Error(), Fix: "check that the URL is reachable from this machine and that the commit exists there (git fetch works by exact commit with protocol v2)"}
		}
	}
	out, err := git(ctx, dir, []string{"log", "-1", "--format=%H %ct", "HEAD"})
	if err != nil {
		return nil, err
	}
	head, ct, _ := strings.Cut(out, " ")
	if head != commit {
		return nil, &Error{URI: uri, Revision: revision, Msg: "fetched " + head + ", not " + commit, Fix: "give the full 40-character commit hash"}
	}
	c.Commit = head
	if c.DateEpoch, err = strconv.ParseInt(ct, 10, 64); err != nil {
		return nil, fmt.Errorf("commit time %q: %w", ct, err)
	}
	return c, nil
}

// resolve turns a branch, tag or "" (HEAD) into a commit with ls-remote,
// and names the full ref it found. Annotated tags resolve to the commit
// they point at. A short name is looked up as git does (refs/NAME,
// refs/tags/NAME, refs/heads/NAME), but more than one match is refused:
// a tag must not pass for the branch of the same name.
func resolve(ctx context.Context, dir, uri, ref string) (commit, full string, err error) {
	patterns := []string{"HEAD"}
	if ref != "" {
		patterns = []string{ref, ref + "^{}"}
	}
	out, err := git(ctx, dir, []string{"ls-remote"}, append([]string{uri}, patterns...)...)
	if err != nil {
		return "", "", &Error{URI: uri, Revision: ref, Msg: err.Error(), Fix: "check the URL (a git URL or a path to a repository) and that it is reachable"}
	}
	// ls-remote matches its patterns against the tail of ref names, so
	// "main" also lists refs/heads/feature/main. Take only exact names,
	// and for an annotated tag the commit it points at.
	refs := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) == 2 {
			refs[f[1]] = f[0]
		}
	}
	var names []string
	switch {
	case ref == "" || ref == "HEAD":
		names = []string{"HEAD"}
	case strings.HasPrefix(ref, "refs/"):
		names = []string{ref}
	default:
		names = []string{"refs/" + ref, "refs/tags/" + ref, "refs/heads/" + ref}
	}
	var found []string
	for _, n := range names {
		if _, ok := refs[n]; ok {
			found = append(found, n)
		}
	}
	switch len(found) {
	case 0:
		return "", "", &Error{URI: uri, Revision: ref, Msg: "no branch or tag of that name", Fix: "give a branch, a tag, or a full 40-character commit hash (git ls-remote lists them)"}
	case 1:
	default:
		sort.Strings(found)
		return "", "", &Error{URI: uri, Revision: ref, Msg: fmt.Sprintf("%q is ambiguous: the repository has %s", ref, strings.Join(found, " and ")),
			Fix: "pass the full ref of the one you mean: " + strings.Join(found, " or ")}
	}
	full = found[0]
	if c, ok := refs[full+"^{}"]; ok {
		commit = c
	} else {
		commit = refs[full]
	}
	if ref == "" {
		full = ""
	}
	return commit, full, nil
}

// Hardening is the configuration every git command of this package runs
// with: git may use only the transports in [Schemes] (ext::, fd:: and any
// other remote helper are refused, whatever the user's git configuration
// says; GIT_ALLOW_PROTOCOL enforces the same list), and runs no hooks and
// no fsmonitor.
var Hardening = []string{
	"-c", "protocol.allow=never",
	"-c", "protocol.https.allow=always", "-c", "protocol.ssh.allow=always",
	"-c", "protocol.git.allow=always", "-c", "protocol.file.allow=always",
	"-c", "protocol.ext.allow=never", "-c", "protocol.fd.allow=never",
	"-c", "core.hooksPath=/dev/null", "-c", "core.fsmonitor=false",
}

// gitBinary is the git that runs; a variable for tests.
var gitBinary = "git"

// git runs "git [Hardening] cmd... -- operands...": cmd holds the command
// and its options, and "--" always ends them, so that no operand (a URI,
// a ref) can be taken for an option.
func git(ctx context.Context, dir string, cmd []string, operands ...string) (string, error) {
	args := append(append(append(append([]string(nil), Hardening...), cmd...), "--"), operands...)
	c := exec.CommandContext(ctx, gitBinary, args...)
	c.Dir = dir
	c.Env = append(os.Environ(), "GIT_TERMINAL_PROMPT=0", "GIT_CONFIG_NOSYSTEM=1", "LC_ALL=C",
		"GIT_ALLOW_PROTOCOL="+strings.Join(Schemes, ":"), "GIT_PROTOCOL_FROM_USER=0")
	var stderr bytes.Buffer
	c.Stderr = &stderr
	out, err := c.Output()
	if err != nil {
		msg := strings.TrimSpace(stderr.String())
		if msg == "" {
			msg = err.Error()
		}
		return "", fmt.Errorf("git %s: %s", subcommand(cmd), msg)
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

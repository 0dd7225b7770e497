package trigger

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/accord-build/accord/internal/source"
)

// ErrTagNotFound is returned by [GitResolveTag] when the repository has
// no tag of that name (deleted since, or a mirror that does not have it).
var ErrTagNotFound = errors.New("tag not found")

// tagTimeout bounds one git ls-remote; a variable for tests.
var tagTimeout = 30 * time.Second

// gitProgram is the git that runs; a variable for tests.
var gitProgram = "git"

// maxLsRemote bounds what ls-remote may print.
const maxLsRemote = 1 << 20

// GitResolveTag resolves tag (a name such as v1.2.0, without refs/tags/)
// at the repository cloneURL to the commit it names, with
// "git ls-remote -- URL refs/tags/TAG refs/tags/TAG^{}": for an annotated
// tag the peeled commit wins. cloneURL and tag are checked first
// ([source.ValidateURI]: nothing git could take for an option, no
// transport helpers; the tag a plain ref name), git runs with
// [source.Hardening], a scrubbed environment (no user or system git
// configuration, no prompts, only the allowed transports), outside any
// repository, and for at most 30 seconds. A tag that is not there is
// [ErrTagNotFound]; a git that fails (unreachable, timed out) is a
// retryable error ([IsRetryable]).
func GitResolveTag(ctx context.Context, cloneURL, tag string) (string, error) {
	if err := source.ValidateURI(cloneURL); err != nil {
		return "", fmt.Errorf("resolving tag %q: %w", tag, err)
	}
	if err := validateTagName(tag); err != nil {
		return "", fmt.Errorf("resolving tag at %s: %w", cloneURL, err)
	}
	ref := "refs/tags/" + tag
	out, err := lsRemote(ctx, cloneURL, ref, ref+"^{}")
	if err != nil {
		return "", retryable(fmt.Errorf("resolving tag %s at %s: %w", tag, cloneURL, err))
	}
	refs := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		// ls-remote matches patterns against the tail of ref names
		// (refs/heads/refs/tags/v1 too): take exact names only.
		if f := strings.Fields(line); len(f) == 2 {
			refs[f[1]] = f[0]
		}
	}
	commit, ok := refs[ref+"^{}"]
	if !ok {
		commit, ok = refs[ref]
	}
	if !ok {
		return "", fmt.Errorf("resolving tag %s at %s: %w", tag, cloneURL, ErrTagNotFound)
	}
	commit = strings.ToLower(commit)
	if !isFullSHA(commit) {
		return "", fmt.Errorf("resolving tag %s at %s: git named %q, not a commit hash", tag, cloneURL, commit)
	}
	return commit, nil
}

// validateTagName checks that tag is a plain tag name that git can take
// neither for an option nor for a revision expression.
func validateTagName(tag string) error {
	if tag == "" || strings.HasPrefix(tag, "-") || strings.HasPrefix(tag, "refs/") || strings.ContainsAny(tag, "^~:?*[\\@{") {
		return fmt.Errorf("tag name %q is not built: only plain tag names (letters, digits, . _ - + /) are", tag)
	}
	if err := source.ValidateRevision("refs/tags/" + tag); err != nil {
		return fmt.Errorf("tag name %q is not built: %w", tag, err)
	}
	return nil
}

// lsRemote runs git ls-remote in an empty directory, with the options
// ended by "--" before the URL.
func lsRemote(ctx context.Context, url string, patterns ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, tagTimeout)
	defer cancel()
	dir, err := os.MkdirTemp("", "accord-ls-remote-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(dir)
	args := append(append([]string(nil), source.Hardening...), "-c", "protocol.version=2", "ls-remote", "--", url)
	cmd := exec.CommandContext(ctx, gitProgram, append(args, patterns...)...)
	cmd.Dir = dir
	cmd.Env = gitEnv(dir)
	cmd.WaitDelay = 2 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &cappedBuffer{buf: &stdout, max: maxLsRemote}
	cmd.Stderr = &cappedBuffer{buf: &stderr, max: 4096}
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return "", fmt.Errorf("git ls-remote: %w", ctx.Err())
		}
		msg := strings.TrimSpace(stderr.String())
		if msg == "" {
			msg = err.Error()
		}
		return "", fmt.Errorf("git ls-remote: %s", msg)
	}
	return stdout.String(), nil
}

// passEnv are the variables of the server's environment that git may
// see: where programs are, the home directory (for ssh's keys and
// known hosts), an ssh agent and proxies. Everything else (GIT_DIR,
// GIT_SSH_COMMAND, GIT_CONFIG_*, ...) is dropped.
var passEnv = []string{"PATH", "HOME", "SSH_AUTH_SOCK", "HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"}

// gitEnv is the scrubbed environment of a git run in dir.
func gitEnv(dir string) []string {
	var env []string
	for _, k := range passEnv {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	return append(env,
		"LC_ALL=C", "GIT_TERMINAL_PROMPT=0", "GIT_ASKPASS=", "SSH_ASKPASS=",
		"GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null",
		"GIT_CEILING_DIRECTORIES="+filepath.Dir(dir),
		"GIT_ALLOW_PROTOCOL="+strings.Join(source.Schemes, ":"), "GIT_PROTOCOL_FROM_USER=0",
		"GIT_SSH_COMMAND=ssh -o BatchMode=yes")
}

// cappedBuffer keeps the first max bytes written to it and drops the
// rest (git keeps running; its exit status still counts).
type cappedBuffer struct {
	buf *bytes.Buffer
	max int
}

func (l *cappedBuffer) Write(p []byte) (int, error) {
	if room := l.max - l.buf.Len(); room > 0 {
		if len(p) > room {
			l.buf.Write(p[:room])
		} else {
			l.buf.Write(p)
		}
	}
	return len(p), nil
}

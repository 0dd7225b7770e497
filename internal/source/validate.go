package source

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"unicode/utf8"
)

// Schemes are the URL schemes a repository location may use; they are
// also the only transports git may use (GIT_ALLOW_PROTOCOL).
var Schemes = []string{"https", "ssh", "git", "file"}

// maxURILen bounds a repository location.
const maxURILen = 4096

var (
	// schemeRE is a URL's "scheme://".
	schemeRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9+.-]*://`)
	// helperRE is git's "<transport>::<address>" (ext::, fd::, any
	// git-remote-<transport> helper).
	helperRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9+.-]*::`)
	// scpRE is git's scp-like syntax, user@host:path, with the user
	// required (as 'accord run --source' has always wanted an @).
	scpRE = regexp.MustCompile(`^([A-Za-z0-9._~+-]+)@([A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\]):(.+)$`)
)

// ValidateURI checks that uri is a repository location accord may hand to
// git: an https://, ssh://, git:// or file:// URL, an scp-like
// user@host:path (ssh), or an absolute path (file). It refuses what git
// could take for an option (a leading "-" in the whole, or in its user,
// host or path), transport helpers (<transport>::<address>, such as ext::
// and fd::), other schemes (http:// included), white space and control
// characters. The error says what is wrong, not where the value came from.
func ValidateURI(uri string) error {
	switch {
	case uri == "":
		return errors.New("empty repository location")
	case len(uri) > maxURILen:
		return fmt.Errorf("repository location is %d bytes long, more than %d", len(uri), maxURILen)
	case !utf8.ValidString(uri):
		return errors.New("repository location is not UTF-8")
	case strings.HasPrefix(uri, "-"):
		return errors.New("repository location starts with '-': git would take it for an option")
	case hasControl(uri) || strings.ContainsAny(uri, " \t\n\r"):
		return errors.New("repository location contains white space or a control character")
	case schemeRE.MatchString(uri):
		return validateURL(uri)
	case helperRE.MatchString(uri) || strings.Contains(uri, "::"):
		return errors.New("repository location uses a git transport helper (<transport>::<address>, such as ext:: or fd::): only " + strings.Join(Schemes, ", ") + " are allowed")
	case strings.HasPrefix(uri, "/"):
		return nil
	}
	m := scpRE.FindStringSubmatch(uri)
	if m == nil {
		return fmt.Errorf("repository location %q is not a %s URL, a user@host:path or an absolute path", uri, strings.Join(Schemes, "/"))
	}
	for i, part := range []string{"user", "host", "path"} {
		if strings.HasPrefix(m[i+1], "-") {
			return fmt.Errorf("repository location's %s starts with '-': git or ssh would take it for an option", part)
		}
	}
	return nil
}

func validateURL(uri string) error {
	u, err := url.Parse(uri)
	if err != nil {
		return fmt.Errorf("repository URL: %w", err)
	}
	scheme := strings.ToLower(u.Scheme)
	allowed := false
	for _, s := range Schemes {
		allowed = allowed || s == scheme
	}
	if !allowed {
		return fmt.Errorf("repository URL scheme %q is not allowed: use %s", u.Scheme, strings.Join(Schemes, ", "))
	}
	if u.Opaque != "" || u.Fragment != "" {
		return errors.New("repository URL has an opaque part or a fragment")
	}
	if hasControl(u.Path) || hasControl(u.User.Username()) || strings.HasPrefix(u.Path, "-") {
		return errors.New("repository URL's path or user decodes to a control character or a leading '-'")
	}
	if scheme == "file" {
		if u.Host != "" && u.Host != "localhost" {
			return fmt.Errorf("file URL names host %q: file URLs are local", u.Host)
		}
		if !strings.HasPrefix(u.Path, "/") {
			return errors.New("file URL's path is not absolute")
		}
		return nil
	}
	switch {
	case u.Hostname() == "":
		return errors.New("repository URL has no host")
	case strings.HasPrefix(u.Hostname(), "-"):
		return errors.New("repository URL's host starts with '-': ssh would take it for an option")
	case strings.HasPrefix(u.User.Username(), "-"):
		return errors.New("repository URL's user starts with '-': ssh would take it for an option")
	}
	return nil
}

func hasControl(s string) bool {
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return true
		}
	}
	return false
}

// ValidateCommit checks that s is a full commit hash: 40 lowercase hex
// digits, as provenance records it.
func ValidateCommit(s string) error {
	if !fullSHA.MatchString(s) {
		return fmt.Errorf("%q is not a full commit hash (40 lowercase hex digits)", s)
	}
	return nil
}

// refRE is what a revision other than a commit may look like: git's
// check-ref-format rules, tightened (no leading '-', no white space).
var refRE = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_./+-]*$`)

// ValidateRevision checks a revision for [Fetch]: "", a full commit hash
// (any case), or a branch or tag name (short, or a full ref such as
// refs/heads/main) that git could not take for an option or a refspec.
func ValidateRevision(rev string) error {
	if rev == "" || fullSHA.MatchString(strings.ToLower(rev)) {
		return nil
	}
	switch {
	case len(rev) > 1024:
		return errors.New("revision is longer than 1024 bytes")
	case strings.HasPrefix(rev, "-"):
		return fmt.Errorf("revision %q starts with '-': git would take it for an option", rev)
	case !refRE.MatchString(rev), strings.Contains(rev, ".."), strings.Contains(rev, "//"),
		strings.HasSuffix(rev, "/"), strings.HasSuffix(rev, "."), strings.HasSuffix(rev, ".lock"), strings.Contains(rev, "/."):
		return fmt.Errorf("revision %q is not a commit hash, branch or tag name", rev)
	}
	return nil
}

package trigger

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/google/go-github/v88/github"
)

// Handles reports whether the server builds anything for deliveries of
// event (X-GitHub-Event): push, create, release, pull_request,
// issue_comment and check_run. ping and every other event are not built.
func Handles(event string) bool {
	switch event {
	case "push", "create", "release", "pull_request", "issue_comment", "check_run":
		return true
	}
	return false
}

// parsePayload decodes body as the payload of event with go-github's
// webhook types (*github.PushEvent, *github.CreateEvent, ...).
func parsePayload(event string, body []byte) (any, error) {
	p, err := github.ParseWebHook(event, body)
	if err != nil {
		return nil, fmt.Errorf("reading the %s payload: %w", event, err)
	}
	return p, nil
}

// zeroSHA is the "after" of a deleted ref.
const zeroSHA = "0000000000000000000000000000000000000000"

// isFullSHA reports whether s is a full, lower-case commit hash other
// than the all-zero one of a deleted ref.
func isFullSHA(s string) bool {
	if len(s) != 40 || s == zeroSHA {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !strings.ContainsRune("0123456789abcdef", rune(s[i])) {
			return false
		}
	}
	return true
}

// maxTitle bounds a request's title, in bytes.
const maxTitle = 200

// titleOf is the first line of text (a commit message, a pull request's
// title), bounded and with control characters turned into spaces. It is
// still payload text: whoever shows it escapes it.
func titleOf(text string) string {
	line, _, _ := strings.Cut(strings.TrimLeft(text, " \t\r\n"), "\n")
	line = strings.ToValidUTF8(line, "\uFFFD")
	line = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, line)
	line = strings.TrimSpace(line)
	if len(line) > maxTitle {
		cut := maxTitle
		for cut > 0 && !utf8.RuneStart(line[cut]) {
			cut--
		}
		line = line[:cut] + "…"
	}
	return line
}

// repoOf is a payload's repository.full_name and clone_url.
type repoOf struct {
	FullName, CloneURL string
	ID                 int64
}

func fromRepository(r *github.Repository) repoOf {
	return repoOf{FullName: r.GetFullName(), CloneURL: r.GetCloneURL(), ID: r.GetID()}
}

func fromPushRepository(r *github.PushEventRepository) repoOf {
	return repoOf{FullName: r.GetFullName(), CloneURL: r.GetCloneURL(), ID: r.GetID()}
}

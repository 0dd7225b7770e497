package ghapi

import (
	"cmp"
	"slices"
	"strings"
	"unicode/utf8"
)

// Masked replaces a secret value in a log.
const Masked = "***"

// Mask replaces every occurrence of each secret value in log with
// [Masked]: the whole value, and, for a value of several lines, each of
// its lines (a step printing a key file line by line leaks it that way).
// Longer values are masked first, so a secret that contains another is
// masked whole. Empty values and lines of fewer than 4 characters (which
// would blank common text) are not masked on their own. Mask before
// cutting a log (see [Tail]): cutting first can leave part of a secret
// that no longer matches.
func Mask(log string, secrets []string) string {
	var vals []string
	for _, s := range secrets {
		if s == "" {
			continue
		}
		vals = append(vals, s)
		if strings.ContainsAny(s, "\r\n") {
			for line := range strings.FieldsFuncSeq(s, func(r rune) bool { return r == '\n' || r == '\r' }) {
				if line = strings.TrimSpace(line); len(line) >= 4 {
					vals = append(vals, line)
				}
			}
		}
	}
	slices.SortFunc(vals, func(a, b string) int { return cmp.Compare(len(b), len(a)) })
	for _, v := range slices.Compact(vals) {
		log = strings.ReplaceAll(log, v, Masked)
	}
	return log
}

// Tail returns the end of log: its last maxLines lines (a final newline
// does not count as a line), then at most maxBytes bytes of those, cut at
// a line start where one is inside the limit, else at a UTF-8 character
// boundary. A limit of 0 or less is no limit.
func Tail(log string, maxLines, maxBytes int) string {
	if maxLines > 0 {
		body := strings.TrimSuffix(log, "\n")
		n := 0
		for i := len(body) - 1; i >= 0; i-- {
			if body[i] == '\n' {
				if n++; n == maxLines {
					log = log[i+1:]
					break
				}
			}
		}
	}
	if maxBytes <= 0 || len(log) <= maxBytes {
		return log
	}
	cut := len(log) - maxBytes
	if nl := strings.IndexByte(log[cut:], '\n'); nl >= 0 && nl+1 < len(log)-cut {
		return log[cut+nl+1:]
	}
	for cut < len(log) && !utf8.RuneStart(log[cut]) {
		cut++
	}
	return log[cut:]
}

// truncate cuts s to at most n bytes at a character boundary, ending it
// with an ellipsis when cut.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	const ell = "…"
	cut := max(n-len(ell), 0)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + ell
}

// truncateRunes cuts s to at most n characters, ending it with an
// ellipsis when cut.
func truncateRunes(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

// md escapes text from a payload (or anything not ours) for Markdown:
// one line, every ASCII punctuation character that Markdown or GitHub's
// autolinking reads backslash-escaped, and <, > and & as HTML entities
// (GitHub renders HTML in Markdown). @ is escaped too, so a commit
// message cannot mention (and notify) people.
func md(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	for _, r := range s {
		switch {
		case r == '<':
			b.WriteString("&lt;")
		case r == '>':
			b.WriteString("&gt;")
		case r == '&':
			b.WriteString("&amp;")
		case r == '\n' || r == '\r' || r == '\t':
			b.WriteByte(' ')
		case r < 0x20 || r == 0x7f:
			// control characters: dropped
		case r < 0x80 && strings.ContainsRune("\\`*_{}[]()#+-.!|~@:/=\"'$%^", r):
			b.WriteByte('\\')
			b.WriteRune(r)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// linkURL makes a URL safe as a Markdown link destination.
func linkURL(u string) string {
	return strings.NewReplacer(" ", "%20", "(", "%28", ")", "%29", "<", "%3C", ">", "%3E", "\n", "", "\r", "").Replace(u)
}

// fence returns a code fence longer than any run of backticks in s, so s
// cannot close it.
func fence(s string) string {
	longest, run := 0, 0
	for i := 0; i < len(s); i++ {
		if s[i] == '`' {
			run++
			longest = max(longest, run)
		} else {
			run = 0
		}
	}
	return strings.Repeat("`", max(3, longest+1))
}

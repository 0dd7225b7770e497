package ghapi

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzMarkdown: escaped text never carries an HTML tag, a link, a
// mention, a line break or a table cell break.
func FuzzMarkdown(f *testing.F) {
	for _, s := range []string{"<script>x</script>", "[a](b)", "@team", "a|b\nc", "`x`", "\\<x>"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := md(s)
		if strings.ContainsAny(got, "<>\n\r") {
			t.Fatalf("md(%q) = %q: a tag or line break", s, got)
		}
		for i := 0; i < len(got); i++ {
			if strings.IndexByte("[]()|@`*_!", got[i]) >= 0 && !escaped(got, i) {
				t.Fatalf("md(%q) = %q: %q at %d not escaped", s, got, got[i], i)
			}
		}
	})
}

// escaped says whether got[i] is preceded by an odd run of backslashes.
func escaped(s string, i int) bool {
	n := 0
	for j := i - 1; j >= 0 && s[j] == '\\'; j-- {
		n++
	}
	return n%2 == 1
}

// FuzzTail: a tail is a suffix, within both limits, valid UTF-8 when the
// log was.
func FuzzTail(f *testing.F) {
	f.Add("a\nb\nc\n", 2, 3)
	f.Add("ééé\n", 0, 3)
	f.Fuzz(func(t *testing.T, log string, lines, maxBytes int) {
		got := Tail(log, lines, maxBytes)
		if !strings.HasSuffix(log, got) {
			t.Fatalf("Tail(%q) = %q: not a suffix", log, got)
		}
		if maxBytes > 0 && len(got) > maxBytes {
			t.Fatalf("Tail(%q, %d, %d) = %q: over the byte limit", log, lines, maxBytes, got)
		}
		if lines > 0 && strings.Count(strings.TrimSuffix(got, "\n"), "\n") >= lines {
			t.Fatalf("Tail(%q, %d, %d) = %q: over the line limit", log, lines, maxBytes, got)
		}
		if utf8.ValidString(log) && !utf8.ValidString(got) {
			t.Fatalf("Tail(%q) = %q: not UTF-8", log, got)
		}
	})
}

// FuzzMask: no secret of 4 bytes or more survives masking.
func FuzzMask(f *testing.F) {
	f.Add("pw=hunter22", "hunter22", "hunter")
	f.Add("aaaa", "aa", "aaa")
	f.Fuzz(func(t *testing.T, log, s1, s2 string) {
		got := Mask(log, []string{s1, s2})
		for _, s := range []string{s1, s2} {
			if len(s) >= 4 && !strings.Contains(Masked, s) && strings.Contains(got, s) {
				t.Fatalf("Mask(%q, %q, %q) = %q: %q survives", log, s1, s2, got, s)
			}
		}
	})
}

package ghapi

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestMask(t *testing.T) {
	key := "-----BEGIN KEY-----\nMIIEpAIBAAKCAQEA\nZm9vYmFyYmF6\n-----END KEY-----"
	for _, tc := range []struct {
		name    string
		log     string
		secrets []string
		want    string
	}{
		{"plain", "token=hunter22 ok", []string{"hunter22"}, "token=*** ok"},
		{"every occurrence", "a hunter22 b hunter22", []string{"hunter22"}, "a *** b ***"},
		{"several secrets", "u=alice p=hunter22", []string{"alice", "hunter22"}, "u=*** p=***"},
		{"longest first", "x=hunter22-suffix", []string{"hunter22", "hunter22-suffix"}, "x=***"},
		{"multi-line whole", "got " + key + " end", []string{key}, "got *** end"},
		{"multi-line by line", "line: MIIEpAIBAAKCAQEA\nline: Zm9vYmFyYmF6\n", []string{key}, "line: ***\nline: ***\n"},
		{"CRLF secret lines", "MIIEpAIBAAKCAQEA", []string{"MIIEpAIBAAKCAQEA\r\nxyzw"}, "***"},
		{"short lines of a multi-line secret stay", "a\nb", []string{"a\nb\nlongline"}, "a\nb"},
		{"empty secret ignored", "nothing here", []string{""}, "nothing here"},
		{"no secrets", "nothing here", nil, "nothing here"},
		{"unicode", "pw=пароль!", []string{"пароль"}, "pw=***!"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Mask(tc.log, tc.secrets); got != tc.want {
				t.Errorf("Mask = %q, want %q", got, tc.want)
			}
		})
	}
}

// TestMaskThenTail: masking before cutting leaves no piece of a secret
// at the cut.
func TestMaskThenTail(t *testing.T) {
	secret := "SECRETVALUE123"
	log := strings.Repeat("x", 100) + secret + "\nlast\n"
	got := Tail(Mask(log, []string{secret}), 0, 20)
	if strings.Contains(got, "VALUE") || strings.Contains(got, "123") {
		t.Errorf("tail %q shows part of the secret", got)
	}
}

func TestTail(t *testing.T) {
	for _, tc := range []struct {
		name            string
		log             string
		lines, maxBytes int
		want            string
	}{
		{"no limits", "a\nb\nc\n", 0, 0, "a\nb\nc\n"},
		{"last lines", "a\nb\nc\nd\n", 2, 0, "c\nd\n"},
		{"last lines, no final newline", "a\nb\nc\nd", 2, 0, "c\nd"},
		{"fewer lines than the limit", "a\nb\n", 5, 0, "a\nb\n"},
		{"bytes cut at a line start", "aaaa\nbbbb\ncccc\n", 0, 11, "bbbb\ncccc\n"}, {"bytes cut at a later line start", "aaaa\nbbbb\ncccc\n", 0, 9, "cccc\n"},
		{"bytes inside one long line", "0123456789", 0, 4, "6789"},
		{"bytes at a rune boundary", "ééééé", 0, 5, "éé"},
		{"both", "1\n2\n3\n4444444444\n", 3, 12, "4444444444\n"},
		{"empty", "", 3, 10, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Tail(tc.log, tc.lines, tc.maxBytes)
			if got != tc.want {
				t.Errorf("Tail(%q, %d, %d) = %q, want %q", tc.log, tc.lines, tc.maxBytes, got, tc.want)
			}
			if tc.maxBytes > 0 && len(got) > tc.maxBytes || !utf8.ValidString(got) {
				t.Errorf("Tail = %q: over %d bytes or not UTF-8", got, tc.maxBytes)
			}
		})
	}
}

func TestMarkdownEscape(t *testing.T) {
	for in, want := range map[string]string{
		"plain words":           "plain words",
		"<b>x</b> & y":          "&lt;b&gt;x&lt;\\/b&gt; &amp; y",
		"[a](javascript:x)":     "\\[a\\]\\(javascript\\:x\\)",
		"line1\nline2\r\tend":   "line1 line2  end",
		"@team":                 "\\@team",
		"a|b":                   "a\\|b",
		"ctrl\x00\x1b[31mred":   "ctrl\\[31mred",
		"naïve – ünïcode stays": "naïve – ünïcode stays",
	} {
		if got := md(in); got != want {
			t.Errorf("md(%q) = %q, want %q", in, got, want)
		}
	}
	for in, want := range map[string]string{"no ticks": "```", "a ``` b": "````", "`````": "``````"} {
		if got := fence(in); got != want {
			t.Errorf("fence(%q) = %q, want %q", in, got, want)
		}
	}
	if got := truncate("ééé", 5); got != "é…" || len(got) > 5 {
		t.Errorf("truncate = %q", got)
	}
	if got := truncateRunes("abcdef", 4); got != "abc…" {
		t.Errorf("truncateRunes = %q", got)
	}
}

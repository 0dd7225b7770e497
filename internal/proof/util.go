package proof

import (
	"encoding/base64"
	"encoding/hex"
	"io"
	"strings"
	"unicode"
)

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// h1Hex turns go.sum's "h1:<base64>" into lowercase hex (in-toto dirHash1).
func h1Hex(h1 string) string {
	if !strings.HasPrefix(h1, "h1:") {
		return ""
	}
	b, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(h1, "h1:"))
	if err != nil || len(b) != 32 {
		return ""
	}
	return hex.EncodeToString(b)
}

// unescapeModPath undoes the module cache's case escaping ("!a" is "A").
func unescapeModPath(p string) string {
	var b strings.Builder
	bang := false
	for _, r := range p {
		if r == '!' {
			bang = true
			continue
		}
		if bang {
			r = unicode.ToUpper(r)
			bang = false
		}
		b.WriteRune(r)
	}
	return b.String()
}

func readAll(r io.Reader) ([]byte, error) { return io.ReadAll(io.LimitReader(r, 1<<30)) }

package proof

import (
	"encoding/base64"
	"io"
	"strings"
	"unicode"
)

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

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

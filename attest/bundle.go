package attest

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"path"
	"sort"
	"strings"
)

// LinksBundleMediaType is the media type of a links bundle: a tar of one
// builder's in-toto link files, stored as one layer beside the artifact.
const LinksBundleMediaType = "application/vnd.accord.intoto-links.v1+tar"

// maxLinkFile bounds one link file read from a bundle.
const maxLinkFile = 16 << 20

// LinksBundle is the deterministic tar of link files (file name to
// content): sorted names, fixed mode and owner, no times. The same links
// give the same bytes, so the provenance can name the bundle by digest.
func LinksBundle(files map[string][]byte) ([]byte, error) {
	names := make([]string, 0, len(files))
	for n := range files {
		if err := checkLinkName(n); err != nil {
			return nil, fmt.Errorf("links bundle: %w", err)
		}
		names = append(names, n)
	}
	sort.Strings(names)
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, n := range names {
		// No format given: USTAR, or PAX for a name over 100 bytes (a long
		// task and step name); the same names give the same bytes.
		if err := tw.WriteHeader(&tar.Header{Name: n, Mode: 0o644, Size: int64(len(files[n])), Typeflag: tar.TypeReg}); err != nil {
			return nil, fmt.Errorf("links bundle: %s: %w", n, err)
		}
		if _, err := tw.Write(files[n]); err != nil {
			return nil, fmt.Errorf("links bundle: %s: %w", n, err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("links bundle: %w", err)
	}
	return b.Bytes(), nil
}

// ReadLinksBundle returns the link files of a bundle [LinksBundle] wrote.
// Anything else is an error: a malformed or truncated tar, an entry that
// is not a regular file named "<step>.<keyid>.link", a duplicate name, a
// link over 16 MiB, an empty bundle.
func ReadLinksBundle(b []byte) (map[string][]byte, error) {
	out := map[string][]byte{}
	tr := tar.NewReader(bytes.NewReader(b))
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("links bundle: %w", err)
		}
		if h.Typeflag != tar.TypeReg {
			return nil, fmt.Errorf("links bundle: entry %q is not a regular file", h.Name)
		}
		if err := checkLinkName(h.Name); err != nil {
			return nil, fmt.Errorf("links bundle: %w", err)
		}
		if _, dup := out[h.Name]; dup {
			return nil, fmt.Errorf("links bundle: %q appears twice", h.Name)
		}
		if h.Size > maxLinkFile {
			return nil, fmt.Errorf("links bundle: %q is %d bytes, over the %d limit", h.Name, h.Size, maxLinkFile)
		}
		c, err := io.ReadAll(tr)
		if err != nil {
			return nil, fmt.Errorf("links bundle: %s: %w", h.Name, err)
		}
		out[h.Name] = c
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("links bundle: no link files")
	}
	return out, nil
}

func checkLinkName(n string) error {
	if n == "" || path.Base(n) != n || n == "." || n == ".." || !strings.HasSuffix(n, ".link") || strings.HasPrefix(n, ".") {
		return fmt.Errorf("%q is not a link file name (<step>.<keyid>.link)", n)
	}
	return nil
}

// SHA256Hex is the lowercase hex SHA-256 of b.
func SHA256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

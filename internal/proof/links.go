package proof

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"path"
	"sort"

	"github.com/accord-build/accord/internal/store"
)

// maxLinkFile bounds one link file read from a bundle.
const maxLinkFile = 16 << 20

// tarFiles is a deterministic tar of files: sorted names, fixed mode and
// owner, no times.
func tarFiles(files map[string][]byte) ([]byte, error) {
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, n := range names {
		if err := tw.WriteHeader(&tar.Header{Name: n, Mode: 0o644, Size: int64(len(files[n])), Typeflag: tar.TypeReg, Format: tar.FormatUSTAR}); err != nil {
			return nil, err
		}
		if _, err := tw.Write(files[n]); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// ReadLinks returns the in-toto link files (file name to content) of the
// layers of a .links attachment: bundles, and single links named by their
// title annotation.
func ReadLinks(layers []store.Layer) (map[string][]byte, error) {
	out := map[string][]byte{}
	for _, l := range layers {
		switch l.MediaType {
		case store.LinksBundleMediaType:
			tr := tar.NewReader(bytes.NewReader(l.Blob))
			for {
				h, err := tr.Next()
				if err == io.EOF {
					break
				}
				if err != nil {
					return nil, fmt.Errorf("links bundle of %s: %w", l.Annotations[store.BuilderAnnotation], err)
				}
				name := path.Base(h.Name)
				if h.Typeflag != tar.TypeReg || name == "." || name == "/" || name == ".." {
					continue
				}
				b, err := io.ReadAll(io.LimitReader(tr, maxLinkFile))
				if err != nil {
					return nil, err
				}
				out[name] = b
			}
		default:
			if t := path.Base(l.Annotations["org.opencontainers.image.title"]); t != "" && t != "." && t != "/" {
				out[t] = l.Blob
			}
		}
	}
	return out, nil
}

package sbom

import (
	"archive/tar"
	"io"
	"testing"
)

type tw struct{ w *tar.Writer }

func tarWriter(w io.Writer) *tw { return &tw{tar.NewWriter(w)} }

func (t *tw) add(tb testing.TB, name string, b []byte) {
	tb.Helper()
	if err := t.w.WriteHeader(&tar.Header{Name: name, Mode: 0o755, Size: int64(len(b)), Typeflag: tar.TypeReg}); err != nil {
		tb.Fatal(err)
	}
	if _, err := t.w.Write(b); err != nil {
		tb.Fatal(err)
	}
}

func (t *tw) close(tb testing.TB) {
	tb.Helper()
	if err := t.w.Close(); err != nil {
		tb.Fatal(err)
	}
}

package images

import (
	"archive/tar"
	"bytes"
	"io"
	"io/fs"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestGoConventions: the Go builder image follows the official golang
// image where catalog Tasks look: GOPATH=/go, /go/bin first on PATH,
// /go, /go/src and /go/bin mode 1777 (as `chmod -R 1777 "$GOPATH"` makes
// them), the same bytes every time.
func TestGoConventions(t *testing.T) {
	cfg := goConfig()
	env := map[string]string{}
	for _, kv := range cfg.Env {
		k, v, _ := bytes.Cut([]byte(kv), []byte("="))
		env[string(k)] = string(v)
	}
	if env["GOPATH"] != "/go" || env["PATH"][:8] != "/go/bin:" || cfg.WorkingDir != "/go" {
		t.Errorf("config env %v, workingDir %q: want GOPATH=/go, PATH starting with /go/bin, working directory /go", cfg.Env, cfg.WorkingDir)
	}
	layer, err := filesLayer(gopathDirs())
	if err != nil {
		t.Fatal(err)
	}
	again, _ := filesLayer(gopathDirs())
	if !bytes.Equal(layer, again) {
		t.Error("the GOPATH layer differs between two builds")
	}
	got := map[string]string{}
	tr := tar.NewReader(bytes.NewReader(layer))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got[h.Name] = h.FileInfo().Mode().String()
		if h.Uid != 0 || h.Gid != 0 || !h.ModTime.IsZero() && h.ModTime.Unix() != 0 {
			t.Errorf("%s: uid %d gid %d time %v, want 0, 0 and the epoch", h.Name, h.Uid, h.Gid, h.ModTime)
		}
	}
	sticky := (fs.ModeDir | fs.ModeSticky | 0o777).String()
	want := map[string]string{"go/": sticky, "go/bin/": sticky, "go/src/": sticky}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("GOPATH layer (-want +got):\n%s", diff)
	}
}

package proof

import (
	"encoding/base64"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/accord-build/accord/internal/beneath"
	"github.com/accord-build/accord/internal/engine"
)

// TestGoModulesStaysInWorkspace: the Go module cache of a task with
// network is a workspace its steps wrote. A .ziphash that is a link to a
// host file, a FIFO, or a cache reached through a subPath a later step
// swapped for a link must not be read (nor block).
func TestGoModulesStaysInWorkspace(t *testing.T) {
	h1 := "h1:" + base64.StdEncoding.EncodeToString(make([]byte, 32))
	host := t.TempDir()
	hostFile := filepath.Join(host, "cache", "download", "host.example", "m", "@v", "v9.0.0.ziphash")
	write(t, hostFile, h1)
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T, ws string) string // returns the mount's subPath in ws
		want  []string
	}{
		{"honest cache", func(t *testing.T, ws string) string {
			write(t, filepath.Join(ws, "gomod", "cache", "download", "example.com", "m", "@v", "v1.0.0.ziphash"), h1)
			return "gomod"
		}, []string{"pkg:golang/example.com/m@v1.0.0"}},
		{"ziphash is a link to a host file", func(t *testing.T, ws string) string {
			link(t, hostFile, filepath.Join(ws, "gomod", "cache", "download", "evil.example", "m", "@v", "v1.0.0.ziphash"))
			return "gomod"
		}, nil},
		{"ziphash is a FIFO", func(t *testing.T, ws string) string {
			p := filepath.Join(ws, "gomod", "cache", "download", "evil.example", "m", "@v", "v1.0.0.ziphash")
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := syscall.Mkfifo(p, 0o644); err != nil {
				t.Fatal(err)
			}
			return "gomod"
		}, nil},
		{"subPath swapped for a link to a host cache", func(t *testing.T, ws string) string {
			link(t, host, filepath.Join(ws, "gomod"))
			return "gomod"
		}, nil},
		{"a directory of the subPath swapped for a link", func(t *testing.T, ws string) string {
			link(t, filepath.Dir(host), filepath.Join(ws, "a"))
			return "a/" + filepath.Base(host)
		}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ws := t.TempDir()
			// The FS the local engine gives for the mount (package beneath).
			tr := engine.TaskResult{Workspaces: map[string]fs.FS{"/workspace/gomod": beneath.FS(ws, tc.setup(t, ws))}}
			done := make(chan []string, 1)
			go func() {
				var uris []string
				for _, d := range goModules(tr.Workspaces["/workspace/gomod"]) {
					uris = append(uris, d.URI)
				}
				done <- uris
			}()
			select {
			case got := <-done:
				if diff := cmp.Diff(tc.want, got); diff != "" {
					t.Errorf("modules (-want +got):\n%s", diff)
				}
			case <-time.After(30 * time.Second):
				t.Fatal("listing the module cache hangs")
			}
		})
	}
}

func write(t *testing.T, p, s string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

func link(t *testing.T, target, p string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, p); err != nil {
		t.Fatal(err)
	}
}

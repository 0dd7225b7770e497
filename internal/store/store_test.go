package store

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestOpen(t *testing.T) {
	tmp := t.TempDir()
	t.Chdir(tmp)
	if err := os.Mkdir("existing", 0o755); err != nil {
		t.Fatal(err)
	}
	xdg := filepath.Join(tmp, "xdg")
	t.Setenv("XDG_DATA_HOME", xdg)

	for _, tc := range []struct {
		name     string
		ref      string
		layout   string // want a layout store in this directory
		registry string // want a registry store for this repository
		err      string
	}{
		{name: "absolute path", ref: filepath.Join(tmp, "abs", "store"), layout: filepath.Join(tmp, "abs", "store")},
		{name: "./ path", ref: "./rel", layout: "./rel"},
		{name: "../ path", ref: "../" + filepath.Base(tmp) + "/up", layout: "../" + filepath.Base(tmp) + "/up"},
		{name: "existing directory without ./", ref: "existing", layout: "existing"},
		{name: "empty means the default", ref: "", layout: filepath.Join(xdg, "accord", "store")},
		{name: "registry with port", ref: "localhost:5000/accord/store", registry: "localhost:5000/accord/store"},
		{name: "registry host", ref: "ghcr.io/org/store", registry: "ghcr.io/org/store"},
		{name: "bare name is a Docker Hub repository", ref: "notadir", registry: "index.docker.io/library/notadir"},
		{name: "invalid", ref: "Not A Repo", err: "neither a directory nor a registry repository"},
		{name: "uppercase repository", ref: "ghcr.io/Org/Store", err: "neither a directory nor a registry repository"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, err := Open(tc.ref)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("Open(%q) = %v, %v; want an error containing %q", tc.ref, st, err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Open(%q): %v", tc.ref, err)
			}
			switch s := st.(type) {
			case *Layout:
				if tc.layout == "" {
					t.Fatalf("Open(%q) = layout %s, want registry %s", tc.ref, s.Dir(), tc.registry)
				}
				if s.Dir() != tc.layout {
					t.Errorf("layout dir %q, want %q", s.Dir(), tc.layout)
				}
				if _, err := os.Stat(filepath.Join(tc.layout, "index.json")); err != nil {
					t.Errorf("layout not created: %v", err)
				}
			case *Registry:
				if tc.registry == "" {
					t.Fatalf("Open(%q) = registry %s, want layout %s", tc.ref, s, tc.layout)
				}
				if s.String() != tc.registry {
					t.Errorf("registry %q, want %q", s.String(), tc.registry)
				}
				if _, err := os.Stat(tc.ref); err == nil {
					t.Errorf("Open(%q) created a directory for a registry store", tc.ref)
				}
			default:
				t.Fatalf("Open(%q) = %T", tc.ref, st)
			}
		})
	}
}

func TestDefaultDir(t *testing.T) {
	t.Setenv("XDG_DATA_HOME", "/data")
	if got := DefaultDir(); got != "/data/accord/store" {
		t.Errorf("with XDG_DATA_HOME: %q", got)
	}
	t.Setenv("XDG_DATA_HOME", "")
	t.Setenv("HOME", "/home/u")
	if got := DefaultDir(); got != "/home/u/.local/share/accord/store" {
		t.Errorf("without XDG_DATA_HOME: %q", got)
	}
}

package sandbox

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// These tests feed tar streams to untar directly: go-containerregistry's
// flattening (mutate.Extract, used by RootFSCache.Get) already drops some
// hostile entries, so only here do they reach the os.Root that must stop
// them.

type entry struct {
	name     string
	typ      byte
	linkname string
	body     string
	mode     int64
}

func tarOf(t *testing.T, entries []entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Typeflag: e.typ, Linkname: e.linkname, Mode: e.mode, Format: tar.FormatPAX}
		if h.Mode == 0 {
			h.Mode = 0o644
		}
		if e.typ == tar.TypeReg {
			h.Size = int64(len(e.body))
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(tw, e.body); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// tree describes every path under dir: "dir", "-> target", or the content
// of a file followed by its permissions.
func tree(t *testing.T, dir string) map[string]string {
	t.Helper()
	m := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if rel == "." {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			m[rel] = "dir"
		case d.Type()&fs.ModeSymlink != 0:
			l, _ := os.Readlink(p)
			m[rel] = "-> " + l
		default:
			b, _ := os.ReadFile(p)
			m[rel] = string(b) + " " + info.Mode().Perm().String()
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestUntarContainment(t *testing.T) {
	outside := t.TempDir()
	secret := filepath.Join(outside, "secret")
	if err := os.WriteFile(secret, []byte("host secret"), 0o644); err != nil {
		t.Fatal(err)
	}
	outRel := strings.TrimPrefix(outside, "/")
	// An absolute name lands under the rootfs, with its parents.
	wantAbs := map[string]string{outRel + "/abs": "x -rw-r--r--"}
	for d := filepath.Dir(outRel); d != "."; d = filepath.Dir(d) {
		wantAbs[d] = "dir"
	}
	wantAbs[outRel] = "dir"
	for _, tc := range []struct {
		name    string
		entries []entry
		wantErr bool
		// want is the whole unpacked tree (also checked when untar fails:
		// what it wrote before failing).
		want map[string]string
	}{
		{
			name: "symlink to / then a file through it",
			entries: []entry{
				{name: "evil", typ: tar.TypeSymlink, linkname: "/"},
				{name: "evil/" + outRel + "/pwned", typ: tar.TypeReg, body: "pwned"},
			},
			wantErr: true,
			want:    map[string]string{"evil": "-> /"},
		},
		{
			name: "symlink to an outside dir then a file through it",
			entries: []entry{
				{name: "evil", typ: tar.TypeSymlink, linkname: outside},
				{name: "evil/pwned", typ: tar.TypeReg, body: "pwned"},
			},
			wantErr: true,
			want:    map[string]string{"evil": "-> " + outside},
		},
		{
			name: "symlink to an outside dir then a directory through it",
			entries: []entry{
				{name: "evil", typ: tar.TypeSymlink, linkname: outside},
				{name: "evil/sub/", typ: tar.TypeDir, mode: 0o755},
			},
			wantErr: true,
			want:    map[string]string{"evil": "-> " + outside},
		},
		{
			name: "relative symlink escaping then a file through it",
			entries: []entry{
				{name: "a/up", typ: tar.TypeSymlink, linkname: "../../../../../../../../../.." + outside},
				{name: "a/up/pwned", typ: tar.TypeReg, body: "pwned"},
			},
			wantErr: true,
			want:    map[string]string{"a": "dir", "a/up": "-> ../../../../../../../../../.." + outside},
		},
		{
			name: "symlink to a host file then a file of the same name",
			entries: []entry{
				{name: "f", typ: tar.TypeSymlink, linkname: secret},
				{name: "f", typ: tar.TypeReg, body: "overwritten"},
			},
			wantErr: true,
			want:    map[string]string{"f": "-> " + secret},
		},
		{
			name: "hard link to a host file through a symlink",
			entries: []entry{
				{name: "evil", typ: tar.TypeSymlink, linkname: outside},
				{name: "leak", typ: tar.TypeLink, linkname: "evil/secret"},
			},
			wantErr: true,
			want:    map[string]string{"evil": "-> " + outside},
		},
		{
			name: "hard link with a ../ target",
			entries: []entry{
				{name: "leak", typ: tar.TypeLink, linkname: "../../../../../../../.." + secret},
			},
			// The target is taken inside the rootfs, where it does not exist.
			wantErr: true,
			want:    map[string]string{},
		},
		{
			name:    "../ name is contained",
			entries: []entry{{name: "../../escape", typ: tar.TypeReg, body: "x"}},
			want:    map[string]string{"escape": "x -rw-r--r--"},
		},
		{
			name:    "a/../../ name is contained",
			entries: []entry{{name: "a/../../escape", typ: tar.TypeReg, body: "x"}},
			want:    map[string]string{"escape": "x -rw-r--r--"},
		},
		{
			name:    "absolute name is contained",
			entries: []entry{{name: outside + "/abs", typ: tar.TypeReg, body: "x"}},
			want:    wantAbs,
		},
		{
			name: "symlinks pointing outside are kept as links",
			entries: []entry{
				{name: "etc/", typ: tar.TypeDir, mode: 0o755},
				{name: "etc/abs", typ: tar.TypeSymlink, linkname: secret},
				{name: "etc/rel", typ: tar.TypeSymlink, linkname: "../../.."},
			},
			want: map[string]string{"etc": "dir", "etc/abs": "-> " + secret, "etc/rel": "-> ../../.."},
		},
		{
			name: "files, links and modes",
			entries: []entry{
				{name: "./bin/", typ: tar.TypeDir, mode: 0o755},
				{name: "./bin/busybox", typ: tar.TypeReg, body: "elf", mode: 0o755},
				{name: "./bin/sh", typ: tar.TypeSymlink, linkname: "busybox"},
				{name: "./bin/ash", typ: tar.TypeLink, linkname: "bin/busybox"},
				{name: "./etc/shadow", typ: tar.TypeReg, body: "s", mode: 0o600},
				{name: "./dev/null", typ: tar.TypeChar},
				{name: "./run/fifo", typ: tar.TypeFifo},
			},
			want: map[string]string{
				"bin": "dir", "bin/busybox": "elf -rwxr-xr-x", "bin/sh": "-> busybox", "bin/ash": "elf -rwxr-xr-x",
				"etc": "dir", "etc/shadow": "s -rw-------", "dev": "dir", "run": "dir",
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			err := untar(context.Background(), bytes.NewReader(tarOf(t, tc.entries)), dir)
			t.Logf("untar: %v", err)
			if (err != nil) != tc.wantErr {
				t.Errorf("untar error = %v, want error: %v", err, tc.wantErr)
			}
			if diff := cmp.Diff(tc.want, tree(t, dir)); diff != "" {
				t.Errorf("unpacked tree (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(map[string]string{"secret": "host secret -rw-r--r--"}, tree(t, outside)); diff != "" {
				t.Errorf("untar wrote outside its directory (-want +got):\n%s", diff)
			}
			st, err := os.Stat(secret)
			if err != nil {
				t.Fatal(err)
			}
			if n := st.Sys().(*syscall.Stat_t).Nlink; n != 1 {
				t.Errorf("host file has %d links, want 1", n)
			}
		})
	}
}

func TestUntarCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	dir := t.TempDir()
	err := untar(ctx, bytes.NewReader(tarOf(t, []entry{{name: "f", typ: tar.TypeReg, body: "x"}})), dir)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("untar with a cancelled context = %v, want context.Canceled", err)
	}
}

package divergence_test

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/static"

	"github.com/accord-build/accord/internal/divergence"
)

type file struct {
	name  string
	data  string
	mode  int64
	mtime int64
}

func tarOf(t *testing.T, files ...file) []byte {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, f := range files {
		mode := f.mode
		if mode == 0 {
			mode = 0o644
		}
		if err := tw.WriteHeader(&tar.Header{Name: f.name, Mode: mode, Size: int64(len(f.data)), ModTime: time.Unix(f.mtime, 0), Typeflag: tar.TypeReg, Format: tar.FormatPAX}); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(f.data))
	}
	tw.Close()
	return b.Bytes()
}

// tarOfX is a tar of one file with the given PAX records.
func tarOfX(t *testing.T, pax map[string]string) []byte {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	if err := tw.WriteHeader(&tar.Header{Name: "bin/x", Mode: 0o755, Size: 1, Typeflag: tar.TypeReg, Format: tar.FormatPAX, PAXRecords: pax}); err != nil {
		t.Fatal(err)
	}
	tw.Write([]byte("x"))
	tw.Close()
	return b.Bytes()
}

func gz(t *testing.T, data []byte, mtime int64) []byte {
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	zw.ModTime = time.Unix(mtime, 0)
	zw.Write(data)
	zw.Close()
	return b.Bytes()
}

func zipOf(t *testing.T, mtime int64, files ...file) []byte {
	var b bytes.Buffer
	zw := zip.NewWriter(&b)
	for _, f := range files {
		w, err := zw.CreateHeader(&zip.FileHeader{Name: f.name, Method: zip.Deflate, Modified: time.Unix(mtime, 0).UTC()})
		if err != nil {
			t.Fatal(err)
		}
		w.Write([]byte(f.data))
	}
	zw.Close()
	return b.Bytes()
}

func TestCauses(t *testing.T) {
	hints := divergence.Hints{BuildPaths: []string{"/workspace", "/build/validator-1/ws"}}
	timed := divergence.Hints{BuildPaths: hints.BuildPaths, Times: []int64{1700000000}}
	cases := []struct {
		name  string
		a, b  []byte
		hints divergence.Hints
		want  []divergence.Cause
	}{
		{"date", []byte("built Mon Nov 23 11:40:00 UTC 2026\nok\n"), []byte("built Mon Nov 23 17:25:12 NPT 2026\nok\n"), hints, []divergence.Cause{divergence.Timestamp}},
		{"iso", []byte(`{"created":"2026-11-23T11:40:00Z"}`), []byte(`{"created":"2026-11-23T11:40:07Z"}`), hints, []divergence.Cause{divergence.Timestamp}},
		{"epoch ns", []byte("t=1763898000123456789\n"), []byte("t=1763898042000000001\n"), hints, []divergence.Cause{divergence.Timestamp}},
		{"known build path", []byte("panic at /workspace/source/main.go:3\n"), []byte("panic at /build/validator-1/ws/source/main.go:3\n"), hints, []divergence.Cause{divergence.BuildPath}},
		// Only the builders' own roots are build paths: another path or a
		// URL that changed is content (it could point anywhere).
		{"unknown path is content", []byte("cwd=/home/ci/job-1/src\n"), []byte("cwd=/var/lib/runner/7/src\n"), divergence.Hints{}, []divergence.Cause{divergence.Content}},
		{"URL is content", []byte("curl https://good.example/dl/tool\n"), []byte("curl https://evil.example/x/y\n"), hints, []divergence.Cause{divergence.Content}},
		{"address is content", []byte("nameserver 10.0.0.1\n"), []byte("nameserver 6.6.6.1\n"), hints, []divergence.Cause{divergence.Content}},
		{"limit is content", []byte("max=1000000000\n"), []byte("max=1999999999\n"), timed, []divergence.Cause{divergence.Content}},
		{"epoch near the build", []byte("t=1700000100\n"), []byte("t=1700003600\n"), timed, []divergence.Cause{divergence.Timestamp}},
		{"je to jne is content", []byte{0x48, 0x85, 0xc0, 0x74, 0x05}, []byte{0x48, 0x85, 0xc0, 0x75, 0x05}, timed, []divergence.Cause{divergence.Content}},
		{"pinned digest is content", []byte("image: r/app@sha256:" + strings.Repeat("a", 64) + "\n"), []byte("image: r/app@sha256:" + strings.Repeat("b", 64) + "\n"), hints, []divergence.Cause{divergence.Content}},
		{"reordered script is content", []byte("#!/bin/sh\ncheck_signature\nexit 1\ninstall\n"), []byte("#!/bin/sh\ninstall\ncheck_signature\nexit 1\n"), hints, []divergence.Cause{divergence.Content}},
		{"xattr added", tarOfX(t, nil), tarOfX(t, map[string]string{"SCHILY.xattr.security.capability": "\x01"}), hints, []divergence.Cause{divergence.ModeOwner}},
		{"member listed twice", tarOf(t, file{name: "bin/x", data: "good"}), tarOf(t, file{name: "bin/x", data: "evil"}, file{name: "bin/x", data: "good"}), hints, []divergence.Cause{divergence.Content}},
		{"trailing bytes", tarOf(t, file{name: "a", data: "x"}), append(tarOf(t, file{name: "a", data: "x"}), "PAYLOAD"...), hints, []divergence.Cause{divergence.Content}},
		{"binary build path", []byte("\x7fELF\x00\x01/workspace/source/main.go\x00\x02\x03"), []byte("\x7fELF\x00\x01/build/validator-1/ws/source/main.go\x00\x02\x03"), hints, []divergence.Cause{divergence.BuildPath}},
		{"map order", []byte("alpha=1\nbeta=2\ngamma=3\ndelta=4\n"), []byte("gamma=3\nalpha=1\ndelta=4\nbeta=2\n"), hints, []divergence.Cause{divergence.Ordering}},
		{"toolchain", []byte("built with go1.26.8\n"), []byte("built with go1.25.3\n"), hints, []divergence.Cause{divergence.Toolchain}},
		{"random byte", []byte{0x00, 0x11, 0x9a, 0x33}, []byte{0x00, 0x11, 0x07, 0x33}, hints, []divergence.Cause{divergence.Content}},
		{"content", []byte("hello\n"), []byte("goodbye\n"), hints, []divergence.Cause{divergence.Content}},
		{"two causes", []byte("at 2026-11-23T11:40:00Z in /workspace/x\n"), []byte("at 2026-11-23T11:41:00Z in /build/validator-1/ws/x\n"), hints, []divergence.Cause{divergence.Timestamp, divergence.BuildPath}},
		{"tar mtime", tarOf(t, file{name: "a", data: "x", mtime: 1700000000}), tarOf(t, file{name: "a", data: "x", mtime: 1763898000}), hints, []divergence.Cause{divergence.Timestamp}},
		{"tar mode", tarOf(t, file{name: "a", data: "x", mode: 0o644}), tarOf(t, file{name: "a", data: "x", mode: 0o600}), hints, []divergence.Cause{divergence.ModeOwner}},
		{"tar order", tarOf(t, file{name: "a", data: "x"}, file{name: "b", data: "y"}), tarOf(t, file{name: "b", data: "y"}, file{name: "a", data: "x"}), hints, []divergence.Cause{divergence.FileOrder}},
		{"gzip header", gz(t, []byte("same"), 1700000000), gz(t, []byte("same"), 1763898000), hints, []divergence.Cause{divergence.Timestamp}},
		{"tar.gz member", gz(t, tarOf(t, file{name: "v", data: "go1.26.8"}), 0), gz(t, tarOf(t, file{name: "v", data: "go1.26.7"}), 0), hints, []divergence.Cause{divergence.Toolchain}},
		{"zip mtime", zipOf(t, 1700000000, file{name: "a", data: "x"}), zipOf(t, 1763898000, file{name: "a", data: "x"}), hints, []divergence.Cause{divergence.Timestamp}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ta, err := divergence.FromFile("out", tc.a)
			if err != nil {
				t.Fatal(err)
			}
			tb, err := divergence.FromFile("out", tc.b)
			if err != nil {
				t.Fatal(err)
			}
			r := divergence.New(divergence.Side{Name: "out", Digest: "a"}, divergence.Side{Name: "out", Digest: "b"}, ta, tb, tc.hints)
			if diff := cmp.Diff(tc.want, r.Causes); diff != "" {
				t.Errorf("causes (-want +got):\n%s\ndifferences: %+v", diff, r.Differences)
			}
			if len(r.Differences) == 0 || r.Identical {
				t.Fatalf("no differences reported")
			}
			for _, d := range r.Differences {
				if len(d.Evidence) == 0 && d.Detail == "" {
					t.Errorf("%s: no evidence", d.Path)
				}
			}
		})
	}
}

func TestIdentical(t *testing.T) {
	ta, _ := divergence.FromFile("x", []byte("same\n"))
	tb, _ := divergence.FromFile("x", []byte("same\n"))
	r := divergence.New(divergence.Side{Name: "x", Digest: "sha256:1"}, divergence.Side{Name: "x", Digest: "sha256:1"}, ta, tb, divergence.Hints{})
	if !r.Identical || len(r.Differences) != 0 || len(r.Causes) != 0 {
		t.Errorf("report = %+v", r)
	}
}

func TestDependencies(t *testing.T) {
	ta, _ := divergence.FromFile("x", []byte("a"))
	tb, _ := divergence.FromFile("x", []byte("b"))
	r := divergence.New(divergence.Side{}, divergence.Side{}, ta, tb, divergence.Hints{
		DependenciesA: map[string]string{"builder": "sha256:aa"}, DependenciesB: map[string]string{"builder": "sha256:bb"},
	})
	if r.Differences[0].Causes[0] != divergence.Toolchain {
		t.Errorf("differences = %+v", r.Differences)
	}
}

func FuzzFromFile(f *testing.F) {
	f.Add([]byte("plain"))
	f.Add(gz(nil, []byte("x"), 1))
	f.Fuzz(func(t *testing.T, data []byte) {
		tr, err := divergence.FromFile("f", data)
		if err != nil {
			return
		}
		other, _ := divergence.FromFile("f", append([]byte("x"), data...))
		if other == nil {
			return
		}
		divergence.New(divergence.Side{}, divergence.Side{}, tr, other, divergence.Hints{BuildPaths: []string{"/workspace"}})
	})
}

// TestDiffoscope runs the real diffoscope (Debian diffoscope-minimal, which
// hack/lib.sh installs) on two differing tarballs.
func TestDiffoscope(t *testing.T) {
	if _, err := exec.LookPath("diffoscope"); err != nil {
		t.Fatal("diffoscope is not installed: run hack/test.sh (it installs diffoscope-minimal)")
	}
	ta, _ := divergence.FromFile("out.tar", tarOf(t, file{name: "etc/version", data: "built Mon Nov 23 11:40:00 UTC 2026\n"}))
	tb, _ := divergence.FromFile("out.tar", tarOf(t, file{name: "etc/version", data: "built Mon Nov 23 17:25:12 NPT 2026\n"}))
	d, err := divergence.RunDiffoscope(context.Background(), ta, tb)
	if err != nil || d == nil {
		t.Fatalf("RunDiffoscope: %v, %v", d, err)
	}
	for _, want := range []string{"etc/version", "-built Mon Nov 23 11:40:00 UTC 2026", "+built Mon Nov 23 17:25:12 NPT 2026"} {
		if !strings.Contains(d.Output, want) {
			t.Errorf("diffoscope output lacks %q:\n%s", want, d.Output)
		}
	}
}

// TestHostileTitle: a file artifact's title is a name, never a path, and
// diffoscope's inputs stay in its own directory.
func TestHostileTitle(t *testing.T) {
	mk := func(data string) *divergence.Tree {
		img, err := mutate.Append(empty.Image, mutate.Addendum{Layer: static.NewLayer([]byte(data), "application/octet-stream"),
			Annotations: map[string]string{"org.opencontainers.image.title": "../../../../tmp/accord-hostile-title"}})
		if err != nil {
			t.Fatal(err)
		}
		img = mutate.ConfigMediaType(img, divergence.FileArtifactType)
		tr, err := divergence.FromImage(context.Background(), "x", img)
		if err != nil {
			t.Fatal(err)
		}
		return tr
	}
	a, b := mk("one\n"), mk("two\n")
	if _, ok := a.Entries["accord-hostile-title"]; !ok || len(a.Entries) != 1 {
		t.Fatalf("entries: %v", a.Entries)
	}
	os.Remove("/tmp/accord-hostile-title")
	if _, err := divergence.RunDiffoscope(context.Background(), a, b); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat("/tmp/accord-hostile-title"); err == nil {
		t.Error("diffoscope's input escaped its directory")
	}
}

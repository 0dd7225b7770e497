package divergence_test

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

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
		{"unknown build path", []byte("cwd=/home/ci/job-1/src\n"), []byte("cwd=/var/lib/runner/7/src\n"), divergence.Hints{}, []divergence.Cause{divergence.BuildPath}},
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

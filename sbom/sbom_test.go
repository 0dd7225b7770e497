package sbom

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/spdx/tools-golang/spdx/v2/common"
)

// buildHello builds examples/hello with the host toolchain.
func buildHello(t *testing.T) []byte {
	t.Helper()
	out := filepath.Join(t.TempDir(), "hello")
	cmd := exec.Command("go", "build", "-trimpath", "-o", out, ".")
	cmd.Dir = "../examples/hello"
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=-mod=mod")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building examples/hello: %v\n%s", err, b)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// goVersionM lists "path version" of the mod and dep lines of `go version -m`.
func goVersionM(t *testing.T, bin []byte) []string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "bin")
	if err := os.WriteFile(p, bin, 0o755); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("go", "version", "-m", p).Output()
	if err != nil {
		t.Fatal(err)
	}
	var mods []string
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) >= 3 && (f[0] == "mod" || f[0] == "dep") {
			mods = append(mods, f[1]+" "+f[2])
		}
		if len(f) >= 2 && f[0] == "mod" && len(f) == 2 {
			mods = append(mods, f[1]+" ")
		}
	}
	sort.Strings(mods)
	return mods
}

func TestGoBinaryMatchesGoVersionM(t *testing.T) {
	bin := buildHello(t)
	doc, err := FromGoBinary("hello", bin, Options{Created: time.Unix(1700000000, 0)})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range doc.Packages {
		if p.PackageName == "hello" || p.PackageName == "stdlib" {
			continue
		}
		got = append(got, p.PackageName+" "+p.PackageVersion)
	}
	sort.Strings(got)
	if diff := cmp.Diff(goVersionM(t, bin), got); diff != "" {
		t.Errorf("SBOM modules differ from go version -m (-want +got):\n%s", diff)
	}
	var rels []string
	for _, r := range doc.Relationships {
		rels = append(rels, r.Relationship)
	}
	for _, want := range []string{common.TypeRelationshipDescribe, common.TypeRelationshipContains, common.TypeRelationshipDependsOn} {
		if !strings.Contains(strings.Join(rels, " "), want) {
			t.Errorf("no %s relationship: %v", want, rels)
		}
	}
	for _, p := range doc.Packages {
		if p.PackageName == "github.com/google/uuid" {
			if len(p.PackageChecksums) != 1 || len(p.PackageChecksums[0].Value) != 64 {
				t.Errorf("uuid checksum %+v, want a SHA-256 from go.sum's h1", p.PackageChecksums)
			}
			if got := p.PackageExternalReferences[0].Locator; got != "pkg:golang/github.com/google/uuid@v1.6.0" {
				t.Errorf("purl %q", got)
			}
		}
		if p.PackageName == "stdlib" && !strings.HasPrefix(p.PackageVersion, "go1.") {
			t.Errorf("stdlib version %q", p.PackageVersion)
		}
	}
}

func TestDeterministic(t *testing.T) {
	bin := buildHello(t)
	o := Options{Created: time.Unix(1700000000, 0)}
	var outs [][]byte
	for i := 0; i < 2; i++ {
		doc, err := FromGoBinary("hello", bin, o)
		if err != nil {
			t.Fatal(err)
		}
		j, err := JSON(doc)
		if err != nil {
			t.Fatal(err)
		}
		tv, err := TagValue(doc)
		if err != nil {
			t.Fatal(err)
		}
		outs = append(outs, append(j, tv...))
	}
	if !bytes.Equal(outs[0], outs[1]) {
		t.Error("two SBOMs of the same binary differ")
	}
	for _, want := range []string{`"created": "2023-11-14T22:13:20Z"`, `"documentNamespace": "https://accord.dev/spdx/sha256-`, "SPDXVersion: SPDX-2.3"} {
		if !bytes.Contains(outs[0], []byte(want)) {
			t.Errorf("SBOM lacks %q", want)
		}
	}
	doc, err := ParseJSON(bytes.NewReader(outs[0][:bytes.Index(outs[0], []byte("SPDXVersion:"))]))
	if err != nil {
		t.Fatalf("JSON does not parse back: %v", err)
	}
	if doc.DocumentName != "hello" {
		t.Errorf("parsed name %q", doc.DocumentName)
	}
}

func TestImage(t *testing.T) {
	bin := buildHello(t)
	var layer bytes.Buffer
	tw := tarWriter(&layer)
	tw.add(t, "hello", bin)
	tw.add(t, "etc/motd", []byte("hi\n"))
	tw.close(t)
	img, err := mutate.AppendLayers(empty.Image, static.NewLayer(layer.Bytes(), types.OCIUncompressedLayer))
	if err != nil {
		t.Fatal(err)
	}
	doc, err := FromImage("accord.dev/examples/hello", img, Options{})
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, p := range doc.Packages {
		names[p.PackageName] = true
	}
	for _, want := range []string{"accord.dev/examples/hello", "/hello", "github.com/google/uuid", "stdlib"} {
		if !names[want] {
			t.Errorf("image SBOM has no package %q: %v", want, names)
		}
	}
}

func TestNotGoBinary(t *testing.T) {
	if _, err := FromGoBinary("x", []byte("#!/bin/sh\n"), Options{}); err == nil {
		t.Fatal("a shell script was accepted as a Go binary")
	}
}

func FuzzParseJSON(f *testing.F) {
	f.Add([]byte(`{"spdxVersion":"SPDX-2.3","SPDXID":"SPDXRef-DOCUMENT"}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = ParseJSON(bytes.NewReader(b))
	})
}

// TestBinarySHA256 pins that a digest the caller passes is used as it is
// (the binary is not hashed again: a run hashes each artifact once) and
// that the document is byte-identical to the one FromGoBinary makes by
// hashing the binary itself.
func TestBinarySHA256(t *testing.T) {
	bin := buildHello(t)
	sum := hexSHA256(bin)
	other := strings.Repeat("ab", 32)
	for _, tc := range []struct {
		name, given, want, wantErr string
	}{
		{name: "computed", given: "", want: sum},
		{name: "passed", given: sum, want: sum},
		{name: "passed, not re-hashed", given: other, want: other},
		{name: "upper case", given: strings.ToUpper(sum), wantErr: "not a lowercase hex SHA-256"},
		{name: "prefixed", given: "sha256:" + sum, wantErr: "not a lowercase hex SHA-256"},
		{name: "short", given: sum[:63], wantErr: "not a lowercase hex SHA-256"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			doc, err := FromGoBinary("hello", bin, Options{Created: time.Unix(1700000000, 0), BinarySHA256: tc.given})
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("FromGoBinary(BinarySHA256 %q) = %v, want error containing %q", tc.given, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got, want := doc.DocumentNamespace, NamespacePrefix+"sha256-"+tc.want; got != want {
				t.Errorf("namespace %s, want %s", got, want)
			}
			var checksums []string
			for _, p := range doc.Packages {
				if p.PackageName == "hello" {
					for _, c := range p.PackageChecksums {
						checksums = append(checksums, c.Value)
					}
				}
			}
			if diff := cmp.Diff([]string{tc.want}, checksums); diff != "" {
				t.Errorf("binary's checksums (-want +got):\n%s", diff)
			}
		})
	}
	computed, err := FromGoBinary("hello", bin, Options{})
	if err != nil {
		t.Fatal(err)
	}
	passed, err := FromGoBinary("hello", bin, Options{BinarySHA256: sum})
	if err != nil {
		t.Fatal(err)
	}
	a, _ := JSON(computed)
	b, _ := JSON(passed)
	if !bytes.Equal(a, b) {
		t.Error("the SBOM with a passed digest differs from the one that hashed the binary")
	}
}

package images

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Pinned inputs of the Go builder image. Changing any of them changes the
// image digest; update pipelines/catalog (hack/update-catalog-digests.sh).
const (
	// GoToolchainModule is the Go toolchain as a module.
	GoToolchainModule = "golang.org/toolchain"
	// GoToolchainVersion is the pinned toolchain version (Go 1.26.8).
	GoToolchainVersion = "v0.0.1-go1.26.8.linux-amd64"
	// GoToolchainSum is the module's go.sum hash (also checked by the Go
	// checksum database when the module is first downloaded).
	GoToolchainSum = "h1:ZOmGe1OnfREDMIdb1Qi4G9JSuDPBLGExZMQ4nis1RXM="

	// BusyboxPackage is the Debian package that provides /bin/sh and the
	// core utilities scripts use.
	BusyboxPackage = "busybox-static"
	// BusyboxVersion is its pinned Debian version.
	BusyboxVersion = "1:1.35.0-4+deb12u1+b1"
	// BusyboxSHA256 is the pinned SHA-256 of the .deb file.
	BusyboxSHA256 = "3d3fdbe91d4660c873e14b092c213fe81c1da6362daa236eb25d0171eb108744"

	// GoBuilderRef is the name the Go builder image has in the store and
	// in the catalog (always referenced with its digest).
	GoBuilderRef = "accord.dev/builders/go"
)

//go:embed ocipack/main.go
var ocipackSource embed.FS

// busyboxApplets are linked in /bin; enough for Tekton script steps.
var busyboxApplets = []string{
	"awk", "basename", "cat", "chmod", "cmp", "cp", "cut", "date", "dd", "diff", "dirname", "echo", "env",
	"expr", "false", "find", "grep", "gzip", "head", "hostname", "id", "kill", "ln", "ls", "mkdir",
	"mktemp", "mv", "nc", "od", "printf", "ps", "pwd", "readlink", "rm", "rmdir", "sed", "seq", "sh",
	"sha256sum", "sleep", "sort", "stat", "tail", "tar", "tee", "test", "touch", "tr", "true", "uname",
	"unzip", "wc", "wget", "xargs",
}

// Options configure [BuildGo].
type Options struct {
	// Go is the host go command used to download the toolchain module.
	// Default: "go" from PATH.
	Go string
	// WorkDir is a scratch directory. Default: a new temporary directory,
	// removed afterwards.
	WorkDir string
	// Logger receives progress. Default: discard.
	Logger *slog.Logger
}

// BuildGo builds the Go builder image from its pinned inputs: the Go
// toolchain module at /usr/local/go, busybox at /bin, and ocipack (built
// with that toolchain) at /usr/local/bin. Layers are uncompressed tars with
// sorted entries, zero times and uid/gid 0, so the digest is the same on
// every machine.
func BuildGo(ctx context.Context, o Options) (v1.Image, error) {
	if o.Go == "" {
		o.Go = "go"
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	cleanup, err := o.workDir()
	if err != nil {
		return nil, err
	}
	defer cleanup()
	o.Logger.Info("fetching Go toolchain module", "version", GoToolchainVersion)
	zipPath, err := downloadToolchain(ctx, o)
	if err != nil {
		return nil, err
	}
	tcFiles, err := toolchainFiles(zipPath)
	if err != nil {
		return nil, err
	}
	// The module cache copy is not executable; unpack our own to build with.
	goroot := filepath.Join(o.WorkDir, "goroot")
	if err := writeTree(goroot, tcFiles, "usr/local/go/"); err != nil {
		return nil, err
	}
	o.Logger.Info("fetching busybox", "version", BusyboxVersion)
	busybox, err := fetchBusybox(ctx, o.WorkDir)
	if err != nil {
		return nil, err
	}
	o.Logger.Info("building ocipack with the pinned toolchain")
	ocipack, err := buildOcipack(ctx, goroot, o.WorkDir)
	if err != nil {
		return nil, err
	}
	base, err := baseLayer(busybox)
	if err != nil {
		return nil, err
	}
	tc, err := filesLayer(tcFiles)
	if err != nil {
		return nil, err
	}
	tools, err := filesLayer(append([]file{{name: "usr/local/bin/ocipack", mode: 0o755, data: ocipack}}, gopathDirs()...))
	if err != nil {
		return nil, err
	}
	return assemble(goConfig(), base, tc, tools)
}

// goConfig is the Go builder image's config, after the official golang
// image's conventions that catalog Tasks assume: GOPATH=/go, /go/bin first
// on PATH, working directory /go.
func goConfig() v1.Config {
	return v1.Config{
		Env:        []string{"PATH=/go/bin:/usr/local/go/bin:/usr/local/bin:/bin", "GOROOT=/usr/local/go", "GOPATH=/go", "GOTOOLCHAIN=local"},
		WorkingDir: "/go",
	}
}

// gopathDirs are /go, /go/src and /go/bin, mode 1777 as in the official
// golang image: any step user may write them (in its own writable layer).
func gopathDirs() []file {
	var out []file
	for _, d := range []string{"go", "go/bin", "go/src"} {
		out = append(out, file{name: d, mode: 0o1777, dir: true})
	}
	return out
}

// BuildBase builds the base image alone: busybox and the sandbox mount
// points, no toolchain. Tests and small script tasks use it.
func BuildBase(ctx context.Context, o Options) (v1.Image, error) {
	cleanup, err := o.workDir()
	if err != nil {
		return nil, err
	}
	defer cleanup()
	busybox, err := fetchBusybox(ctx, o.WorkDir)
	if err != nil {
		return nil, err
	}
	base, err := baseLayer(busybox)
	if err != nil {
		return nil, err
	}
	return assemble(baseConfig(), base)
}

// baseConfig is the base image's config.
func baseConfig() v1.Config {
	return v1.Config{
		Env:        []string{"PATH=/usr/local/go/bin:/usr/local/bin:/bin", "GOROOT=/usr/local/go", "GOTOOLCHAIN=local"},
		WorkingDir: "/",
	}
}

// workDir sets a temporary WorkDir when none is given; cleanup removes it.
func (o *Options) workDir() (cleanup func(), err error) {
	if o.WorkDir != "" {
		return func() {}, nil
	}
	d, err := os.MkdirTemp("", "accord-images-")
	if err != nil {
		return nil, err
	}
	o.WorkDir = d
	return func() { os.RemoveAll(d) }, nil
}

func assemble(config v1.Config, layers ...[]byte) (v1.Image, error) {
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	var ls []v1.Layer
	var diffIDs []v1.Hash
	for _, b := range layers {
		l := static.NewLayer(b, types.OCIUncompressedLayer)
		h, err := l.DiffID()
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		diffIDs = append(diffIDs, h)
	}
	img, err := mutate.AppendLayers(img, ls...)
	if err != nil {
		return nil, err
	}
	cfg := &v1.ConfigFile{
		Architecture: "amd64",
		OS:           "linux",
		Created:      v1.Time{Time: time.Unix(0, 0).UTC()},
		RootFS:       v1.RootFS{Type: "layers", DiffIDs: diffIDs},
		Config:       config,
	}
	return mutate.ConfigFile(img, cfg)
}

func downloadToolchain(ctx context.Context, o Options) (string, error) {
	cmd := exec.CommandContext(ctx, o.Go, "mod", "download", "-json", GoToolchainModule+"@"+GoToolchainVersion)
	cmd.Dir = o.WorkDir
	cmd.Env = append(os.Environ(), "GOFLAGS=", "GO111MODULE=on")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	var info struct{ Zip, Sum, Error string }
	_ = json.Unmarshal(out, &info)
	if err != nil || info.Error != "" {
		return "", fmt.Errorf("downloading %s@%s: %v %s %s\n  fix: the Go module proxy must be reachable (GOPROXY), or the module already in the Go module cache", GoToolchainModule, GoToolchainVersion, err, info.Error, strings.TrimSpace(stderr.String()))
	}
	if info.Sum != GoToolchainSum {
		return "", fmt.Errorf("toolchain %s@%s has hash %s, want the pinned %s: refusing it", GoToolchainModule, GoToolchainVersion, info.Sum, GoToolchainSum)
	}
	return info.Zip, nil
}

func fetchBusybox(ctx context.Context, work string) ([]byte, error) {
	dir := filepath.Join(work, "deb")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, "apt-get", "download", BusyboxPackage+"="+BusyboxVersion)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("downloading Debian package %s=%s: %v: %s\n  fix: run 'apt-get update'; if the archive no longer has this version, pin the current one in internal/images (BusyboxVersion, BusyboxSHA256) and update the catalog digests", BusyboxPackage, BusyboxVersion, err, strings.TrimSpace(string(out)))
	}
	debs, _ := filepath.Glob(filepath.Join(dir, "*.deb"))
	if len(debs) != 1 {
		return nil, fmt.Errorf("downloading %s: found %d .deb files", BusyboxPackage, len(debs))
	}
	deb, err := os.ReadFile(debs[0])
	if err != nil {
		return nil, err
	}
	if got := sha256.Sum256(deb); hex.EncodeToString(got[:]) != BusyboxSHA256 {
		return nil, fmt.Errorf("%s has SHA-256 %x, want the pinned %s: refusing it", filepath.Base(debs[0]), got, BusyboxSHA256)
	}
	var fsTar bytes.Buffer
	x := exec.CommandContext(ctx, "dpkg-deb", "--fsys-tarfile", debs[0])
	var xerr bytes.Buffer
	x.Stdout, x.Stderr = &fsTar, &xerr
	if err := x.Run(); err != nil {
		return nil, fmt.Errorf("unpacking %s: %v: %s", debs[0], err, xerr.String())
	}
	tr := tar.NewReader(&fsTar)
	for {
		h, err := tr.Next()
		if err != nil {
			return nil, fmt.Errorf("busybox binary not found in %s: %v", debs[0], err)
		}
		if h.Name == "./bin/busybox" {
			return io.ReadAll(tr)
		}
	}
}

// buildOcipack compiles the embedded ocipack source with the pinned
// toolchain at goroot: -trimpath, no build id, no cgo, so the output is
// byte-identical wherever it is built.
func buildOcipack(ctx context.Context, goroot, work string) ([]byte, error) {
	src := filepath.Join(work, "ocipack")
	if err := os.MkdirAll(src, 0o755); err != nil {
		return nil, err
	}
	main, err := ocipackSource.ReadFile("ocipack/main.go")
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(src, "main.go"), main, 0o644); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(src, "go.mod"), []byte("module accord.dev/ocipack\n\ngo 1.26\n"), 0o644); err != nil {
		return nil, err
	}
	out := filepath.Join(work, "ocipack.bin")
	cmd := exec.CommandContext(ctx, filepath.Join(goroot, "bin", "go"), "build", "-trimpath", "-ldflags=-s -w -buildid=", "-o", out, ".")
	cmd.Dir = src
	cmd.Env = []string{
		"HOME=" + work, "PATH=/usr/bin:/bin", "GOROOT=" + goroot, "GOTOOLCHAIN=local", "CGO_ENABLED=0",
		"GOOS=linux", "GOARCH=amd64", "GOAMD64=v1", "GOFLAGS=-mod=mod", "GOPROXY=off", "GOCACHE=" + filepath.Join(work, "gocache"),
		"GOPATH=" + filepath.Join(work, "gopath"),
	}
	if b, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("building ocipack with the pinned toolchain: %v: %s", err, b)
	}
	return os.ReadFile(out)
}

type file struct {
	name     string
	mode     int64
	data     []byte
	linkname string
	dir      bool
}

// filesLayer writes files (and their parent directories) as a tar with
// sorted names, zero times, uid/gid 0.
func filesLayer(files []file) ([]byte, error) {
	all := map[string]file{}
	for _, f := range files {
		all[f.name] = f
		for d := filepath.Dir(f.name); d != "." && d != "/"; d = filepath.Dir(d) {
			if _, ok := all[d]; !ok {
				all[d] = file{name: d, mode: 0o755, dir: true}
			}
		}
	}
	names := make([]string, 0, len(all))
	for n := range all {
		names = append(names, n)
	}
	sort.Strings(names)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, n := range names {
		f := all[n]
		h := &tar.Header{Name: n, Mode: f.mode, ModTime: time.Unix(0, 0), Format: tar.FormatPAX}
		switch {
		case f.dir:
			h.Typeflag, h.Name = tar.TypeDir, n+"/"
		case f.linkname != "":
			h.Typeflag, h.Linkname = tar.TypeSymlink, f.linkname
		default:
			h.Typeflag, h.Size = tar.TypeReg, int64(len(f.data))
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, err
		}
		if h.Typeflag == tar.TypeReg {
			if _, err := tw.Write(f.data); err != nil {
				return nil, err
			}
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// baseLayer: busybox with its applets, the directories a step sandbox
// mounts over, and minimal /etc files.
func baseLayer(busybox []byte) ([]byte, error) {
	files := []file{
		{name: "bin/busybox", mode: 0o755, data: busybox},
		{name: "etc/passwd", mode: 0o644, data: []byte("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n")},
		{name: "etc/group", mode: 0o644, data: []byte("root:x:0:\nnogroup:x:65534:\n")},
		{name: "etc/hosts", mode: 0o644, data: []byte("127.0.0.1\tlocalhost\n")},
		{name: "etc/resolv.conf", mode: 0o644, data: nil},
		{name: "etc/ssl/certs/ca-certificates.crt", mode: 0o644, data: nil},
	}
	for _, d := range []string{"dev", "proc", "sys", "root", "workspace", "tekton", "usr/bin"} {
		files = append(files, file{name: d, mode: 0o755, dir: true})
	}
	files = append(files, file{name: "tmp", mode: 0o1777, dir: true})
	for _, a := range busyboxApplets {
		files = append(files, file{name: "bin/" + a, mode: 0o777, linkname: "busybox"})
	}
	return filesLayer(files)
}

// toolchainFiles reads the toolchain module zip as files under /usr/local/go.
func toolchainFiles(zipPath string) ([]file, error) {
	zr, err := zip.OpenReader(zipPath)
	if err != nil {
		return nil, fmt.Errorf("opening toolchain zip: %w", err)
	}
	defer zr.Close()
	prefix := GoToolchainModule + "@" + GoToolchainVersion + "/"
	var files []file
	for _, f := range zr.File {
		if !strings.HasPrefix(f.Name, prefix) || strings.HasSuffix(f.Name, "/") {
			continue
		}
		rel := strings.TrimPrefix(f.Name, prefix)
		rc, err := f.Open()
		if err != nil {
			return nil, err
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			return nil, fmt.Errorf("reading %s from toolchain zip: %w", f.Name, err)
		}
		mode := int64(0o644)
		// Module zips do not record modes; cmd/go marks these executable.
		if f.Mode()&0o111 != 0 || strings.HasPrefix(rel, "bin/") || strings.HasPrefix(rel, "pkg/tool/") {
			mode = 0o755
		}
		files = append(files, file{name: "usr/local/go/" + rel, mode: mode, data: b})
	}
	if len(files) == 0 {
		return nil, errors.New("toolchain zip holds no files")
	}
	return files, nil
}

// writeTree writes files whose names start with prefix under dir.
func writeTree(dir string, files []file, prefix string) error {
	for _, f := range files {
		p := filepath.Join(dir, strings.TrimPrefix(f.name, prefix))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, f.data, os.FileMode(f.mode)); err != nil {
			return err
		}
	}
	return nil
}

// Command ocipack packages files into a single-layer OCI image layout,
// deterministically: entries sorted, uid/gid 0, times from
// SOURCE_DATE_EPOCH (default 0), gzip with fixed settings.
//
// It is built into accord's Go builder image with the image's pinned Go
// toolchain, so it must depend on the standard library only: then the same
// toolchain gives the same binary, and the image keeps its digest.
//
//	ocipack -out DIR [-ref NAME] [-entrypoint PATH] SRC=DEST...
//
// It prints the manifest digest ("sha256:<hex>").
package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

type descriptor struct {
	MediaType   string            `json:"mediaType"`
	Digest      string            `json:"digest"`
	Size        int64             `json:"size"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

func main() {
	out := flag.String("out", "", "output OCI layout directory (created)")
	ref := flag.String("ref", "", "value of org.opencontainers.image.ref.name in index.json")
	entry := flag.String("entrypoint", "", "image entrypoint")
	flag.Parse()
	if *out == "" || flag.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "usage: ocipack -out DIR [-ref NAME] [-entrypoint PATH] SRC=DEST...")
		os.Exit(2)
	}
	d, err := run(*out, *ref, *entry, flag.Args())
	if err != nil {
		fmt.Fprintln(os.Stderr, "ocipack:", err)
		os.Exit(1)
	}
	fmt.Println(d)
}

func epoch() (time.Time, error) {
	s := os.Getenv("SOURCE_DATE_EPOCH")
	if s == "" {
		return time.Unix(0, 0).UTC(), nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("SOURCE_DATE_EPOCH=%q: %w", s, err)
	}
	return time.Unix(n, 0).UTC(), nil
}

func run(out, ref, entry string, specs []string) (string, error) {
	t, err := epoch()
	if err != nil {
		return "", err
	}
	files := map[string]string{}
	for _, s := range specs {
		src, dest, ok := strings.Cut(s, "=")
		if !ok || !path.IsAbs(dest) {
			return "", fmt.Errorf("%q: want SRC=/DEST", s)
		}
		files[path.Clean(dest)[1:]] = src
	}
	layer, diffID, err := buildLayer(files, t)
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(filepath.Join(out, "blobs", "sha256"), 0o755); err != nil {
		return "", err
	}
	layerDesc, err := writeBlob(out, "application/vnd.oci.image.layer.v1.tar+gzip", layer)
	if err != nil {
		return "", err
	}
	cfg := map[string]any{
		"architecture": "amd64",
		"os":           "linux",
		"created":      t.Format(time.RFC3339),
		"config": map[string]any{
			"Env": []string{"PATH=/usr/local/bin:/usr/bin:/bin"},
		},
		"rootfs": map[string]any{"type": "layers", "diff_ids": []string{diffID}},
	}
	if entry != "" {
		cfg["config"].(map[string]any)["Entrypoint"] = []string{entry}
	}
	cb, _ := json.Marshal(cfg)
	cfgDesc, err := writeBlob(out, "application/vnd.oci.image.config.v1+json", cb)
	if err != nil {
		return "", err
	}
	mb, _ := json.Marshal(map[string]any{
		"schemaVersion": 2,
		"mediaType":     "application/vnd.oci.image.manifest.v1+json",
		"config":        cfgDesc,
		"layers":        []descriptor{layerDesc},
	})
	mDesc, err := writeBlob(out, "application/vnd.oci.image.manifest.v1+json", mb)
	if err != nil {
		return "", err
	}
	if ref != "" {
		mDesc.Annotations = map[string]string{"org.opencontainers.image.ref.name": ref}
	}
	ib, _ := json.Marshal(map[string]any{
		"schemaVersion": 2,
		"mediaType":     "application/vnd.oci.image.index.v1+json",
		"manifests":     []descriptor{mDesc},
	})
	if err := os.WriteFile(filepath.Join(out, "index.json"), ib, 0o644); err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(out, "oci-layout"), []byte(`{"imageLayoutVersion":"1.0.0"}`), 0o644); err != nil {
		return "", err
	}
	return mDesc.Digest, nil
}

func buildLayer(files map[string]string, t time.Time) ([]byte, string, error) {
	dirs := map[string]bool{}
	var names []string
	for dest := range files {
		names = append(names, dest)
		for d := path.Dir(dest); d != "."; d = path.Dir(d) {
			dirs[d] = true
		}
	}
	for d := range dirs {
		names = append(names, d+"/")
	}
	sort.Strings(names)
	var raw bytes.Buffer
	tw := tar.NewWriter(&raw)
	for _, n := range names {
		hdr := &tar.Header{Name: n, ModTime: t, Format: tar.FormatPAX}
		if strings.HasSuffix(n, "/") {
			hdr.Typeflag, hdr.Mode = tar.TypeDir, 0o755
			if err := tw.WriteHeader(hdr); err != nil {
				return nil, "", err
			}
			continue
		}
		b, err := os.ReadFile(files[n])
		if err != nil {
			return nil, "", err
		}
		st, err := os.Stat(files[n])
		if err != nil {
			return nil, "", err
		}
		hdr.Typeflag, hdr.Size, hdr.Mode = tar.TypeReg, int64(len(b)), 0o644
		if st.Mode()&0o111 != 0 {
			hdr.Mode = 0o755
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, "", err
		}
		if _, err := tw.Write(b); err != nil {
			return nil, "", err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, "", err
	}
	var gz bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&gz, gzip.BestCompression)
	if _, err := zw.Write(raw.Bytes()); err != nil {
		return nil, "", err
	}
	if err := zw.Close(); err != nil {
		return nil, "", err
	}
	return gz.Bytes(), sum(raw.Bytes()), nil
}

func sum(b []byte) string {
	h := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(h[:])
}

func writeBlob(out, mediaType string, b []byte) (descriptor, error) {
	d := descriptor{MediaType: mediaType, Digest: sum(b), Size: int64(len(b))}
	p := filepath.Join(out, "blobs", "sha256", strings.TrimPrefix(d.Digest, "sha256:"))
	return d, os.WriteFile(p, b, 0o644)
}

package pull_test

import (
	"bytes"
	"context"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/accord-build/accord/internal/pull"
	"github.com/accord-build/accord/internal/testutil/regtest"
)

func TestParseMirror(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want pull.Mirror
		err  string
	}{
		{in: "docker.io=127.0.0.1:5000/mirror", want: pull.Mirror{Registry: "index.docker.io", Host: "127.0.0.1:5000", Prefix: "mirror"}},
		{in: "index.docker.io=registry.internal", want: pull.Mirror{Registry: "index.docker.io", Host: "registry.internal"}},
		{in: " ghcr.io=http://mirror.internal:8080/ghcr/team/ ", want: pull.Mirror{Registry: "ghcr.io", Host: "mirror.internal:8080", Prefix: "ghcr/team", Insecure: true}},
		{in: "quay.io=https://mirror.internal/quay", want: pull.Mirror{Registry: "quay.io", Host: "mirror.internal", Prefix: "quay"}},
		{in: "docker.io", err: "want FROM=TO"},
		{in: "=mirror.internal", err: "want FROM=TO"},
		{in: "docker.io=", err: "want FROM=TO"},
		{in: "docker.io/library=mirror.internal", err: "mirrored registry"},
		{in: "https://docker.io=mirror.internal", err: "mirrored registry"},
		{in: "docker.io=mirror.internal/UPPER", err: "not a repository path"},
		{in: "docker.io=mirror.internal/a//b", err: "not a repository path"},
		{in: "docker.io=mirror.internal///", err: "not a repository path"}, // printed as ...// it parsed differently
		{in: "docker.io=mirror.internal/a//", err: "not a repository path"},
		{in: "docker.io=mirror.internal/x@sha256:00", err: "mirror"},
		{in: "docker.io=ftp://mirror.internal", err: "mirror"},
		{in: "docker.io=mirror internal", err: "mirror"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := pull.ParseMirror(tc.in)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("ParseMirror(%q) = %+v, %v; want an error with %q", tc.in, got, err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
	ms, err := pull.ParseMirrors("docker.io=a.internal, ,docker.io=b.internal/hub,")
	if err != nil || len(ms) != 2 || ms[1].Prefix != "hub" {
		t.Errorf("ParseMirrors = %+v, %v", ms, err)
	}
	if _, err := pull.ParseMirrors("docker.io=a.internal,bad"); err == nil {
		t.Error("ParseMirrors took a bad entry")
	}
}

// FuzzParseMirror: no input panics, and what parses prints as something
// that parses to the same mirror.
func FuzzParseMirror(f *testing.F) {
	for _, s := range []string{"docker.io=127.0.0.1:5000/mirror", "ghcr.io=http://m:1/a/b", "a=b", "=", "docker.io=https://x/", "x=y/Z", "localhost:5000=[::1]:5000/p"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		m, err := pull.ParseMirror(s)
		if err != nil {
			return
		}
		again, err := pull.ParseMirror(m.String())
		if err != nil {
			t.Fatalf("%q parsed to %+v, whose String %q does not parse: %v", s, m, m.String(), err)
		}
		if again != m {
			t.Fatalf("%q: %+v, then %+v from %q", s, m, again, m.String())
		}
		ms, err := pull.ParseMirrors(m.String() + "," + m.String())
		if err != nil || len(ms) != 2 {
			t.Fatalf("ParseMirrors of %q twice: %v, %v", m.String(), ms, err)
		}
	})
}

// TestPullMirror: a docker.io image comes from its mirror, never from
// docker.io; a mirror that lacks it or serves other content is skipped
// for the next source; every source failing names them all.
func TestPullMirror(t *testing.T) {
	mirror := regtest.Start(t, regtest.Options{})
	origin := regtest.Start(t, regtest.Options{})
	bad := regtest.Start(t, regtest.Options{}) // blobs are shared by repositories: a registry of its own
	img := platformImage(t, "linux", "amd64")
	push(t, mirror.Addr+"/hub/library/golang", img)
	h := digestOf(t, img)
	tampered := push(t, bad.Addr+"/bad/library/golang", img)
	tamperManifest(t, bad, tampered.DigestStr())
	originRef := push(t, origin.Addr+"/library/golang", img)
	down := closedPort(t)
	for _, tc := range []struct {
		name, ref string
		mirrors   string
		source    string    // where it came from, or
		kind      pull.Kind // the error
	}{
		{name: "docker.io from its mirror", ref: "docker.io/library/golang@" + h, mirrors: "docker.io=" + mirror.Addr + "/hub", source: mirror.Addr + "/hub/library/golang"},
		{name: "short name", ref: "golang@" + h, mirrors: "docker.io=" + mirror.Addr + "/hub", source: mirror.Addr + "/hub/library/golang"},
		{name: "first mirror down", ref: "docker.io/library/golang@" + h, mirrors: "docker.io=" + down + ",docker.io=" + mirror.Addr + "/hub", source: mirror.Addr + "/hub/library/golang"},
		{name: "mirror lacks it: the origin", ref: originRef.String(), mirrors: origin.Addr + "=" + mirror.Addr + "/empty", source: origin.Addr + "/library/golang"},
		{name: "tampering mirror: the origin", ref: originRef.String(), mirrors: origin.Addr + "=" + bad.Addr + "/bad", source: origin.Addr + "/library/golang"},
		{name: "other registry's mirror unused", ref: originRef.String(), mirrors: "docker.io=" + down, source: origin.Addr + "/library/golang"},
		{name: "tampering mirror, origin down", ref: down + "/library/golang@" + h, mirrors: down + "=" + bad.Addr + "/bad", kind: pull.DigestMismatch},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("DOCKER_CONFIG", t.TempDir())
			ms, err := pull.ParseMirrors(tc.mirrors)
			if err != nil {
				t.Fatal(err)
			}
			st := newStore(t)
			before := snapshot(t, st.Dir())
			res, err := pull.New(pull.WithMirrors(ms), pull.WithTempDir(t.TempDir())).Pull(context.Background(), tc.ref, st)
			if tc.kind != "" {
				checkErr(t, err, tc.kind, tc.ref, "")
				if !strings.Contains(err.Error(), bad.Addr+"/bad/library/golang") || !strings.Contains(err.Error(), down) {
					t.Errorf("the error does not list every source: %v", err)
				}
				unchanged(t, st, before)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if res.Source != tc.source || res.Manifest != h {
				t.Errorf("pulled %s from %s, want %s from %s", res.Manifest, res.Source, h, tc.source)
			}
			if !hasImage(t, st, h) {
				t.Error("not in the store")
			}
		})
	}
}

// TestPullProxyTampering: an in-process registry behind a proxy that
// changes what it serves (a manifest, a config, a layer, a child of an
// index) is caught, whatever part is changed.
func TestPullProxyTampering(t *testing.T) {
	inner := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer inner.Close()
	addr := strings.TrimPrefix(inner.URL, "http://")
	img := platformImage(t, "linux", "amd64")
	ref := push(t, addr+"/library/golang", img)
	idx := push(t, addr+"/library/multi", index(t, map[string]v1.Image{"linux/amd64": img, "linux/arm64": platformImage(t, "linux", "arm64")}))
	m, _ := img.Manifest()
	layers := m.Layers
	for _, tc := range []struct {
		name, ref, path string
	}{
		{"manifest", ref.String(), "/manifests/" + ref.DigestStr()},
		{"config", ref.String(), "/blobs/" + m.Config.Digest.String()},
		{"first layer", ref.String(), "/blobs/" + layers[0].Digest.String()},
		{"last layer", ref.String(), "/blobs/" + layers[len(layers)-1].Digest.String()},
		{"index", idx.String(), "/manifests/" + idx.DigestStr()},
		{"index child", idx.String(), "/manifests/" + digestOf(t, img)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			proxy := httptest.NewServer(flipping(inner.URL, tc.path))
			defer proxy.Close()
			paddr := strings.TrimPrefix(proxy.URL, "http://")
			pref := strings.Replace(tc.ref, addr, paddr, 1)
			st := newStore(t)
			before := snapshot(t, st.Dir())
			_, err := pull.New(pull.WithTempDir(t.TempDir())).Pull(context.Background(), pref, st)
			checkErr(t, err, pull.DigestMismatch, pref, "serves other content")
			unchanged(t, st, before)
		})
	}
}

// flipping proxies to upstream and changes one byte of the GET response
// whose path ends in suffix: JSON gets a space after its first colon (it
// still parses, to the same document), anything else a flipped byte.
func flipping(upstream, suffix string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req, _ := http.NewRequestWithContext(r.Context(), r.Method, upstream+r.URL.RequestURI(), r.Body)
		req.Header = r.Header.Clone()
		resp, err := http.DefaultTransport.RoundTrip(req)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, suffix) && len(b) > 0 {
			if i := bytes.IndexByte(b, ':'); i >= 0 && bytes.HasPrefix(b, []byte("{")) {
				b = append(append(append([]byte{}, b[:i+1]...), ' '), b[i+1:]...) // still the same JSON
			} else {
				b[len(b)/2] ^= 0xff
			}
		}
		for k, v := range resp.Header {
			w.Header()[k] = v
		}
		w.Header().Del("Content-Length")
		w.WriteHeader(resp.StatusCode)
		w.Write(b)
	})
}

package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// attRef is the .att ref every concurrency test attaches to.
var attRef = AttachmentRef("team/app", v1.Hash{Algorithm: "sha256", Hex: fmt.Sprintf("%064x", 9)}, AttSuffix)

// attestation is builder's layer, as internal/proof attaches it.
func attestation(builder string) Layer {
	return Layer{MediaType: DSSEMediaType, Blob: []byte(`{"payload":"` + builder + `"}`), Annotations: map[string]string{
		SignatureAnnotation: "", PredicateTypeAnnotation: "https://slsa.dev/provenance/v1", BuilderAnnotation: builder,
	}}
}

// sameBuilder is internal/proof's replace func: a builder's new layers
// replace its old ones.
func sameBuilder(builder string) func(map[string]string) bool {
	return func(old map[string]string) bool { return old[BuilderAnnotation] == builder }
}

// builders returns the builder of every layer stored under ref, sorted,
// and checks that each layer is the blob that builder attached.
func builders(t *testing.T, st Store, ref string) []string {
	t.Helper()
	ls, err := Layers(context.Background(), st, ref)
	if err != nil {
		t.Fatalf("reading %s: %v", ref, err)
	}
	var got []string
	for _, l := range ls {
		b := l.Annotations[BuilderAnnotation]
		if want := attestation(b); string(l.Blob) != string(want.Blob) || !cmp.Equal(l.Annotations, want.Annotations) {
			t.Errorf("layer of %q is %s %v, want %s %v", b, l.Blob, l.Annotations, want.Blob, want.Annotations)
		}
		got = append(got, b)
	}
	sort.Strings(got)
	return got
}

// concurrentStores are the stores the concurrency tests attach to.
var concurrentStores = []struct {
	name string
	// open returns the store goroutine i uses (i == -1: the checker's).
	open func(t *testing.T) func(i int) Store
}{
	{"layout, one store", func(t *testing.T) func(int) Store {
		l := openLayout(t)
		return func(int) Store { return l }
	}},
	{"layout, a store per goroutine", func(t *testing.T) func(int) Store {
		dir := openLayout(t).Dir()
		return func(int) Store { return mustOpenLayout(t, dir) }
	}},
	{"registry, one store", func(t *testing.T) func(int) Store {
		r := NewRegistry(testRegistry(t))
		r.attachSettle = 5 * time.Millisecond
		return func(int) Store { return r }
	}},
	{"registry, a client per goroutine without shared locks", func(t *testing.T) func(int) Store {
		repo := testRegistry(t)
		return func(int) Store {
			r := NewRegistry(repo)
			r.locks = &keyedMutex{} // as another process's
			r.attachSettle = 20 * time.Millisecond
			r.attachAttempts = 32
			return r
		}
	}},
}

// TestAttachConcurrent: builders that attach to one digest at the same
// time, from goroutines of one process sharing a store or each with its
// own (as separate processes are, for a registry), all find their
// attestation afterwards, and so does the builder that attached before.
func TestAttachConcurrent(t *testing.T) {
	ctx := context.Background()
	const n = 16
	for _, tc := range concurrentStores {
		t.Run(tc.name, func(t *testing.T) {
			open := tc.open(t)
			if _, err := Attach(ctx, open(-1), attRef, []Layer{attestation("before")}, sameBuilder("before")); err != nil {
				t.Fatal(err)
			}
			want := []string{"before"}
			var wg sync.WaitGroup
			errs := make([]error, n)
			start := make(chan struct{})
			for i := range n {
				b := fmt.Sprintf("builder-%02d", i)
				want = append(want, b)
				st := open(i)
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					_, errs[i] = Attach(ctx, st, attRef, []Layer{attestation(b)}, sameBuilder(b))
				}()
			}
			close(start)
			wg.Wait()
			if err := errors.Join(errs...); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want, builders(t, open(-1), attRef)); diff != "" {
				t.Errorf("attestations after %d concurrent attaches (-want +got):\n%s", n, diff)
			}
		})
	}
}

// TestAttachConcurrentReplaceAll: writers whose replace drops every old
// layer (as the release marker's does) attach at once: they agree on one
// of them, and none fails.
func TestAttachConcurrentReplaceAll(t *testing.T) {
	ctx := context.Background()
	const n = 8
	for _, tc := range concurrentStores {
		t.Run(tc.name, func(t *testing.T) {
			open := tc.open(t)
			var wg sync.WaitGroup
			errs := make([]error, n)
			for i := range n {
				st := open(i)
				wg.Add(1)
				go func() {
					defer wg.Done()
					_, errs[i] = Attach(ctx, st, attRef, []Layer{attestation(fmt.Sprintf("marker-%d", i))}, func(map[string]string) bool { return true })
				}()
			}
			wg.Wait()
			if err := errors.Join(errs...); err != nil {
				t.Fatal(err)
			}
			if got := builders(t, open(-1), attRef); len(got) != 1 {
				t.Errorf("layers after %d concurrent replacing attaches: %v, want one", n, got)
			}
		})
	}
}

func mustOpenLayout(t *testing.T, dir string) *Layout {
	t.Helper()
	l, err := OpenLayout(dir)
	if err != nil {
		t.Error(err)
	}
	return l
}

// Environment of [TestAttachHelperProcess].
const (
	helperDirEnv = "ACCORD_TEST_ATTACH_DIR"
	helperIDEnv  = "ACCORD_TEST_ATTACH_ID"
	helperNEnv   = "ACCORD_TEST_ATTACH_N"
)

// TestAttachHelperProcess is one of [TestAttachProcesses]'s processes:
// it opens the layout named by its environment and attaches its layers
// one after the other. Run by itself it does nothing.
func TestAttachHelperProcess(t *testing.T) {
	dir := os.Getenv(helperDirEnv)
	if dir == "" {
		t.Skip("a helper of TestAttachProcesses")
	}
	n, err := strconv.Atoi(os.Getenv(helperNEnv))
	if err != nil {
		t.Fatal(err)
	}
	l, err := OpenLayout(dir)
	if err != nil {
		t.Fatal(err)
	}
	for j := range n {
		b := fmt.Sprintf("p%s-%02d", os.Getenv(helperIDEnv), j)
		if _, err := Attach(context.Background(), l, attRef, []Layer{attestation(b)}, sameBuilder(b)); err != nil {
			t.Fatal(err)
		}
	}
}

// TestAttachProcesses: several processes attach to one digest of one
// layout store at once, to a store that exists or that they all create,
// and every attestation is found afterwards.
func TestAttachProcesses(t *testing.T) {
	for _, tc := range []struct {
		name      string
		procs, n  int
		preexists bool
	}{
		{"5 processes x 8 attaches to an existing store", 5, 8, true},
		{"6 processes x 4 attaches, each creating the store", 6, 4, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "store")
			var want []string
			if tc.preexists {
				l := mustOpenLayout(t, dir)
				if _, err := Attach(context.Background(), l, attRef, []Layer{attestation("before")}, sameBuilder("before")); err != nil {
					t.Fatal(err)
				}
				want = append(want, "before")
			}
			cmds := make([]*exec.Cmd, tc.procs)
			outs := make([]bytes.Buffer, tc.procs)
			for i := range cmds {
				cmds[i] = exec.Command(os.Args[0], "-test.run", "^TestAttachHelperProcess$", "-test.count=1")
				cmds[i].Env = append(os.Environ(), helperDirEnv+"="+dir, helperIDEnv+"="+strconv.Itoa(i), helperNEnv+"="+strconv.Itoa(tc.n))
				cmds[i].Stdout, cmds[i].Stderr = &outs[i], &outs[i]
				for j := range tc.n {
					want = append(want, fmt.Sprintf("p%d-%02d", i, j))
				}
			}
			for _, c := range cmds {
				if err := c.Start(); err != nil {
					t.Fatal(err)
				}
			}
			for i, c := range cmds {
				if err := c.Wait(); err != nil {
					t.Errorf("process %d: %v\n%s", i, err, outs[i].Bytes())
				}
			}
			sort.Strings(want)
			if diff := cmp.Diff(want, builders(t, mustOpenLayout(t, dir), attRef)); diff != "" {
				t.Errorf("attestations after %d processes x %d attaches (-want +got):\n%s", tc.procs, tc.n, diff)
			}
			if tmp := tmpFiles(t, dir); len(tmp) != 0 {
				t.Errorf("temporary files left: %v", tmp)
			}
		})
	}
}

// interloper is an in-process registry that lets a test write to the
// attachment tag, as another writer would, right after the n-th GET or PUT
// of it by the writer under test (the answer to that request waits).
type interloper struct {
	repo name.Repository
	tag  name.Tag

	mu    sync.Mutex
	busy  bool
	count map[string]int
	act   func(t *testing.T, method string, n int)
	t     *testing.T
}

func newInterloper(t *testing.T) *interloper {
	t.Helper()
	in := &interloper{count: map[string]int{}, t: t}
	h := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, req *http.Request) {
		h.ServeHTTP(rw, req)
		if req.URL.Path != "/v2/"+in.repo.RepositoryStr()+"/manifests/"+in.tag.TagStr() || (req.Method != http.MethodGet && req.Method != http.MethodPut) {
			return
		}
		in.mu.Lock()
		act := in.act
		if in.busy || act == nil {
			in.mu.Unlock()
			return
		}
		in.count[req.Method]++
		n := in.count[req.Method]
		in.busy = true
		in.mu.Unlock()
		act(in.t, req.Method, n) // its own requests pass through
		in.mu.Lock()
		in.busy = false
		in.mu.Unlock()
	}))
	t.Cleanup(srv.Close)
	repo, err := name.NewRepository(strings.TrimPrefix(srv.URL, "http://") + "/accord/store")
	if err != nil {
		t.Fatal(err)
	}
	in.repo, in.tag = repo, repo.Tag(tagOf(attRef))
	return in
}

// manifest returns what the tag holds. Like write, it may run in the
// registry's goroutine: its failures are errors, not fatal.
func (in *interloper) manifest(t *testing.T) (v1.Image, v1.Hash) {
	t.Helper()
	img, err := remote.Image(in.tag)
	if err != nil {
		t.Error(err)
		return empty.Image, v1.Hash{}
	}
	h, err := img.Digest()
	if err != nil {
		t.Error(err)
	}
	return img, h
}

// write puts the layers of base that drop does not name, then layers,
// under the tag, with manifest annotations ann.
func (in *interloper) write(t *testing.T, base v1.Image, drop string, layers []Layer, ann map[string]string) {
	t.Helper()
	img, err := composeAttachment(base, layers, func(old map[string]string) bool { return old[BuilderAnnotation] == drop }, ann)
	if err != nil {
		t.Error(err)
		return
	}
	if err := remote.Write(in.tag, img); err != nil {
		t.Error(err)
	}
}

// TestRegistryAttachOverwritten: another writer overwrites the tag right
// after the attach under test writes or checks it. A writer that had not
// seen the new layer (one that read before it, or a tool that records no
// base) loses nothing: the layer is written again; a writer that saw it and
// dropped it on purpose (its replace func) is not undone; a tag overwritten
// after every write is a clear error.
func TestRegistryAttachOverwritten(t *testing.T) {
	ctx := context.Background()
	stale := func(withBase bool) func(in *interloper, before v1.Image, beforeH v1.Hash) func(*testing.T, string, int) {
		return func(in *interloper, before v1.Image, beforeH v1.Hash) func(*testing.T, string, int) {
			return func(t *testing.T, method string, n int) {
				var ann map[string]string
				if withBase {
					ann = map[string]string{BaseAnnotation: beforeH.String()}
				}
				in.write(t, before, "", []Layer{attestation(fmt.Sprintf("stale-%s-%d", method, n))}, ann)
			}
		}
	}
	for _, tc := range []struct {
		name    string
		when    func(method string, n int) bool
		act     func(in *interloper, before v1.Image, beforeH v1.Hash) func(*testing.T, string, int)
		want    []string
		wantErr error
	}{
		{"a writer that read before overwrites the write", at("PUT", 1), stale(true), []string{"before", "builder", "stale-PUT-1"}, nil},
		{"it overwrites the write and the rewrite", func(m string, n int) bool { return m == "PUT" && n <= 2 }, stale(true), []string{"before", "builder", "stale-PUT-1", "stale-PUT-2"}, nil},
		{"it overwrites after the first check", at("GET", 2), stale(true), []string{"before", "builder", "stale-GET-2"}, nil},
		{"a tool that records no base overwrites the write", at("PUT", 1), stale(false), []string{"before", "builder", "stale-PUT-1"}, nil},
		{"a later writer drops the layer on purpose", at("PUT", 1), func(in *interloper, _ v1.Image, _ v1.Hash) func(*testing.T, string, int) {
			return func(t *testing.T, _ string, _ int) {
				cur, h := in.manifest(t)
				in.write(t, cur, "builder", []Layer{attestation("successor")}, map[string]string{BaseAnnotation: h.String()})
			}
		}, []string{"before", "successor"}, nil},
		{"every write is overwritten", func(m string, _ int) bool { return m == "PUT" }, stale(true), nil, ErrAttachContended},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := newInterloper(t)
			r := NewRegistry(in.repo)
			r.attachSettle, r.attachAttempts = time.Millisecond, 4
			if _, err := Attach(ctx, r, attRef, []Layer{attestation("before")}, sameBuilder("before")); err != nil {
				t.Fatal(err)
			}
			before, beforeH := in.manifest(t)
			act := tc.act(in, before, beforeH)
			in.mu.Lock()
			in.act = func(t *testing.T, method string, n int) {
				if tc.when(method, n) {
					act(t, method, n)
				}
			}
			in.mu.Unlock()
			_, err := Attach(ctx, r, attRef, []Layer{attestation("builder")}, sameBuilder("builder"))
			in.mu.Lock()
			in.act = nil
			in.mu.Unlock()
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("Attach: %v, want %v", err, tc.wantErr)
			}
			if tc.wantErr != nil {
				if !strings.Contains(err.Error(), attRef) || !strings.Contains(err.Error(), "fix:") {
					t.Errorf("error %q does not name %s and a fix", err, attRef)
				}
				return
			}
			if diff := cmp.Diff(tc.want, builders(t, r, attRef)); diff != "" {
				t.Errorf("attestations (-want +got):\n%s", diff)
			}
		})
	}
}

// at is true for the n-th request with method.
func at(method string, n int) func(string, int) bool {
	return func(m string, i int) bool { return m == method && i == n }
}

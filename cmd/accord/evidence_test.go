package main

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	ggcrv1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/static"

	"github.com/accord-build/accord/attest"
	"github.com/accord-build/accord/internal/artifact"
	"github.com/accord-build/accord/internal/engine"
	"github.com/accord-build/accord/internal/proof"
	"github.com/accord-build/accord/internal/store"
	"github.com/accord-build/accord/internal/testutil/tamper"
	"github.com/accord-build/accord/pipelines"
)

// The evidence tests record real proof (proof.Record: real keys, real
// DSSE and in-toto signatures) for builds whose step results they
// describe, into real stores, then attack the store and run the CLI.

const evidenceBuilder = "https://accord.dev/builders/evidence-test"

// evidencePipeline is a two-task pipeline: fetch writes the source, build
// reads it (read-only) and writes the output. desc changes its digest,
// not its steps.
func evidencePipeline(desc string) string {
	return fmt.Sprintf(`apiVersion: tekton.dev/v1
kind: Pipeline
metadata: {name: evidence}
spec:
  description: %q
  workspaces: [{name: source}, {name: output}]
  tasks:
    - name: fetch
      workspaces: [{name: source, workspace: source}]
      taskSpec:
        workspaces: [{name: source}]
        steps:
          - {name: get, image: "busybox@sha256:%s", script: "true"}
    - name: build
      runAfter: [fetch]
      workspaces: [{name: source, workspace: source}, {name: output, workspace: output}]
      taskSpec:
        workspaces: [{name: source, readOnly: true}, {name: output}]
        steps:
          - {name: compile, image: "busybox@sha256:%s", script: "true"}
`, desc, strings.Repeat("1", 64), strings.Repeat("1", 64))
}

type evidenceWorld struct {
	dir                    string
	key, pub, owner, owPub string
	signer                 *attest.Signer
	pipelines              map[string]*pipelines.Resolved // by file
	files                  []string                       // pipeline files: [0] the policy's, [1] another digest, same steps
}

func newEvidenceWorld(t *testing.T) *evidenceWorld {
	t.Helper()
	w := &evidenceWorld{dir: t.TempDir(), pipelines: map[string]*pipelines.Resolved{}}
	w.key, w.pub = keyPair(t, w.dir, "builder")
	w.owner, w.owPub = keyPair(t, w.dir, "owner")
	ctx := context.Background()
	var err error
	if w.signer, err = loadSigner(ctx, w.key); err != nil {
		t.Fatal(err)
	}
	cat, err := pipelines.Builtin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for i, desc := range []string{"the policy's pipeline", "another pipeline"} {
		f := filepath.Join(w.dir, fmt.Sprintf("pipeline-%d.yaml", i))
		os.WriteFile(f, []byte(evidencePipeline(desc)), 0o644)
		if w.pipelines[f], err = cat.Resolve(ctx, f); err != nil {
			t.Fatal(err)
		}
		w.files = append(w.files, f)
	}
	return w
}

// layout writes the signed layout of pipeline file f.
func (w *evidenceWorld) layout(t *testing.T, f string) string {
	t.Helper()
	out := f + ".layout"
	if _, stderr, err := accord(t, "layout", "--pipeline", f, "--key", w.owner, "--functionary", w.pub, "--out", out); err != nil {
		t.Fatalf("layout: %v %s", err, stderr)
	}
	return out
}

// policy writes a policy trusting the builder, with the layout if given.
func (w *evidenceWorld) policy(t *testing.T, layout string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "policy.yaml")
	doc := fmt.Sprintf("apiVersion: accord.dev/v1alpha1\nkind: Policy\nbuilders: [{id: %s, key: %s}]\nthreshold: 1\nsbom: optional\n", evidenceBuilder, w.pub)
	if layout != "" {
		doc += fmt.Sprintf("layout: {file: %s, ownerKey: %s}\n", layout, w.owPub)
	}
	os.WriteFile(p, []byte(doc), 0o644)
	return p
}

type provedBuild struct {
	pipeline string // file
	name     string
	content  []byte // a file artifact's bytes; nil: an image
	sunburst bool   // the build step rewrites the source it may only read
}

// prove stores the build's artifact and records its proof; it returns the
// stored artifact.
func (w *evidenceWorld) prove(t *testing.T, st store.Store, b provedBuild) artifact.Artifact {
	t.Helper()
	ctx := context.Background()
	var img ggcrv1.Image
	var err error
	a := artifact.Artifact{Name: b.name, Kind: engine.Artifact, Task: "build"}
	if b.content != nil {
		img, err = artifact.FileImage(b.name, b.content)
		a.Digest = "sha256:" + attest.SHA256Hex(b.content)
	} else {
		img, err = random.Image(2048, 2)
		a.Kind = engine.Image
	}
	if err != nil {
		t.Fatal(err)
	}
	h, err := st.Put(ctx, b.name, img)
	if err != nil {
		t.Fatal(err)
	}
	a.Stored = h.String()
	product, path := attest.SHA256Hex(b.content), "output/"+b.name
	if b.content == nil {
		a.Digest = h.String()
		product, path = h.Hex, "output/image/blobs/sha256/"+h.Hex
	}
	src := map[string]string{"source/main.go": attest.SHA256Hex([]byte("package main"))}
	built := map[string]string{"source/main.go": src["source/main.go"], path: product}
	if b.sunburst {
		built["source/main.go"] = attest.SHA256Hex([]byte("package main // + implant"))
	}
	res := &engine.Result{Succeeded: true, Tasks: []engine.TaskResult{
		{Name: "fetch", Status: engine.Succeeded, Steps: []engine.StepResult{{Name: "get", Status: engine.Succeeded, Command: []string{"/tekton/scripts/script-0"}, Materials: map[string]string{}, Products: src}}},
		{Name: "build", Status: engine.Succeeded, Steps: []engine.StepResult{{Name: "compile", Status: engine.Succeeded, Command: []string{"/tekton/scripts/script-0"}, Materials: src, Products: built}}},
	}}
	at := time.Unix(1700000000, 0)
	_, err = proof.Record(ctx, &proof.Input{
		RunID: "run-" + b.name, Pipeline: w.pipelines[b.pipeline], Result: res, Artifacts: []artifact.Artifact{a},
		Source:  engine.Source{URI: "https://example.com/org/app.git", Commit: strings.Repeat("a", 40), DateEpoch: 1700000000},
		Started: at, Finished: at,
	}, proof.Options{Signer: w.signer, BuilderID: evidenceBuilder, Store: st})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func attachRef(st store.Store, a artifact.Artifact, suffix string) string {
	h, _ := ggcrv1.NewHash(a.Stored)
	return store.AttachmentRef(store.Name(st, a.Name), h, suffix)
}

// setLinks replaces everything stored as a's links with layers.
func setLinks(t *testing.T, st store.Store, a artifact.Artifact, layers []store.Layer) {
	t.Helper()
	if _, err := store.Attach(context.Background(), st, attachRef(st, a, store.LinksSuffix), layers, func(map[string]string) bool { return true }); err != nil {
		t.Fatal(err)
	}
}

func linksOf(t *testing.T, st store.Store, a artifact.Artifact) []store.Layer {
	t.Helper()
	ls, err := store.Layers(context.Background(), st, attachRef(st, a, store.LinksSuffix))
	if err != nil {
		t.Fatal(err)
	}
	return ls
}

type verifyOutput struct {
	Verified bool
	Checks   []struct {
		Name   string
		OK     bool
		Reason string
	}
	Notes []string
}

// verifyCLI runs accord verify -o json and returns the exit code and output.
func verifyCLI(t *testing.T, st store.Store, a artifact.Artifact, policy string) (int, verifyOutput) {
	t.Helper()
	target := a.Name + "@" + a.Stored
	stdout, stderr, err := accord(t, "verify", target, "--store", st.String(), "--policy", policy, "-o", "json")
	var out verifyOutput
	if jerr := json.Unmarshal([]byte(stdout), &out); jerr != nil {
		t.Fatalf("verify %s: exit %d, output is not JSON (%v): %s %s", target, exitCode(err), jerr, stdout, stderr)
	}
	return exitCode(err), out
}

func (o verifyOutput) failed() []string {
	var out []string
	for _, c := range o.Checks {
		if !c.OK {
			out = append(out, c.Name)
		}
	}
	return out
}

func (o verifyOutput) reason(check string) string {
	for _, c := range o.Checks {
		if c.Name == check {
			return c.Reason
		}
	}
	return ""
}

// reencode is the same link files in another tar encoding: the same links,
// other bytes.
func reencode(t *testing.T, blob []byte) []byte {
	t.Helper()
	files, err := attest.ReadLinksBundle(blob)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for n, c := range files {
		tw.WriteHeader(&tar.Header{Name: n, Mode: 0o600, Size: int64(len(c)), Typeflag: tar.TypeReg, Format: tar.FormatGNU})
		tw.Write(c)
	}
	tw.Close()
	return b.Bytes()
}

// TestEvidenceLinksBinding: a SUNBURST-style build (a step rewrites the
// source it may only read) fails the in-toto layout check however its
// .links is repointed: to the honest build's links, to another
// artifact's, to another pipeline's, to a re-encoded bundle; and a layout
// made for another pipeline digest does not verify an honest build.
func TestEvidenceLinksBinding(t *testing.T) {
	w := newEvidenceWorld(t)
	st, err := store.OpenLayout(filepath.Join(t.TempDir(), "store"))
	if err != nil {
		t.Fatal(err)
	}
	honest := w.prove(t, st, provedBuild{pipeline: w.files[0], name: "app", content: []byte("the honest binary")})
	other := w.prove(t, st, provedBuild{pipeline: w.files[0], name: "other", content: []byte("another app of the same pipeline")})
	otherPipeline := w.prove(t, st, provedBuild{pipeline: w.files[1], name: "p2", content: []byte("an app of another pipeline")})
	sunburst := w.prove(t, st, provedBuild{pipeline: w.files[0], name: "app-s", content: []byte("the binary + implant"), sunburst: true})
	policy := w.policy(t, w.layout(t, w.files[0]))

	if code, out := verifyCLI(t, st, honest, policy); code != 0 {
		t.Fatalf("the honest build does not verify: exit %d %+v", code, out)
	}
	if code, out := verifyCLI(t, st, sunburst, policy); code != exitNotVerified || !cmp.Equal(out.failed(), []string{"in-toto-layout"}) || !strings.Contains(out.reason("in-toto-layout"), "build-compile") {
		t.Fatalf("the SUNBURST build with its own links: exit %d %+v", code, out)
	}
	own := linksOf(t, st, sunburst)
	for _, tc := range []struct {
		name  string
		links []store.Layer
		want  string
	}{
		{"repointed to the honest build's links", linksOf(t, st, honest), "no stored links bundle is named"},
		{"repointed to another artifact's links", linksOf(t, st, other), "no stored links bundle is named"},
		{"repointed to another pipeline's links", linksOf(t, st, otherPipeline), "no stored links bundle is named"},
		{"honest links beside its own", append(linksOf(t, st, honest), own...), "build-compile"},
		{"its own links re-encoded (another digest)", []store.Layer{{MediaType: store.LinksBundleMediaType, Blob: reencode(t, own[0].Blob), Annotations: own[0].Annotations}}, "no stored links bundle is named"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			setLinks(t, st, sunburst, tc.links)
			code, out := verifyCLI(t, st, sunburst, policy)
			if code != exitNotVerified || !cmp.Equal(out.failed(), []string{"in-toto-layout"}) {
				t.Fatalf("exit %d, failed %v, want 1 and in-toto-layout: %+v", code, out.failed(), out)
			}
			if r := out.reason("in-toto-layout"); !strings.Contains(r, tc.want) {
				t.Errorf("reason %q does not say %q", r, tc.want)
			}
			// export writes only the links the trusted provenance names: the
			// artifact's own, never the borrowed ones.
			dir := filepath.Join(t.TempDir(), "bundle")
			if _, stderr, err := accord(t, "export", sunburst.Name+"@"+sunburst.Stored, "--store", st.String(), "--dir", dir, "--key", w.pub); err != nil {
				t.Fatalf("export: %v %s", err, stderr)
			}
			if got, want := exportedLinks(t, dir), bundleFiles(t, own[0].Blob, tc.links); !cmp.Equal(got, want) {
				t.Errorf("export wrote links %v, want only the artifact's own that are stored %v", got, want)
			}
		})
	}
	t.Run("layout made for another pipeline digest", func(t *testing.T) {
		code, out := verifyCLI(t, st, honest, w.policy(t, w.layout(t, w.files[1])))
		if code != exitNotVerified || !cmp.Equal(out.failed(), []string{"in-toto-layout"}) || !strings.Contains(out.reason("in-toto-layout"), "the layout was generated for pipeline "+w.pipelines[w.files[1]].Digest) {
			t.Errorf("exit %d %+v", code, out)
		}
	})
}

// evidenceStore is a fresh store of each kind, and how to tamper with its
// blobs.
func evidenceStore(t *testing.T, kind string) (store.Store, func(h ggcrv1.Hash, f func([]byte) []byte)) {
	t.Helper()
	if kind == "layout" {
		st, err := store.OpenLayout(filepath.Join(t.TempDir(), "store"))
		if err != nil {
			t.Fatal(err)
		}
		return st, func(h ggcrv1.Hash, f func([]byte) []byte) { tamper.LayoutBlob(t, st.Dir(), h, f) }
	}
	repo, blobs := tamper.Registry(t)
	st, err := store.Open(repo)
	if err != nil {
		t.Fatal(err)
	}
	return st, blobs.Set
}

// TestEvidenceEveryByte: a byte flipped or cut in a layer or the config of
// a stored artifact fails verify's artifact-bytes check, and export refuses
// it, naming the blob and the artifact, and writes nothing.
func TestEvidenceEveryByte(t *testing.T) {
	w := newEvidenceWorld(t)
	policy := w.policy(t, w.layout(t, w.files[0]))
	for _, kind := range []string{"layout", "registry"} {
		for _, tc := range []struct {
			name    string
			content []byte
			blob    func(m *ggcrv1.Manifest) ggcrv1.Hash
			f       func([]byte) []byte
			failed  []string
		}{
			{"image: a byte flipped in a layer", nil, func(m *ggcrv1.Manifest) ggcrv1.Hash { return m.Layers[1].Digest }, tamper.FlipByte, []string{"artifact-bytes"}},
			{"image: a layer truncated", nil, func(m *ggcrv1.Manifest) ggcrv1.Hash { return m.Layers[0].Digest }, tamper.Truncate, []string{"artifact-bytes"}},
			{"image: a byte flipped in the config", nil, func(m *ggcrv1.Manifest) ggcrv1.Hash { return m.Config.Digest }, tamper.FlipByte, []string{"artifact-bytes"}},
			{"file: a byte flipped", []byte("the honest binary"), func(m *ggcrv1.Manifest) ggcrv1.Hash { return m.Layers[0].Digest }, tamper.FlipByte,
				[]string{"artifact-bytes", "provenance-subject", "builders-threshold", "in-toto-layout"}},
		} {
			t.Run(kind+"/"+tc.name, func(t *testing.T) {
				st, tamperBlob := evidenceStore(t, kind)
				a := w.prove(t, st, provedBuild{pipeline: w.files[0], name: "accord.dev/test/app", content: tc.content})
				if code, out := verifyCLI(t, st, a, policy); code != 0 {
					t.Fatalf("before the attack: exit %d %+v", code, out)
				}
				h, _ := ggcrv1.NewHash(a.Stored)
				img, err := st.Image(context.Background(), h)
				if err != nil {
					t.Fatal(err)
				}
				m, _ := img.Manifest()
				blob := tc.blob(m)
				tamperBlob(blob, tc.f)
				if kind == "registry" { // a new process: nothing cached
					st, _ = store.Open(st.String())
				}
				code, out := verifyCLI(t, st, a, policy)
				if code != exitNotVerified || !cmp.Equal(out.failed(), tc.failed) || !strings.Contains(out.reason("artifact-bytes"), blob.String()) {
					t.Errorf("verify: exit %d, failed %v (want 1, %v): %+v", code, out.failed(), tc.failed, out)
				}
				dir := filepath.Join(t.TempDir(), "bundle")
				target := a.Name + "@" + a.Stored
				_, _, err = accord(t, "export", target, "--store", st.String(), "--dir", dir, "--pub", w.pub, "--key", w.pub)
				if err == nil || !strings.Contains(err.Error(), blob.String()) || !strings.Contains(err.Error(), target) {
					t.Errorf("export: %v, want an error naming %s and %s", err, blob, target)
				}
				if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("export left %s behind (%v)", dir, err)
				}
			})
		}
	}
}

// addAttachment appends layer l to what is stored beside a under suffix.
func addAttachment(t *testing.T, st store.Store, a artifact.Artifact, suffix string, l ggcrv1.Layer, ann map[string]string) {
	t.Helper()
	ctx := context.Background()
	ref := attachRef(st, a, suffix)
	old, err := st.(store.Lookuper).Lookup(ctx, ref)
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.Append(old, mutate.Addendum{Layer: l, Annotations: ann})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Put(ctx, ref, img); err != nil {
		t.Fatal(err)
	}
}

// TestEvidenceJunk: junk beside an artifact (malformed, truncated, huge,
// not DSSE, of a predicate verify does not read, of an old format) is
// skipped with a note naming it; the honest evidence still verifies, with
// and without a layout in the policy.
func TestEvidenceJunk(t *testing.T) {
	w := newEvidenceWorld(t)
	intruder, _ := keyPair(t, t.TempDir(), "intruder")
	is, err := loadSigner(context.Background(), intruder)
	if err != nil {
		t.Fatal(err)
	}
	unknown := func(t *testing.T, sha string) []byte {
		st, err := attest.Statement("https://example.com/unknown/v1", []attest.Subject{{Name: "app", SHA256: sha}}, map[string]any{"x": 1})
		if err != nil {
			t.Fatal(err)
		}
		env, err := attest.SignEnvelope(context.Background(), w.signer, attest.PayloadType, st)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(env)
		return b
	}
	layer := static.NewLayer
	intruderLinks := func(t *testing.T) []byte {
		mb, err := attest.SignLink(context.Background(), is, attest.LinkInput{Name: "build-compile"})
		if err != nil {
			t.Fatal(err)
		}
		j, _ := json.Marshal(mb)
		b, err := attest.LinksBundle(map[string][]byte{attest.LinkFileName("build-compile", is.KeyID()): j})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	gz := []byte{0x1f, 0x8b, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff, 0x4a, 0x4c}
	tests := []struct {
		name   string
		suffix string
		layer  func(t *testing.T, st store.Store, a artifact.Artifact) ggcrv1.Layer
		note   string
	}{
		{"garbage links bundle", store.LinksSuffix, func(t *testing.T, _ store.Store, _ artifact.Artifact) ggcrv1.Layer {
			return layer(bytes.Repeat([]byte("junk"), 400), store.LinksBundleMediaType)
		}, "links bundle 2"},
		{"truncated links bundle", store.LinksSuffix, func(t *testing.T, st store.Store, a artifact.Artifact) ggcrv1.Layer {
			b := linksOf(t, st, a)[0].Blob
			return layer(b[:len(b)/2], store.LinksBundleMediaType)
		}, "links bundle 2"},
		{"links bundle of an untrusted builder", store.LinksSuffix, func(t *testing.T, _ store.Store, _ artifact.Artifact) ggcrv1.Layer {
			return layer(intruderLinks(t), store.LinksBundleMediaType)
		}, "links bundle 2"},
		{"single link layer (old format)", store.LinksSuffix, func(t *testing.T, _ store.Store, _ artifact.Artifact) ggcrv1.Layer {
			return layer([]byte(`{"signed":{}}`), store.LinkMediaType)
		}, "not a links bundle: ignored"},
		{"truncated gzip attestation", store.AttSuffix, func(t *testing.T, _ store.Store, _ artifact.Artifact) ggcrv1.Layer {
			return layer(gz, store.DSSEMediaType)
		}, "not a DSSE envelope"},
		{"attestation layer over 64 MiB", store.AttSuffix, func(t *testing.T, st store.Store, _ artifact.Artifact) ggcrv1.Layer {
			z := tamper.NewZeros(t, store.MaxLayerSize+1, store.DSSEMediaType)
			z.Sparse(t, st.(*store.Layout).Dir())
			return z
		}, "over the 67108864-byte limit"},
		{"attestation that is not DSSE", store.AttSuffix, func(t *testing.T, _ store.Store, _ artifact.Artifact) ggcrv1.Layer {
			return layer([]byte(`{"critical":{"type":"cosign container image signature"}}`), store.SimpleSigningMediaType)
		}, "not a DSSE envelope"},
		{"DSSE with an unknown predicate", store.AttSuffix, func(t *testing.T, _ store.Store, a artifact.Artifact) ggcrv1.Layer {
			return layer(unknown(t, strings.TrimPrefix(a.Digest, "sha256:")), store.DSSEMediaType)
		}, `predicate type "https://example.com/unknown/v1"`},
	}
	policies := map[string]string{"no layout": w.policy(t, ""), "layout": w.policy(t, w.layout(t, w.files[0]))}
	for _, tc := range tests {
		for pname, policy := range policies {
			t.Run(tc.name+" ("+pname+")", func(t *testing.T) {
				st, err := store.OpenLayout(filepath.Join(t.TempDir(), "store"))
				if err != nil {
					t.Fatal(err)
				}
				a := w.prove(t, st, provedBuild{pipeline: w.files[0], name: "app", content: []byte("the honest binary")})
				addAttachment(t, st, a, tc.suffix, tc.layer(t, st, a), map[string]string{store.BuilderAnnotation: "https://intruder.example"})
				code, out := verifyCLI(t, st, a, policy)
				if code != 0 || !out.Verified {
					t.Fatalf("junk made the honest evidence fail: exit %d %+v", code, out)
				}
				if len(out.Notes) != 1 || !strings.Contains(out.Notes[0], tc.note) {
					t.Errorf("notes %q, want one saying %s", out.Notes, tc.note)
				}
			})
		}
	}
}

// TestEvidenceRealRun: an honest run of examples/hello (real runc, the
// catalog's go-image pipeline) verifies against the catalog's layout:
// both artifacts are final products of the links its provenance names.
func TestEvidenceRealRun(t *testing.T) {
	st := builderStore(t)
	dir := t.TempDir()
	key, pub := keyPair(t, dir, "builder")
	owner, ownerPub := keyPair(t, dir, "owner")
	out := runExample(t, st, "--key", key, "--builder-id", evidenceBuilder)
	layout := filepath.Join(dir, "root.layout")
	if _, stderr, err := accord(t, "layout", "--key", owner, "--functionary", pub, "--out", layout); err != nil {
		t.Fatalf("layout: %v %s", err, stderr)
	}
	w := &evidenceWorld{pub: pub, owPub: ownerPub}
	policy := w.policy(t, layout)
	ls, err := store.OpenLayout(st)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range out.Artifacts {
		code, v := verifyCLI(t, ls, artifact.Artifact{Name: a.Name, Stored: a.Stored}, policy)
		if code != 0 || !strings.Contains(v.reason("in-toto-layout"), "final product output/") {
			t.Errorf("%s %s: exit %d %+v", a.Kind, a.Name, code, v)
		}
		// The store is shared with other tests, whose builders attested the
		// same (reproducible) digests: their evidence is noted as untrusted;
		// nothing else may be.
		for _, n := range v.Notes {
			if !strings.Contains(n, "not signed by a trusted builder key") && !strings.Contains(n, "is not named by any trusted provenance") {
				t.Errorf("%s %s: unexpected note %q", a.Kind, a.Name, n)
			}
		}
	}
}

// exportedLinks lists the link files an export wrote.
func exportedLinks(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(filepath.Join(dir, "links"))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	var out []string
	for _, e := range es {
		out = append(out, e.Name())
	}
	return out
}

// bundleFiles lists the link files of own when it is among layers.
func bundleFiles(t *testing.T, own []byte, layers []store.Layer) []string {
	t.Helper()
	var out []string
	for _, l := range layers {
		if !bytes.Equal(l.Blob, own) {
			continue
		}
		files, err := attest.ReadLinksBundle(own)
		if err != nil {
			t.Fatal(err)
		}
		for n := range files {
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out
}

package main

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/accord-build/accord/attest"
	"github.com/accord-build/accord/internal/artifact"
	"github.com/accord-build/accord/internal/divergence"
	"github.com/accord-build/accord/internal/source"
	"github.com/accord-build/accord/internal/store"
	"github.com/accord-build/accord/pipelines"
)

const primaryID = "https://accord.dev/builders/primary"

// attackWorld is a store (an OCI layout in a temp dir) holding one file
// artifact, the primary's key pair and a policy that trusts it, another
// trusted builder, an attacker's key, and a real git repository.
type attackWorld struct {
	store, policy, validatorKey string
	artifact                    string // NAME@sha256:...
	sha                         string // the artifact's subject digest (hex)
	primary, other, attacker    *attest.Signer
	repo, commit                string // file:// URL and a commit in it
	pipelineDigest              string
}

func newAttackWorld(t *testing.T) *attackWorld {
	t.Helper()
	dir := t.TempDir()
	w := &attackWorld{store: filepath.Join(dir, "store")}
	keys := filepath.Join(dir, "keys")
	os.Mkdir(keys, 0o700)
	signerOf := func(name string) (*attest.Signer, string) {
		priv, pub := keyPair(t, keys, name)
		s, err := attest.LoadSigner(context.Background(), priv, func() ([]byte, error) { return []byte("test-password"), nil })
		if err != nil {
			t.Fatal(err)
		}
		return s, pub
	}
	var primaryPub, otherPub string
	w.primary, primaryPub = signerOf("primary")
	w.other, otherPub = signerOf("other")
	w.attacker, _ = signerOf("attacker")
	w.validatorKey, _ = keyPair(t, keys, "independent")
	w.policy = filepath.Join(dir, "policy.yaml")
	pol := "apiVersion: accord.dev/v1alpha1\nkind: Policy\nbuilders:\n  - {id: " + primaryID + ", key: " + primaryPub + "}\n  - {id: https://accord.dev/builders/other, key: " + otherPub + "}\n"
	if err := os.WriteFile(w.policy, []byte(pol), 0o644); err != nil {
		t.Fatal(err)
	}
	data := []byte("the artifact\n")
	img, err := artifact.FileImage("app.bin", data)
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(w.store)
	if err != nil {
		t.Fatal(err)
	}
	h, err := st.Put(context.Background(), "app.bin", img)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	w.sha = hex.EncodeToString(sum[:])
	w.artifact = "app.bin@" + h.String()
	cat, err := pipelines.Builtin(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	r, err := cat.Resolve(context.Background(), "go-image")
	if err != nil {
		t.Fatal(err)
	}
	w.pipelineDigest = r.Digest
	w.repo, w.commit = gitExample(t)
	return w
}

// build is an honest provenance's build; the attacks change one field.
func (w *attackWorld) build(id string) *attest.Build {
	return &attest.Build{
		SourceURI: w.repo, SourceRef: "refs/heads/main", SourceCommit: strings.Repeat("0", 40), SourceDateEpoch: 1700000000,
		Pipeline: "go-image", PipelineDigest: w.pipelineDigest,
		Params:   map[string]any{"name": "hello", "package": "."},
		Internal: map[string]any{"variation": map[string]any{"workspaceRoot": "/workspace"}},
		Run:      attest.Run{BuilderID: id, InvocationID: "1"},
	}
}

// statement is b's provenance about the artifact. A commit that is not
// hex is written into the JSON afterwards, as an attacker would: accord's
// own writer refuses it.
func (w *attackWorld) statement(t *testing.T, b *attest.Build) []byte {
	t.Helper()
	c := *b
	placeholder := strings.Repeat("1", 40)
	if source.ValidateCommit(c.SourceCommit) != nil {
		c.SourceCommit = placeholder
	}
	stmt, err := attest.Provenance(&c, []attest.Subject{{Name: "app.bin", SHA256: w.sha}})
	if err != nil {
		t.Fatal(err)
	}
	bad, _ := json.Marshal(b.SourceCommit)
	return []byte(strings.ReplaceAll(string(stmt), `"commit":"`+placeholder+`"`, `"commit":`+string(bad)))
}

// envelope signs b's provenance about the artifact with s.
func (w *attackWorld) envelope(t *testing.T, s *attest.Signer, b *attest.Build) []byte {
	t.Helper()
	stmt := w.statement(t, b)
	env, err := attest.SignEnvelope(context.Background(), s, attest.PayloadType, stmt)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := json.Marshal(env)
	return raw
}

// tampered is an envelope the primary signed, with its payload replaced by
// b's: the signature no longer verifies.
func (w *attackWorld) tampered(t *testing.T, b *attest.Build) []byte {
	t.Helper()
	var env attest.Envelope
	json.Unmarshal(w.envelope(t, w.primary, w.build(primaryID)), &env)
	env.Payload = base64.StdEncoding.EncodeToString(w.statement(t, b))
	raw, _ := json.Marshal(env)
	return raw
}

// attach stores the envelopes as the artifact's attestations, in order.
func (w *attackWorld) attach(t *testing.T, envs ...[]byte) {
	t.Helper()
	st, err := store.Open(w.store)
	if err != nil {
		t.Fatal(err)
	}
	name, h, err := resolveArtifact(context.Background(), st, w.artifact)
	if err != nil {
		t.Fatal(err)
	}
	var layers []store.Layer
	for _, e := range envs {
		layers = append(layers, store.Layer{MediaType: store.DSSEMediaType, Blob: e, Annotations: map[string]string{store.PredicateTypeAnnotation: attest.SLSAProvenanceV1}})
	}
	ref := store.AttachmentRef(store.Name(st, name), h, store.AttSuffix)
	if _, err := store.Attach(context.Background(), st, ref, layers, func(map[string]string) bool { return true }); err != nil {
		t.Fatal(err)
	}
}

func (w *attackWorld) rebuild(t *testing.T, extra ...string) (string, string, error) {
	t.Helper()
	t.Setenv("ACCORD_BUILDERS", "") // builders.yaml, which cmd/accord does not have
	args := append([]string{"rebuild", w.artifact, "--store", w.store, "--builder", "independent", "--key", w.validatorKey,
		"--runtime", runtimeForRebuild(), "--workdir", t.TempDir()}, extra...)
	return accord(t, args...)
}

// attack is one malicious provenance: the change to an honest build, and
// what the refusal names when a trusted builder signed it.
type attack struct {
	name  string
	edit  func(b *attest.Build, marker string)
	field string
}

func rebuildAttacks() []attack {
	uri := func(u string) func(*attest.Build, string) {
		return func(b *attest.Build, m string) { b.SourceURI = strings.ReplaceAll(u, "MARK", m) }
	}
	return []attack{
		{"upload-pack option as the URI", uri("--upload-pack=touch MARK;@x:y"), "externalParameters.source.uri"},
		{"ext transport", uri("ext::sh -c touch% MARK"), "externalParameters.source.uri"},
		{"config option as the URI", uri("-c core.sshCommand=touch MARK git@x:y"), "externalParameters.source.uri"},
		{"ssh host as an option", uri("ssh://-oProxyCommand=touch/x"), "externalParameters.source.uri"},
		{"option as the revision", func(b *attest.Build, m string) { b.SourceCommit = "--output=" + m }, "externalParameters.source.commit"},
		{"upload-pack as the revision", func(b *attest.Build, m string) { b.SourceCommit = "--upload-pack=touch " + m + ";" }, "externalParameters.source.commit"},
		{"branch instead of a commit", func(b *attest.Build, m string) { b.SourceCommit = "main" }, "externalParameters.source.commit"},
		{"param the pipeline does not declare", func(b *attest.Build, m string) { b.Params["evil"] = "x" }, "externalParameters.params.evil"},
		{"param of the wrong type", func(b *attest.Build, m string) { b.Params["name"] = []any{"a", "b"} }, "externalParameters.params.name"},
		{"relative workspace root", func(b *attest.Build, m string) {
			b.Internal["variation"] = map[string]any{"workspaceRoot": "build/x"}
		}, "internalParameters.variation.workspaceRoot"},
		{"dotted workspace root", func(b *attest.Build, m string) {
			b.Internal["variation"] = map[string]any{"workspaceRoot": "/build/../etc"}
		}, "internalParameters.variation.workspaceRoot"},
		{"root as workspace root", func(b *attest.Build, m string) {
			b.Internal["variation"] = map[string]any{"workspaceRoot": "/"}
		}, "internalParameters.variation.workspaceRoot"},
		{"pipeline file instead of a catalog name", func(b *attest.Build, m string) { b.Pipeline = "../../" + m + ".yaml" }, "externalParameters.pipeline.name"},
	}
}

func assertNoMarker(t *testing.T, marker string) {
	t.Helper()
	if _, err := os.Stat(marker); err == nil {
		t.Fatalf("the attack ran on the validator host: %s exists", marker)
	}
}

// TestRebuildForgedProvenance: a provenance whose signature does not verify
// with the --from builder's key is skipped, with a note, even when it is
// stored first: the rebuild goes on from the honest one (here it names a
// commit the repository lacks, so it stops at the fetch, having run
// nothing the attacker chose).
func TestRebuildForgedProvenance(t *testing.T) {
	w := newAttackWorld(t)
	for _, a := range rebuildAttacks() {
		for _, forge := range []struct {
			how string
			env func(b *attest.Build) []byte
		}{
			{"attacker's key", func(b *attest.Build) []byte { return w.envelope(t, w.attacker, b) }},
			{"tampered payload", func(b *attest.Build) []byte { return w.tampered(t, b) }},
			{"another trusted builder, not --from", func(b *attest.Build) []byte {
				b.Run.BuilderID = "https://accord.dev/builders/other"
				return w.envelope(t, w.other, b)
			}},
			{"another trusted builder's key, claiming --from", func(b *attest.Build) []byte { return w.envelope(t, w.other, b) }},
		} {
			t.Run(a.name+"/"+forge.how, func(t *testing.T) {
				marker := filepath.Join(t.TempDir(), "pwned")
				evil := w.build(primaryID)
				a.edit(evil, marker)
				w.attach(t, forge.env(evil), w.envelope(t, w.primary, w.build(primaryID)))
				_, stderr, err := w.rebuild(t, "--policy", w.policy, "--from", "primary")
				assertNoMarker(t, marker)
				if exitCode(err) != exitUsage || !strings.Contains(err.Error(), "fetching "+w.repo) {
					t.Errorf("exit %d (%v), want 2 at the honest provenance's fetch", exitCode(err), err)
				}
				if !strings.Contains(stderr, "note: skipping stored provenance 1") {
					t.Errorf("no note about the skipped provenance:\n%s", stderr)
				}
			})
		}
	}
}

// TestRebuildRefusesRecordedValues: a provenance the --from builder did
// sign (a compromised builder, or a bug) is still checked field by field,
// and refused naming the field.
func TestRebuildRefusesRecordedValues(t *testing.T) {
	w := newAttackWorld(t)
	for _, a := range rebuildAttacks() {
		t.Run(a.name, func(t *testing.T) {
			marker := filepath.Join(t.TempDir(), "pwned")
			evil := w.build(primaryID)
			a.edit(evil, marker)
			w.attach(t, w.envelope(t, w.primary, evil))
			_, _, err := w.rebuild(t, "--policy", w.policy, "--from", primaryID)
			assertNoMarker(t, marker)
			if exitCode(err) != exitUsage || !strings.Contains(err.Error(), a.field) || !strings.Contains(err.Error(), "fix:") {
				t.Errorf("exit %d (%v), want 2 naming %s with a fix", exitCode(err), err, a.field)
			}
		})
	}
}

// TestRebuildTrust: with no key for the builder to rebuild from, rebuild
// refuses and says how to give one; provenance of other builders only is
// refused; the honest provenance is used.
func TestRebuildTrust(t *testing.T) {
	w := newAttackWorld(t)
	marker := filepath.Join(t.TempDir(), "pwned")
	evil := w.build("https://accord.dev/builders/other")
	evil.SourceURI = "--upload-pack=touch " + marker + ";@x:y"
	w.attach(t, w.envelope(t, w.attacker, w.build(primaryID)), w.envelope(t, w.other, evil))
	for _, tc := range []struct {
		name string
		args []string
		want []string
	}{
		{"no policy, no builders file", nil, []string{"uses only signed provenance", "fix: give --policy FILE"}},
		{"--from a builder nobody trusts", []string{"--policy", w.policy, "--from", "https://evil.example/b"}, []string{"builder https://evil.example/b", "fix:"}},
		{"only another builder's provenance", []string{"--policy", w.policy, "--from", "primary"}, []string{"no provenance of " + w.artifact + " is signed by " + primaryID, "fix:"}},
		{"other builder with a bad URI", []string{"--policy", w.policy, "--from", "other"}, []string{"externalParameters.source.uri", "starts with '-'"}},
		{"any trusted builder", []string{"--policy", w.policy}, []string{"externalParameters.source.uri"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, stderr, err := w.rebuild(t, tc.args...)
			assertNoMarker(t, marker)
			if exitCode(err) != exitUsage {
				t.Fatalf("exit %d (%v), want 2\n%s", exitCode(err), err, stderr)
			}
			for _, s := range tc.want {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error does not say %q:\n%v", s, err)
				}
			}
		})
	}
}

// TestDiffIgnoresForgedProvenance: a forged provenance that names the
// differing path as the builders' workspace root would make a real change
// look like a build-path difference. diff uses only provenance that a
// trusted builder signed; forged or unchecked provenance gives no hints.
func TestDiffIgnoresForgedProvenance(t *testing.T) {
	t.Setenv("ACCORD_NO_DIFFOSCOPE", "1")
	t.Setenv("ACCORD_BUILDERS", "")
	w := newAttackWorld(t)
	st, err := store.Open(w.store)
	if err != nil {
		t.Fatal(err)
	}
	put := func(root string, signer *attest.Signer, id string) string {
		data := []byte("release 1.0\nrun " + root + "/payload\n")
		img, err := artifact.FileImage("run.txt", data)
		if err != nil {
			t.Fatal(err)
		}
		h, err := st.Put(context.Background(), "", img) // by digest only, as validators store
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(data)
		b := w.build(id)
		b.Internal["variation"] = map[string]any{"workspaceRoot": root}
		stmt, err := attest.Provenance(b, []attest.Subject{{Name: "run.txt", SHA256: hex.EncodeToString(sum[:])}})
		if err != nil {
			t.Fatal(err)
		}
		env, err := attest.SignEnvelope(context.Background(), signer, attest.PayloadType, stmt)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := json.Marshal(env)
		ref := store.AttachmentRef(store.Name(st, "run.txt"), h, store.AttSuffix)
		layer := store.Layer{MediaType: store.DSSEMediaType, Blob: raw, Annotations: map[string]string{store.PredicateTypeAnnotation: attest.SLSAProvenanceV1}}
		if _, err := store.Attach(context.Background(), st, ref, []store.Layer{layer}, nil); err != nil {
			t.Fatal(err)
		}
		return "run.txt@" + h.String()
	}
	forgedA, forgedB := put("/opt/evil", w.attacker, primaryID), put("/opt/good", w.attacker, primaryID)
	honestA, honestB := put("/build/a", w.primary, primaryID), put("/build/b", w.primary, primaryID)
	for _, tc := range []struct {
		name string
		a, b string
		args []string
		want divergence.Cause
		note string
	}{
		{"forged, with a policy", forgedA, forgedB, []string{"--policy", w.policy}, divergence.Content, "skipping stored provenance 1"},
		{"forged, no keys", forgedA, forgedB, nil, divergence.Content, "provenance is not used"},
		{"honest, no keys", honestA, honestB, nil, divergence.Content, "provenance is not used"},
		{"honest, with a policy", honestA, honestB, []string{"--policy", w.policy}, divergence.BuildPath, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, stderr, err := accord(t, append([]string{"diff", tc.a, tc.b, "--store", w.store, "-o", "json"}, tc.args...)...)
			if exitCode(err) != exitNotVerified {
				t.Fatalf("diff: exit %d (%v), want 1\n%s", exitCode(err), err, stderr)
			}
			var r divergence.Report
			if err := json.Unmarshal([]byte(out), &r); err != nil {
				t.Fatal(err)
			}
			if len(r.Causes) != 1 || r.Causes[0] != tc.want {
				t.Errorf("causes %v, want [%s]", r.Causes, tc.want)
			}
			if !strings.Contains(stderr, tc.note) {
				t.Errorf("stderr does not note %q:\n%s", tc.note, stderr)
			}
		})
	}
}

package evidence

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/v1/random"

	"github.com/accord-build/accord/attest"
	"github.com/accord-build/accord/internal/store"
	"github.com/accord-build/accord/internal/testutil/tamper"
)

const (
	primaryID = "https://accord.dev/builders/primary"
	otherID   = "https://accord.dev/builders/other"
)

// keyPair writes NAME.key and NAME.pub into dir and returns the signer and
// the public key (PEM).
func keyPair(t *testing.T, dir, name string) (*attest.Signer, []byte) {
	t.Helper()
	priv, pub, err := attest.GenerateKeyPair([]byte{})
	if err != nil {
		t.Fatal(err)
	}
	kp := filepath.Join(dir, name+".key")
	if err := os.WriteFile(kp, priv, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".pub"), pub, 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := attest.LoadSigner(context.Background(), kp, nil)
	if err != nil {
		t.Fatal(err)
	}
	return s, pub
}

// sign is a DSSE envelope, signed by s, of a statement of predicateType
// about sha; provenance claims builderID.
func sign(t *testing.T, s *attest.Signer, predicateType, builderID, sha string) []byte {
	t.Helper()
	subj := []attest.Subject{{Name: "app", SHA256: sha}}
	var stmt []byte
	var err error
	if predicateType == attest.SLSAProvenanceV1 {
		stmt, err = attest.Provenance(&attest.Build{Pipeline: "go-image", PipelineDigest: "sha256:" + strings.Repeat("a", 64), Params: map[string]any{},
			Run: attest.Run{BuilderID: builderID}}, subj)
	} else {
		stmt, err = attest.Statement(predicateType, subj, map[string]any{"x": 1})
	}
	if err != nil {
		t.Fatal(err)
	}
	return signPayload(t, s, stmt)
}

func signPayload(t *testing.T, s *attest.Signer, payload []byte) []byte {
	t.Helper()
	env, err := attest.SignEnvelope(context.Background(), s, attest.PayloadType, payload)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(env)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mustBuilder(t *testing.T, id, origin string, pem []byte) Builder {
	t.Helper()
	b, err := NewBuilder(id, origin, pem)
	if err != nil {
		t.Fatal(err)
	}
	return *b
}

// TestTrustedProvenance: the one trust rule, as the CLI's provenance
// readers see it. Only provenance that a trusted builder's key signed,
// under that builder's identity, about the artifact, is returned; every
// other envelope is a note that says why, worded as before the move.
func TestTrustedProvenance(t *testing.T) {
	dir := t.TempDir()
	primary, primaryPub := keyPair(t, dir, "primary")
	other, otherPub := keyPair(t, dir, "other")
	sha, otherSHA := strings.Repeat("1", 64), strings.Repeat("2", 64)
	trusted := []Builder{mustBuilder(t, primaryID, "policy.yaml", primaryPub)}
	both := append(append([]Builder(nil), trusted...), mustBuilder(t, otherID, "policy.yaml", otherPub))
	honest := sign(t, primary, attest.SLSAProvenanceV1, primaryID, sha)
	tests := []struct {
		name     string
		env      []byte
		builders []Builder
		sha      string
		wantBy   string // the accepted builder's id; "" none
		note     string
	}{
		{"trusted key", honest, trusted, sha, primaryID, ""},
		{"trusted key, second of two", sign(t, other, attest.SLSAProvenanceV1, otherID, sha), both, sha, otherID, ""},
		{"trusted key, no subject check", honest, trusted, "", primaryID, ""},
		{"other key", sign(t, other, attest.SLSAProvenanceV1, primaryID, sha), trusted, sha, "",
			"skipping stored provenance 1: its signature does not verify with the key of any trusted builder (" + primaryID + ")"},
		{"wrong id for the key", sign(t, primary, attest.SLSAProvenanceV1, otherID, sha), both, sha, "",
			`skipping stored provenance 1: provenance names another builder than the key's: signed by the key of ` + primaryID + `, claims builder "` + otherID + `"`},
		{"about another artifact", sign(t, primary, attest.SLSAProvenanceV1, primaryID, otherSHA), trusted, sha, "",
			"skipping stored provenance 1: signed by " + primaryID + " but about other artifacts, not sha256:" + sha},
		{"junk envelope", []byte("\x1f\x8b junk"), trusted, sha, "",
			"skipping stored provenance 1: not a DSSE envelope: invalid character '\\x1f' looking for beginning of value"},
		{"JSON that is not DSSE", []byte(`{"payloadType":""}`), trusted, sha, "",
			"skipping stored provenance 1: not a DSSE envelope: payloadType, payload and signatures are required"},
		{"signed SBOM posing as provenance", sign(t, primary, attest.SPDXDocument, "", sha), trusted, sha, "",
			`skipping stored provenance 1: signed by ` + primaryID + ` but unreadable: predicate type "` + attest.SPDXDocument + `", want ` + attest.SLSAProvenanceV1},
		{"signed payload that is not a statement", signPayload(t, primary, []byte(`not json`)), trusted, sha, "",
			"skipping stored provenance 1: signed by " + primaryID + " but unreadable: "},
		{"no builders", honest, nil, sha, "",
			"skipping stored provenance 1: its signature does not verify with the key of any trusted builder (none)"},
		{"no builders, junk envelope", []byte("junk"), nil, sha, "",
			"skipping stored provenance 1: its signature does not verify with the key of any trusted builder (none)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, notes := TrustedProvenance([][]byte{tc.env}, tc.builders, tc.sha)
			if tc.wantBy != "" {
				if len(got) != 1 || got[0].Summary.BuilderID != tc.wantBy || got[0].Builder.ID != tc.wantBy || len(notes) != 0 {
					t.Fatalf("got %d provenance(s), notes %q; want one of %s", len(got), notes, tc.wantBy)
				}
				return
			}
			if len(got) != 0 {
				t.Fatalf("trusted %s's provenance", got[0].Summary.BuilderID)
			}
			if len(notes) != 1 || !strings.HasPrefix(notes[0], tc.note) {
				t.Errorf("notes = %q\nwant %q", notes, tc.note)
			}
		})
	}
	t.Run("forged before honest", func(t *testing.T) {
		envs := [][]byte{sign(t, other, attest.SLSAProvenanceV1, primaryID, sha), []byte("junk"), honest}
		got, notes := TrustedProvenance(envs, trusted, sha)
		if len(got) != 1 || got[0].Summary.BuilderID != primaryID {
			t.Fatalf("got %d provenance(s), want the honest one", len(got))
		}
		if len(notes) != 2 || !strings.HasPrefix(notes[0], "skipping stored provenance 1:") || !strings.HasPrefix(notes[1], "skipping stored provenance 2:") {
			t.Errorf("notes = %q", notes)
		}
	})
}

// TestSourcesLoad: builders come from a builders file (public key beside
// each key) and a policy; a builder without its public half is a note, a
// broken policy an input error naming the field.
func TestSourcesLoad(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	keyPair(t, dir, "primary")
	keyPair(t, dir, "lost")
	os.Remove(filepath.Join(dir, "lost.pub"))
	bf := filepath.Join(dir, "builders.yaml")
	os.WriteFile(bf, []byte("apiVersion: accord.dev/v1alpha1\nkind: Builders\nminDifferences: 0\nbuilders:\n  - {name: primary, key: primary.key}\n  - {name: lost, key: lost.key}\n"), 0o644)
	pf := filepath.Join(dir, "policy.yaml")
	os.WriteFile(pf, []byte("apiVersion: accord.dev/v1alpha1\nkind: Policy\nbuilders: [{id: "+otherID+", key: primary.pub}]\n"), 0o644)
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(filepath.Join(dir, "junk.pub"), []byte("not a key"), 0o644)
	os.WriteFile(bad, []byte("apiVersion: accord.dev/v1alpha1\nkind: Policy\nbuilders: [{id: "+otherID+", key: junk.pub}]\n"), 0o644)

	bs, notes, err := Sources{BuildersFile: bf, Policy: pf}.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var got [][3]string
	for _, b := range bs {
		got = append(got, [3]string{b.ID, b.Name, b.Origin})
	}
	want := [][3]string{{primaryID, "primary", bf}, {otherID, "", pf}}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("builders (-want +got):\n%s", d)
	}
	if len(notes) != 1 || !strings.HasPrefix(notes[0], "builder lost of "+bf+" is not trusted: no public key "+filepath.Join(dir, "lost.pub")+" beside its key") {
		t.Errorf("notes = %q", notes)
	}
	if got := Only(bs, "primary"); len(got) != 1 || got[0].ID != primaryID {
		t.Errorf("Only(primary) = %v", got)
	}
	if got := Only(bs, otherID); len(got) != 1 || got[0].Origin != pf {
		t.Errorf("Only(%s) = %v", otherID, got)
	}

	for _, tc := range []struct {
		name string
		s    Sources
		want string
	}{
		{"policy key is not a key", Sources{Policy: bad}, bad + ": field builders[0].key: "},
		{"builders file named but missing", Sources{BuildersFile: filepath.Join(dir, "none.yaml"), BuildersGiven: true}, "none.yaml"},
		{"policy missing", Sources{Policy: filepath.Join(dir, "none-policy.yaml")}, "none-policy.yaml"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := tc.s.Load(ctx)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !IsInput(err) {
				t.Errorf("err = %v (input error: %v), want an input error saying %q", err, IsInput(err), tc.want)
			}
		})
	}
	if bs, _, err := (Sources{BuildersFile: filepath.Join(dir, "none.yaml")}).Load(ctx); err != nil || len(bs) != 0 {
		t.Errorf("a default builders file that does not exist: %v, %d builders; want none, no error", err, len(bs))
	}
	if err := NoTrust("rebuild", "primary"); !IsInput(err) || !strings.HasPrefix(err.Error(), "rebuild uses only signed provenance, and no public key of builder primary is known") {
		t.Errorf("NoTrust = %v", err)
	}
}

// TestProvenanceSummary: from a real store (an OCI layout and an
// in-process registry), the provenance a trusted builder signed about the
// artifact is found behind a forged one and junk, each noted.
func TestProvenanceSummary(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	primary, primaryPub := keyPair(t, dir, "primary")
	intruder, _ := keyPair(t, dir, "intruder")
	for _, kind := range []string{"layout", "registry"} {
		t.Run(kind, func(t *testing.T) {
			var st store.Store
			var err error
			if kind == "layout" {
				st, err = store.OpenLayout(filepath.Join(t.TempDir(), "store"))
			} else {
				repo, _ := tamper.Registry(t)
				st, err = store.Open(repo)
			}
			if err != nil {
				t.Fatal(err)
			}
			img, err := random.Image(128, 1)
			if err != nil {
				t.Fatal(err)
			}
			const name = "accord.dev/examples/app"
			h, err := st.Put(ctx, name, img)
			if err != nil {
				t.Fatal(err)
			}
			sha, err := ArtifactSHA256(img)
			if err != nil {
				t.Fatal(err)
			}
			prov := func(blob []byte) store.Layer {
				return store.Layer{MediaType: store.DSSEMediaType, Blob: blob, Annotations: map[string]string{store.PredicateTypeAnnotation: attest.SLSAProvenanceV1}}
			}
			layers := []store.Layer{
				prov(sign(t, intruder, attest.SLSAProvenanceV1, primaryID, sha)),
				prov([]byte(`{"junk": true}`)),
				prov(sign(t, primary, attest.SLSAProvenanceV1, primaryID, sha)),
			}
			if _, err := store.Attach(ctx, st, store.AttachmentRef(store.Name(st, name), h, store.AttSuffix), layers, nil); err != nil {
				t.Fatal(err)
			}
			arg := name + "@" + h.String()
			rn, rh, err := Resolve(ctx, st, arg)
			if err != nil || rn != name || rh != h {
				t.Fatalf("Resolve(%s) = %s, %s, %v", arg, rn, rh, err)
			}
			var notes bytes.Buffer
			tr := &Trust{Builders: []Builder{mustBuilder(t, primaryID, "test", primaryPub)}, Notes: &notes}
			sum := tr.ProvenanceSummary(ctx, st, name, h, img, "primary")
			if sum == nil || sum.BuilderID != primaryID {
				t.Fatalf("summary = %+v; notes:\n%s", sum, notes.String())
			}
			for _, w := range []string{"note: " + name + ": skipping stored provenance 1: its signature does not verify", "note: " + name + ": skipping stored provenance 2: not a DSSE envelope"} {
				if !strings.Contains(notes.String(), w) {
					t.Errorf("notes do not say %q:\n%s", w, notes.String())
				}
			}
			if sum := tr.ProvenanceSummary(ctx, st, name, h, img, "someone-else"); sum != nil {
				t.Errorf("summary for a builder not trusted: %+v", sum)
			}
			if sum := (*Trust)(nil).ProvenanceSummary(ctx, st, name, h, img, ""); sum != nil {
				t.Errorf("a nil Trust believed %+v", sum)
			}
			ev, err := Read(ctx, st, arg)
			if err != nil {
				t.Fatal(err)
			}
			if ev.ArtifactSHA256 != sha || len(ev.Attestations) != 3 || len(ev.Blobs) == 0 {
				t.Errorf("Read: sha %s, %d attestations, %d blobs", ev.ArtifactSHA256, len(ev.Attestations), len(ev.Blobs))
			}
		})
	}
}

// TestResolveInput: an artifact that cannot be named is an input error.
func TestResolveInput(t *testing.T) {
	ctx := context.Background()
	st, err := store.OpenLayout(filepath.Join(t.TempDir(), "store"))
	if err != nil {
		t.Fatal(err)
	}
	repo, _ := tamper.Registry(t)
	reg, err := store.Open(repo)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		st   store.Store
		arg  string
		want string
	}{
		{"bad digest", st, "app@sha256:nothex", "non-hex"},
		{"unknown name", st, "nothing-here", "fix: use a name 'accord run' printed"},
		{"bare name in a registry", reg, "app", "give the artifact as NAME@sha256:<digest> for a registry store"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := Resolve(ctx, tc.st, tc.arg)
			if !IsInput(err) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want an input error saying %q", err, tc.want)
			}
		})
	}
	if _, err := KeyPolicy("accord sbom", nil, ""); !IsInput(err) || !strings.Contains(err.Error(), "fix: add --key BUILDER.pub or --policy policy.yaml") {
		t.Errorf("KeyPolicy without keys: %v", err)
	}
	if _, err := KeyPolicy("accord sbom", []string{"a.pub"}, "p.yaml"); !IsInput(err) || !strings.Contains(err.Error(), "give one") {
		t.Errorf("KeyPolicy with both: %v", err)
	}
	var ie *InputError
	if _, err := KeyPolicy("accord sbom", []string{filepath.Join(t.TempDir(), "none.pub")}, ""); !errors.As(err, &ie) || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("KeyPolicy with a missing key: %v", err)
	}
}

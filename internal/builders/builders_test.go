package builders_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"sigs.k8s.io/yaml"

	"github.com/accord-build/accord/attest"
	"github.com/accord-build/accord/internal/builders"
	"github.com/accord-build/accord/internal/engine"
	"github.com/accord-build/accord/internal/testutil/pemtest"
)

const good = `
apiVersion: accord.dev/v1alpha1
kind: Builders
builders:
- name: primary
  key: primary.key
- name: validator-1
  id: https://builders.example/v1
  key: awskms:///alias/v1
  runtime: crun
  variation:
    workspaceRoot: /build/v1
    hostname: validator-1
    umask: "0077"
`

func TestParse(t *testing.T) {
	s, err := builders.Parse("/etc/accord/builders.yaml", []byte(good))
	if err != nil {
		t.Fatal(err)
	}
	want := []builders.Builder{{
		Name: "primary", ID: "https://accord.dev/builders/primary", Key: "/etc/accord/primary.key", Engine: "local", Runtime: "runc",
		Variation: engine.DefaultVariation(),
	}, {
		Name: "validator-1", ID: "https://builders.example/v1", Key: "awskms:///alias/v1", Engine: "local", Runtime: "crun",
		Variation: engine.Variation{WorkspaceRoot: "/build/v1", Hostname: "validator-1", Umask: "0077", Timezone: "UTC", EnvOrder: "sorted"},
	}}
	if diff := cmp.Diff(want, s.Builders); diff != "" {
		t.Errorf("builders (-want +got):\n%s", diff)
	}
	if got := s.Differences(s.Builders[1]); !cmp.Equal(got, []string{"runtime", "workspaceRoot", "hostname", "umask"}) {
		t.Errorf("differences = %v", got)
	}
	if b, ok := s.Get("validator-1"); !ok || b.Runtime != "crun" {
		t.Errorf("Get(validator-1) = %v, %v", b, ok)
	}
}

func TestParseErrors(t *testing.T) {
	head := "apiVersion: accord.dev/v1alpha1\nkind: Builders\n"
	cases := []struct {
		name, doc, want string
	}{
		{"kind", "apiVersion: v1\nkind: Policy\nbuilders: []", "field apiVersion: want apiVersion accord.dev/v1alpha1 and kind Builders"},
		{"unknown field", head + "builders:\n- name: a\n  key: k\n  runtim: crun\n", `unknown field "runtim"`},
		{"empty", head + "builders: []\n", "field builders: no builders"},
		{"name", head + "builders:\n- name: Primary_1\n  key: k\n", "field builders[0].name: \"Primary_1\" is not a DNS label"},
		{"dup name", head + "builders:\n- {name: a, key: k1}\n- {name: a, key: k2}\n", "field builders[1].name: \"a\" is also builders[0]"},
		{"dup id", head + "builders:\n- {name: a, key: k1, id: 'https://x/a'}\n- {name: b, key: k2, id: 'https://x/a', runtime: crun, variation: {hostname: b, umask: '0077'}}\n", "field builders[1].id"},
		{"relative id", head + "builders:\n- {name: a, key: k1, id: a}\n", "field builders[0].id: \"a\" is not an absolute URI"},
		{"no key", head + "builders:\n- {name: a}\n", "field builders[0].key: no signing key"},
		{"shared key", head + "builders:\n- {name: a, key: k}\n- {name: b, key: k, runtime: crun, variation: {hostname: b, umask: '0077'}}\n", "one key under two identities counts once"},
		{"engine", head + "builders:\n- {name: a, key: k, engine: docker}\n", "field builders[0].engine: \"docker\""},
		{"tekton", head + "builders:\n- {name: a, key: k, engine: tekton}\n", "tekton engine is not available"},
		{"runtime", head + "builders:\n- {name: a, key: k, runtime: youki}\n", "use runc, crun or runsc"},
		// runsc cannot apply these: a provenance would claim them falsely.
		{"runsc umask", head + "builders:\n- {name: a, key: k}\n- {name: b, key: k2, runtime: runsc, variation: {hostname: b, umask: '0077', timezone: NZST-12}}\n",
			`field builders[1].variation.umask: "0077": runsc starts every step with umask 0022`},
		{"runsc umask 0002", head + "builders:\n- {name: a, key: k, runtime: runsc, variation: {umask: '0002'}}\n",
			`field builders[0].variation.umask: "0002"`},
		{"runsc env order", head + "builders:\n- {name: a, key: k}\n- {name: b, key: k2, runtime: runsc, variation: {hostname: b, envOrder: reversed}}\n",
			`field builders[1].variation.envOrder: "reversed": runsc passes the environment in an order of its own`},
		{"umask", head + "builders:\n- {name: a, key: k, variation: {umask: '999'}}\n", "builders[0].variation: umask \"999\""},
		{"root", head + "builders:\n- {name: a, key: k, variation: {workspaceRoot: /tmp/ws}}\n", "/tmp is the sandbox's own"},
		{"relative root", head + "builders:\n- {name: a, key: k, variation: {workspaceRoot: ws}}\n", "want a clean absolute path"},
		{"uid alone", head + "builders:\n- {name: a, key: k, variation: {uid: 5}}\n", "give both or neither"},
		{"env order", head + "builders:\n- {name: a, key: k, variation: {envOrder: random}}\n", "want sorted or reversed"},
		{"too similar", head + "builders:\n- {name: a, key: k}\n- {name: b, key: k2, variation: {hostname: b}}\n",
			`validator "b" differs from the primary in 1 dimension(s) [hostname], fewer than minDifferences 3`},
		{"min", head + "minDifferences: 9\nbuilders:\n- {name: a, key: k}\n", "field minDifferences: 9"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := builders.Parse("b.yaml", []byte(tc.doc))
			if err == nil {
				t.Fatal("accepted")
			}
			if !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "b.yaml") || !strings.Contains(err.Error(), "fix: ") {
				t.Errorf("error %q\nwant it to name b.yaml, contain %q and a fix", err, tc.want)
			}
		})
	}
}

// TestDefaultValidators checks that the default profiles differ from the
// default primary in at least three dimensions, root or not.
func TestDefaultValidators(t *testing.T) {
	primary := builders.Builder{Name: "primary", Key: "p.key", Runtime: "runc", Variation: engine.DefaultVariation()}
	for _, rt := range []string{"runc", "crun", "runsc"} {
		for i := 1; i <= 4; i++ {
			for _, root := range []bool{true, false} {
				v := builders.Validator(i, rt, root)
				if err := v.Variation.Validate(); err != nil {
					t.Errorf("%s validator %d: %v", rt, i, err)
				}
				if d := builders.Differences(primary, v); len(d) < builders.DefaultMinDifferences {
					t.Errorf("%s validator %d (root %v) differs in %v only", rt, i, root, d)
				}
				// A builders file with it parses (runsc's limits included).
				v.Key = "v.key"
				doc, err := yaml.Marshal(builders.File{APIVersion: "accord.dev/v1alpha1", Kind: "Builders", Builders: []builders.Builder{primary, v}})
				if err != nil {
					t.Fatal(err)
				}
				if _, err := builders.Parse("b.yaml", doc); err != nil {
					t.Errorf("%s validator %d (root %v): %v", rt, i, root, err)
				}
			}
		}
	}
}

func TestParseRunsc(t *testing.T) {
	doc := `
apiVersion: accord.dev/v1alpha1
kind: Builders
builders:
- name: primary
  key: primary.key
- name: gvisor
  key: gvisor.key
  runtime: runsc
  variation: {workspaceRoot: /build/g, hostname: gvisor, umask: "0022", envOrder: sorted}
`
	s, err := builders.Parse("b.yaml", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	b, ok := s.Get("gvisor")
	if !ok || b.Runtime != "runsc" {
		t.Fatalf("Get(gvisor) = %+v, %v", b, ok)
	}
	if diff := cmp.Diff([]string{"runtime", "workspaceRoot", "hostname"}, s.Differences(b)); diff != "" {
		t.Errorf("differences (-want +got):\n%s", diff)
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(good))
	f.Add([]byte("apiVersion: accord.dev/v1alpha1\nkind: Builders\nbuilders:\n- {name: a, key: k, variation: {cpus: -1}}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := builders.Parse("f.yaml", data)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "f.yaml") {
				t.Fatalf("error does not name the file: %v", err)
			}
			return
		}
		if len(s.Builders) == 0 {
			t.Fatal("a set without builders")
		}
		for _, b := range s.Builders {
			if err := b.Variation.Validate(); err != nil {
				t.Fatalf("accepted an invalid variation: %v", err)
			}
		}
	})
}

// TestCheckKeys: one key is one builder, however its files are written. A
// second identity holding the same key material (the same public key
// re-encoded, or the same private key copied, re-encrypted or re-encoded)
// is refused; distinct keys pass.
func TestCheckKeys(t *testing.T) {
	dir := t.TempDir()
	s, err := builders.Parse(filepath.Join(dir, "builders.yaml"), []byte(good))
	if err != nil {
		t.Fatal(err)
	}
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pass := cryptoutils.StaticPasswordFunc([]byte{})
	enc, err := cryptoutils.MarshalPrivateKeyToEncryptedDER(priv, pass)
	if err != nil {
		t.Fatal(err)
	}
	cosignPEM := pem.EncodeToMemory(&pem.Block{Type: string(cryptoutils.EncryptedSigstorePrivateKeyPEMType), Bytes: enc})
	reenc, _ := cryptoutils.MarshalPrivateKeyToEncryptedDER(priv, pass)
	plain, _ := cryptoutils.MarshalPrivateKeyToPEM(priv)
	pubOf := func(t *testing.T, keyPEM []byte) []byte {
		t.Helper()
		p := filepath.Join(t.TempDir(), "k.key")
		if err := os.WriteFile(p, keyPEM, 0o600); err != nil {
			t.Fatal(err)
		}
		sg, err := attest.LoadSigner(context.Background(), p, nil)
		if err != nil {
			t.Fatal(err)
		}
		return sg.PublicKeyPEM()
	}
	pub := pubOf(t, cosignPEM)
	type variant struct {
		name string
		pub  []byte
	}
	same := []variant{
		{"same private key file copied", pubOf(t, cosignPEM)},
		{"private key file with CRLF line ends", pubOf(t, bytes.ReplaceAll(cosignPEM, []byte("\n"), []byte("\r\n")))},
		{"private key file with a comment line", pubOf(t, append([]byte("# primary\n"), cosignPEM...))},
		{"same private key re-encrypted", pubOf(t, pem.EncodeToMemory(&pem.Block{Type: string(cryptoutils.EncryptedSigstorePrivateKeyPEMType), Bytes: reenc}))},
		{"same private key unencrypted PKCS#8", pubOf(t, plain)},
	}
	for _, e := range pemtest.Encodings(t, pub) {
		same = append(same, variant{"public key " + e.Name, e.PEM})
	}
	for _, v := range same {
		t.Run(v.name, func(t *testing.T) {
			err := s.CheckKeys([][]byte{pub, v.pub})
			var be *builders.Error
			if !errors.As(err, &be) || be.Field != "builders[1].key" || !strings.Contains(be.Msg, "same key as builders[0]") {
				t.Errorf("CheckKeys = %v, want builders[1].key: same key as builders[0]", err)
			}
		})
	}
	_, other, err := attest.GenerateKeyPair(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CheckKeys([][]byte{pub, other}); err != nil {
		t.Errorf("distinct keys: %v", err)
	}
	if err := s.CheckKeys([][]byte{pub, nil}); err != nil {
		t.Errorf("a key left out: %v", err)
	}
	if err := s.CheckKeys([][]byte{pub, []byte("garbage")}); err == nil || !strings.Contains(err.Error(), "builders[1].key") {
		t.Errorf("garbage key: %v", err)
	}
}

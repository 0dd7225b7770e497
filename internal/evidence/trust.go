package evidence

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	ggcrv1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/accord-build/accord/attest"
	"github.com/accord-build/accord/internal/builders"
	"github.com/accord-build/accord/internal/store"
	"github.com/accord-build/accord/verify"
)

// Builder is a builder whose provenance is believed: the identity it
// must claim and its public key ([verify.Key]), and where it came from.
type Builder struct {
	verify.Key
	// Name is its name in the builders file ("" from a policy).
	Name string
	// Origin says where it came from (a file, "this validator's key"),
	// for notes and errors.
	Origin string
}

// Sources name where trusted builders come from: a builders file (each
// builder's public key is NAME.pub beside its key file, or the KMS key's
// public half) and a verify policy. The zero value trusts no one.
type Sources struct {
	// BuildersFile is read when it exists, or when BuildersGiven.
	BuildersFile string
	// BuildersGiven says the file was named: it must exist.
	BuildersGiven bool
	// Policy is a verify policy file whose builders are trusted.
	Policy string
}

// Load returns the trusted builders, builders file first, and notes about
// builders of the file that could not be trusted (a key without its
// public half). An unreadable file, or a policy key that is not a public
// key, is an [*InputError].
func (s Sources) Load(ctx context.Context) ([]Builder, []string, error) {
	var out []Builder
	var notes []string
	if s.BuildersFile != "" {
		if _, err := os.Stat(s.BuildersFile); err == nil || s.BuildersGiven {
			set, err := builders.Load(s.BuildersFile)
			if err != nil {
				return nil, nil, inputErr(err)
			}
			for _, b := range set.Builders {
				pem, err := publicKeyOf(ctx, b.Key)
				if err == nil {
					var tb *Builder
					if tb, err = newBuilder(b.ID, b.Name, s.BuildersFile, pem); err == nil {
						out = append(out, *tb)
						continue
					}
				}
				notes = append(notes, fmt.Sprintf("builder %s of %s is not trusted: %v", b.Name, s.BuildersFile, err))
			}
		}
	}
	if s.Policy != "" {
		pol, err := verify.LoadPolicy(s.Policy)
		if err != nil {
			return nil, nil, inputErr(err)
		}
		for i, b := range pol.Builders {
			tb, err := newBuilder(b.ID, "", s.Policy, b.Key)
			if err != nil {
				return nil, nil, inputErr(fmt.Errorf("%s: field builders[%d].key: %w", s.Policy, i, err))
			}
			out = append(out, *tb)
		}
	}
	return out, notes, nil
}

// NewBuilder is the builder id whose public key is pem (PEM), from origin.
func NewBuilder(id, origin string, pem []byte) (*Builder, error) {
	return newBuilder(id, "", origin, pem)
}

func newBuilder(id, name, origin string, pem []byte) (*Builder, error) {
	v, err := attest.LoadVerifier(pem)
	if err != nil {
		return nil, err
	}
	return &Builder{Key: verify.Key{ID: id, Verifier: v}, Name: name, Origin: origin}, nil
}

// publicKeyOf is the public key of a builders file's key: the KMS key's,
// else the PEM file beside the key file (NAME.pub for NAME.key), so that
// checking a builder's provenance never needs its private key.
func publicKeyOf(ctx context.Context, key string) ([]byte, error) {
	if attest.IsKMS(key) {
		s, err := attest.LoadSigner(ctx, key, nil)
		if err != nil {
			return nil, err
		}
		return s.PublicKeyPEM(), nil
	}
	pub := strings.TrimSuffix(key, ".key") + ".pub"
	b, err := os.ReadFile(pub)
	if err != nil {
		return nil, fmt.Errorf("no public key %s beside its key (%v)", pub, err)
	}
	return b, nil
}

// Only keeps the builders that from names: a builder id, or a name (in
// the builders file, or https://accord.dev/builders/NAME). "" keeps all.
func Only(bs []Builder, from string) []Builder {
	if from == "" {
		return bs
	}
	var out []Builder
	for _, b := range bs {
		if b.ID == from || b.Name == from || (!strings.Contains(from, "://") && b.ID == "https://accord.dev/builders/"+from) {
			out = append(out, b)
		}
	}
	return out
}

// IDs lists the distinct identities of bs, in order, comma-separated;
// "none" for none.
func IDs(bs []Builder) string {
	seen := map[string]bool{}
	var ids []string
	for _, b := range bs {
		if !seen[b.ID] {
			seen[b.ID] = true
			ids = append(ids, b.ID)
		}
	}
	if len(ids) == 0 {
		return "none"
	}
	return strings.Join(ids, ", ")
}

// NoTrust is the [*InputError] of a command (what: "rebuild") that reads
// provenance but was given no key to check it with; from is the builder
// it asked for ("" for any).
func NoTrust(what, from string) error {
	who := "any builder"
	if from != "" {
		who = "builder " + from
	}
	return inputErr(fmt.Errorf("%s uses only signed provenance, and no public key of %s is known to check it with\n  fix: give --policy FILE (a verify policy that trusts the builder) or --builders-file FILE listing it with NAME.pub beside its key; --from NAME|ID chooses the builder", what, who))
}

// Trust is the set of builders a command believes, and where its notes
// about skipped provenance go. A nil *Trust believes no one.
type Trust struct {
	Builders []Builder
	// Notes receives "note: ..." lines; nil discards them.
	Notes io.Writer
}

// LoadTrust loads s for a command that reads provenance only for hints:
// a problem is a note on notes, and leaves no builder trusted.
func LoadTrust(ctx context.Context, s Sources, notes io.Writer) *Trust {
	tr := &Trust{Notes: notes}
	bs, ns, err := s.Load(ctx)
	if err != nil {
		ns = append(ns, "no provenance is trusted: "+err.Error())
	}
	for _, n := range ns {
		fmt.Fprintln(tr.notes(), "note: "+n)
	}
	tr.Builders = bs
	return tr
}

func (tr *Trust) notes() io.Writer {
	if tr.Notes == nil {
		return io.Discard
	}
	return tr.Notes
}

// ProvenanceSummary is the stored provenance of the artifact (img, stored
// as h under name) that a trusted builder signed, of builder when given
// (see [Only]); nil when there is none. What it skips is a note.
func (tr *Trust) ProvenanceSummary(ctx context.Context, st store.Store, name string, h ggcrv1.Hash, img ggcrv1.Image, builder string) *attest.Summary {
	if tr == nil || len(tr.Builders) == 0 {
		return nil
	}
	bs := Only(tr.Builders, builder)
	sha, err := ArtifactSHA256(img)
	if err != nil || len(bs) == 0 {
		return nil
	}
	envs, err := Attestations(ctx, st, name, h, attest.SLSAProvenanceV1, tr.notes())
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		fmt.Fprintf(tr.notes(), "note: %s: provenance not readable: %v\n", name, err)
	}
	vps, notes := TrustedProvenance(envs, bs, sha)
	for _, n := range notes {
		fmt.Fprintf(tr.notes(), "note: %s: %s\n", name, n)
	}
	if len(vps) == 0 {
		return nil
	}
	return vps[0].Summary
}

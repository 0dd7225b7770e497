package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	ggcrv1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/spf13/cobra"

	"github.com/accord-build/accord/attest"
	"github.com/accord-build/accord/internal/builders"
	"github.com/accord-build/accord/internal/store"
	"github.com/accord-build/accord/verify"
)

// trustedBuilder is a builder whose provenance accord believes: the
// identity it must claim and the public key its signature must verify
// with, and where that came from (for notes and errors).
type trustedBuilder struct {
	id, name, origin string
	v                signature.Verifier
}

// trustSources name where trusted builders come from: a builders file
// (each builder's public key is NAME.pub beside its key file, or the KMS
// key's public half) and a verify policy.
type trustSources struct {
	buildersFile  string
	buildersGiven bool // the file was named: it must exist
	policy        string
}

// load returns the trusted builders and notes about builders that could
// not be trusted (a key without its public half).
func (ts trustSources) load(ctx context.Context) ([]trustedBuilder, []string, error) {
	var out []trustedBuilder
	var notes []string
	if ts.buildersFile != "" {
		if _, err := os.Stat(ts.buildersFile); err == nil || ts.buildersGiven {
			set, err := builders.Load(ts.buildersFile)
			if err != nil {
				return nil, nil, err
			}
			for _, b := range set.Builders {
				pem, err := publicKeyOf(ctx, b.Key)
				if err == nil {
					var v signature.Verifier
					if v, err = attest.LoadVerifier(pem); err == nil {
						out = append(out, trustedBuilder{id: b.ID, name: b.Name, origin: ts.buildersFile, v: v})
						continue
					}
				}
				notes = append(notes, fmt.Sprintf("builder %s of %s is not trusted: %v", b.Name, ts.buildersFile, err))
			}
		}
	}
	if ts.policy != "" {
		pol, err := verify.LoadPolicy(ts.policy)
		if err != nil {
			return nil, nil, err
		}
		for i, b := range pol.Builders {
			v, err := attest.LoadVerifier(b.Key)
			if err != nil {
				return nil, nil, fmt.Errorf("%s: field builders[%d].key: %w", ts.policy, i, err)
			}
			out = append(out, trustedBuilder{id: b.ID, origin: ts.policy, v: v})
		}
	}
	return out, notes, nil
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

// only keeps the builders that from names: a builder id, or a name (in the
// builders file, or https://accord.dev/builders/NAME).
func only(tb []trustedBuilder, from string) []trustedBuilder {
	if from == "" {
		return tb
	}
	var out []trustedBuilder
	for _, b := range tb {
		if b.id == from || b.name == from || (!strings.Contains(from, "://") && b.id == "https://accord.dev/builders/"+from) {
			out = append(out, b)
		}
	}
	return out
}

// verifiedProvenance is a provenance whose signature verified with a
// trusted builder's key, under that builder's identity.
type verifiedProvenance struct {
	sum  *attest.Summary
	stmt *attest.ParsedStatement
}

// trustedProvenance returns the stored provenances (DSSE envelopes, in
// store order) that verify with one of the trusted builders' keys, claim
// that builder's identity and are about the artifact with this sha256
// (hex; "" skips that check). Every other envelope is skipped with a note
// that says why.
func trustedProvenance(envs [][]byte, tb []trustedBuilder, sha string) ([]verifiedProvenance, []string) {
	var out []verifiedProvenance
	var notes []string
	for i, raw := range envs {
		vp, why := verifyOne(raw, tb)
		if vp != nil && sha != "" && !vp.stmt.HasSubject(sha) {
			vp, why = nil, fmt.Sprintf("signed by %s but about other artifacts, not sha256:%s", vp.sum.BuilderID, sha)
		}
		if vp == nil {
			notes = append(notes, fmt.Sprintf("skipping stored provenance %d: %s", i+1, why))
			continue
		}
		out = append(out, *vp)
	}
	return out, notes
}

func verifyOne(raw []byte, tb []trustedBuilder) (*verifiedProvenance, string) {
	why := "its signature does not verify with the key of any trusted builder (" + idsOf(tb) + ")"
	for _, b := range tb {
		sum, stmt, err := attest.VerifyProvenance(raw, b.id, b.v)
		switch {
		case err == nil:
			return &verifiedProvenance{sum: sum, stmt: stmt}, ""
		case errors.Is(err, attest.ErrOtherBuilder):
			why = err.Error()
		case !errors.Is(err, attest.ErrBadSignature):
			if _, perr := attest.ParseEnvelope(raw); perr != nil {
				return nil, perr.Error()
			}
			why = fmt.Sprintf("signed by %s but unreadable: %v", b.id, err)
		}
	}
	return nil, why
}

func idsOf(tb []trustedBuilder) string {
	seen := map[string]bool{}
	var ids []string
	for _, b := range tb {
		if !seen[b.id] {
			seen[b.id] = true
			ids = append(ids, b.id)
		}
	}
	if len(ids) == 0 {
		return "none"
	}
	return strings.Join(ids, ", ")
}

// errNoTrust is the error of a command that reads provenance but was given
// no key to check it with.
func errNoTrust(what, from string) error {
	who := "any builder"
	if from != "" {
		who = "builder " + from
	}
	return fmt.Errorf("%s uses only signed provenance, and no public key of %s is known to check it with\n  fix: give --policy FILE (a verify policy that trusts the builder) or --builders-file FILE listing it with NAME.pub beside its key; --from NAME|ID chooses the builder", what, who)
}

// trust is the set of builders a command believes, and where its notes
// about skipped provenance go.
type trust struct {
	builders []trustedBuilder
	notes    io.Writer
}

// loadTrust loads ts for a command that reads provenance only for hints:
// a problem is a note, and leaves no builder trusted.
func loadTrust(cmd *cobra.Command, ts trustSources) *trust {
	tr := &trust{notes: cmd.ErrOrStderr()}
	tb, notes, err := ts.load(cmd.Context())
	if err != nil {
		notes = append(notes, "no provenance is trusted: "+err.Error())
	}
	for _, n := range notes {
		fmt.Fprintln(tr.notes, "note: "+n)
	}
	tr.builders = tb
	return tr
}

// ProvenanceSummary is provenanceSummary, for the build service.
func (tr *trust) ProvenanceSummary(ctx context.Context, st store.Store, name string, h ggcrv1.Hash, img ggcrv1.Image, builder string) *attest.Summary {
	return tr.provenanceSummary(ctx, st, name, h, img, builder)
}

// provenanceSummary is the stored provenance of the artifact (img, stored
// as h) that a trusted builder signed, of builder when given; nil when
// there is none.
func (tr *trust) provenanceSummary(ctx context.Context, st store.Store, name string, h ggcrv1.Hash, img ggcrv1.Image, builder string) *attest.Summary {
	if tr == nil || len(tr.builders) == 0 {
		return nil
	}
	tb := only(tr.builders, builder)
	sha, err := artifactSHA256(img)
	if err != nil || len(tb) == 0 {
		return nil
	}
	envs, err := attestations(ctx, st, name, h, attest.SLSAProvenanceV1, tr.notes)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		fmt.Fprintf(tr.notes, "note: %s: provenance not readable: %v\n", name, err)
	}
	vps, notes := trustedProvenance(envs, tb, sha)
	for _, n := range notes {
		fmt.Fprintf(tr.notes, "note: %s: %s\n", name, n)
	}
	if len(vps) == 0 {
		return nil
	}
	return vps[0].sum
}

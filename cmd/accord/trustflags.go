package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/accord-build/accord/verify"
)

// trustFlags say whose signatures 'accord sbom' and 'accord export' accept:
// a public key (--key, repeatable) or a verify policy's builders (--policy).
type trustFlags struct {
	keys   []string
	policy string
}

// AddFlags adds --key and --policy to cmd.
func (f *trustFlags) AddFlags(cmd *cobra.Command) {
	cmd.Flags().StringArrayVar(&f.keys, "key", nil, "builder public key whose signatures are accepted (repeatable; or --policy)")
	cmd.Flags().StringVar(&f.policy, "policy", "", "verify policy whose builders' signatures are accepted (or --key)")
}

// load returns the trusted builders: one is required, nothing stored is
// taken on trust.
func (f *trustFlags) load(verb string) (*verify.Policy, error) {
	switch {
	case len(f.keys) == 0 && f.policy == "":
		return nil, fmt.Errorf("%s needs the key that signed what it outputs: the store is not trusted\n  fix: add --key BUILDER.pub or --policy policy.yaml", verb)
	case len(f.keys) > 0 && f.policy != "":
		return nil, fmt.Errorf("--key and --policy: give one\n  fix: drop --key, or list the key in the policy's builders")
	case f.policy != "":
		return verify.LoadPolicy(f.policy)
	}
	p := &verify.Policy{Threshold: 1}
	for _, k := range f.keys {
		b, err := os.ReadFile(k)
		if err != nil {
			return nil, fmt.Errorf("--key %s: %w\n  fix: give the builder's public key file (NAME.pub)", k, err)
		}
		p.Builders = append(p.Builders, verify.Builder{Key: b})
	}
	return p, nil
}

// keys returns the trusted public keys (PEM).
func trustedKeys(p *verify.Policy) [][]byte {
	var out [][]byte
	for _, b := range p.Builders {
		out = append(out, b.Key)
	}
	return out
}

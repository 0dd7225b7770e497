package main

import (
	"github.com/spf13/cobra"

	"github.com/accord-build/accord/internal/evidence"
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

// load returns the trusted builders ([evidence.KeyPolicy]).
func (f *trustFlags) load(verb string) (*verify.Policy, error) {
	return evidence.KeyPolicy(verb, f.keys, f.policy)
}

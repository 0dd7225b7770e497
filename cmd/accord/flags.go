package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/accord-build/accord/internal/store"
)

// The flag groups that several commands share are declared here once, as
// options structs with AddFlags, so that a flag means the same, with the
// same help, wherever it appears.

// storeOptions is --store and --allow-registry.
type storeOptions struct {
	ref   string
	allow []string
}

// AddFlags declares --store and --allow-registry; what says what the
// command keeps or reads there.
func (o *storeOptions) AddFlags(cmd *cobra.Command, what string) {
	cmd.Flags().StringVar(&o.ref, "store", "", what+": an OCI layout directory or HOST/REPO (default $XDG_DATA_HOME/accord/store)")
	cmd.Flags().StringArrayVar(&o.allow, "allow-registry", nil, "with a registry store: a registry (HOST[:PORT]) where image artifacts go to the repository their name gives, with their signatures and attestations, besides the store's own registry (always allowed); repeatable. Names without a registry or under accord.dev/ stay in the store repository; a name in any other registry is refused")
}

// open opens the store; a bad reference is bad usage.
func (o *storeOptions) open() (store.Store, error) {
	st, err := store.Open(o.ref, store.WithAllowedRegistries(o.allow...))
	if err != nil {
		return nil, usageErr(err)
	}
	return st, nil
}

// outputOptions is -o/--output.
type outputOptions struct {
	format string
}

// AddFlags declares -o/--output.
func (o *outputOptions) AddFlags(cmd *cobra.Command) {
	cmd.Flags().StringVarP(&o.format, "output", "o", "text", "output format: text or json (JSON for machines, on stdout; progress goes to stderr)")
}

// check refuses a format other than text and json.
func (o *outputOptions) check() error {
	if o.format != "text" && o.format != "json" {
		return usageErr(fmt.Errorf("--output %q: use text or json", o.format))
	}
	return nil
}

func (o *outputOptions) json() bool { return o.format == "json" }

// engineOptions are how a builder runs its steps on this machine: the
// flags of every command that builds (run, rebuild).
type engineOptions struct {
	runtime    string
	workDir    string
	timeout    time.Duration
	stepMemory int64
	parallel   int
	keep       bool
	pull       pullOptions
}

// AddFlags declares the engine flags; runtimeDefault and runtimeHelp
// differ between a builder of its own and a validator of a builders file.
func (o *engineOptions) AddFlags(cmd *cobra.Command, runtimeDefault, runtimeHelp string) {
	f := cmd.Flags()
	f.StringVar(&o.runtime, "runtime", runtimeDefault, runtimeHelp)
	f.StringVar(&o.workDir, "workdir", "", "where runs keep their temporary state (default: a directory under $TMPDIR)")
	f.DurationVar(&o.timeout, "timeout", time.Hour, "limit for the whole run")
	f.Int64Var(&o.stepMemory, "step-memory", 4<<30, "memory limit in bytes for steps that set none (runc as root enforces it)")
	f.IntVar(&o.parallel, "parallel", 0, "tasks to run at once (default: number of CPUs)")
	f.BoolVar(&o.keep, "keep", false, "keep workspaces, bundles and step logs after the run, for debugging")
	o.pull.AddFlags(cmd)
}

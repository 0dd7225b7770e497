package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"

	"github.com/accord-build/accord/attest"
	"github.com/accord-build/accord/internal/builders"
	"github.com/accord-build/accord/internal/engine"
	"github.com/accord-build/accord/verify"
)

func defaultBuildersFile() string {
	if f := os.Getenv("ACCORD_BUILDERS"); f != "" {
		return f
	}
	return "builders.yaml"
}

func newBuildersCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "builders",
		Short: "Declare the primary builder and its validators (identity, key, runtime, variation)",
		Long: `A builder is an identity URI, a signing key, an engine and runtime, and a
variation profile. The builders file lists the primary first, then the
validators that rebuild its artifacts ('accord run --builders N',
'accord rebuild --builder NAME'):

  apiVersion: accord.dev/v1alpha1
  kind: Builders
  minDifferences: 3            # each validator changes at least 3 dimensions (default)
  builders:
  - name: primary
    key: primary.key           # cosign key file, relative to this file, or a KMS URI
    runtime: runc
  - name: validator-1
    id: https://builders.example/validator-1   # default https://accord.dev/builders/NAME
    key: validator-1.key
    engine: local
    runtime: crun
    variation:
      workspaceRoot: /build/validator-1   # $(workspaces.NAME.path) moves here
      hostname: validator-1
      uid: 1001                           # steps run as this uid/gid (root runners only; a step's or image's own user wins)
      gid: 1001
      umask: "0077"
      timezone: NPT-5:45                  # TZ: a zone name or a POSIX TZ string
      cpus: 1                             # CPU affinity: nproc and GOMAXPROCS follow
      envOrder: reversed                  # or sorted
  - name: validator-2
    key: validator-2.key
    runtime: runsc                        # gVisor: a user-space kernel (umask and
    variation:                            # envOrder stay at their defaults there)
      workspaceRoot: /build/validator-2
      hostname: validator-2
      timezone: ACST-9:30

The host clock is not varied: Linux cannot shift one container's wall clock
and faketime cannot reach static binaries; validators build at another time
and in another timezone instead. Each validator's profile is recorded in its
provenance (buildDefinition.internalParameters.variation).`,
	}
	var validators int
	var rt string
	var src policySourceFlags
	initCmd := &cobra.Command{
		Use:   "init DIR",
		Short: "Write a builders file, one key pair per builder and a matching verify policy into DIR",
		Long: `Write DIR/builders.yaml (the primary and --validators validators with
default variation profiles), DIR/NAME.key and DIR/NAME.pub for each builder
(cosign format; password from ACCORD_PASSWORD or COSIGN_PASSWORD), and
DIR/policy.yaml trusting all of them with threshold 2 (or 1 for a single
builder), allowing only the catalog's pipelines (their pipeline digests, as
'accord catalog' prints them) and, with --source, only that repository (and
with --ref, only those refs). Existing files are never overwritten.`,
		Example: `  ACCORD_PASSWORD= accord builders init ./builders --validators 2 --source https://example.com/org/app.git --ref main`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if validators < 0 || validators > 9 {
				return usageErr(fmt.Errorf("--validators %d: want 0 to 9", validators))
			}
			if rt == "" {
				rt = "runc"
				if _, err := exec.LookPath("crun"); err == nil {
					rt = "crun"
				}
			}
			if err := src.check(); err != nil {
				return usageErr(err)
			}
			return initBuilders(cmd, args[0], validators, rt, src)
		},
	}
	src.AddFlags(initCmd)
	initCmd.Flags().IntVar(&validators, "validators", 2, "how many validators")
	initCmd.Flags().StringVar(&rt, "validator-runtime", "", "the validators' runtime: runc, crun or runsc (default crun when installed, else runc)")
	var out outputOptions
	check := &cobra.Command{
		Use:   "check FILE",
		Short: "Validate a builders file and show how each validator differs from the primary",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := builders.Load(args[0])
			if err != nil {
				return usageErr(err)
			}
			// Key material is compared when the key files can be opened
			// without a prompt; 'accord run --builders' always compares.
			if _, ok := attest.PasswordFromEnv(); ok {
				if _, err := checkBuilderKeys(cmd.Context(), s, len(s.Builders), false); err != nil {
					return usageErr(err)
				}
			}
			type row struct {
				builders.Builder
				Primary     bool     `json:"primary"`
				Differences []string `json:"differences"`
			}
			var rows []row
			for i, b := range s.Builders {
				rows = append(rows, row{Builder: b, Primary: i == 0, Differences: append([]string{}, s.Differences(b)...)})
			}
			if out.json() {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(map[string]any{"file": args[0], "minDifferences": s.MinDifferences, "builders": rows})
			}
			for _, r := range rows {
				role := "validator"
				if r.Primary {
					role = "primary"
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%-14s %-9s %s  runtime=%s\n", r.Name, role, r.ID, r.Runtime)
				if !r.Primary {
					fmt.Fprintf(cmd.OutOrStdout(), "%14s differs in %d: %s\n", "", len(r.Differences), strings.Join(r.Differences, ", "))
					if c := r.Variation.CPUs; c >= runtime.NumCPU() {
						fmt.Fprintf(cmd.OutOrStdout(), "%14s note: cpus %d has no effect on this host (%d CPUs)\n", "", c, runtime.NumCPU())
					}
				}
			}
			return nil
		},
	}
	out.AddFlags(check)
	cmd.AddCommand(initCmd, check)
	return cmd
}

// policySourceFlags are the source a written policy allows.
type policySourceFlags struct {
	uri  string
	refs []string
}

// AddFlags adds --source and --ref to cmd.
func (f *policySourceFlags) AddFlags(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.uri, "source", "", "the repository the policy allows, as provenance records it (source.uri; default: any)")
	cmd.Flags().StringArrayVar(&f.refs, "ref", nil, "a ref (or glob) of --source the policy allows (repeatable; default: any)")
}

func (f *policySourceFlags) check() error {
	switch {
	case f.uri == "" && len(f.refs) > 0:
		return fmt.Errorf("--ref needs --source\n  fix: give the repository with --source URI")
	case strings.TrimSpace(f.uri) != f.uri || strings.HasPrefix(f.uri, "-"):
		return fmt.Errorf("--source %q: not a repository URI\n  fix: give it as accord run --source was given (https://..., ssh://..., file:///...)", f.uri)
	}
	for _, r := range f.refs {
		if r == "" {
			return fmt.Errorf("--ref: empty\n  fix: give a branch, tag or glob (main, \"v*\")")
		}
	}
	return nil
}

// policy returns the policy's sources list: nil without --source.
func (f *policySourceFlags) policy() []verify.PolicySource {
	if f.uri == "" {
		return nil
	}
	return []verify.PolicySource{{URI: f.uri, Refs: f.refs}}
}

func initBuilders(cmd *cobra.Command, dir string, validators int, runtime string, src policySourceFlags) error {
	pass, err := password(false)
	if err != nil {
		return usageErr(err)
	}
	if len(pass) == 0 {
		fmt.Fprintln(cmd.ErrOrStderr(), "warning: the keys are not encrypted (empty password); keep DIR out of any source tree you build")
	}
	root := os.Geteuid() == 0
	set := []builders.Builder{{Name: "primary", Key: "primary.key", Runtime: "runc"}}
	for i := 1; i <= validators; i++ {
		v := builders.Validator(i, runtime, root)
		v.Key, v.ID, v.Engine = v.Name+".key", "", ""
		set = append(set, v)
	}
	files := []string{"builders.yaml", "policy.yaml"}
	for _, b := range set {
		files = append(files, b.Name+".key", b.Name+".pub")
	}
	for _, f := range files {
		if _, err := os.Stat(filepath.Join(dir, f)); err == nil {
			return usageErr(fmt.Errorf("%s exists; refusing to overwrite it\n  fix: choose another DIR", filepath.Join(dir, f)))
		}
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	var trusted []verify.PolicyBuilder
	for _, b := range set {
		priv, pub, err := attest.GenerateKeyPair(pass)
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, b.Name+".key"), priv, 0o600); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, b.Name+".pub"), pub, 0o644); err != nil {
			return err
		}
		trusted = append(trusted, verify.PolicyBuilder{ID: "https://accord.dev/builders/" + b.Name, Key: b.Name + ".pub"})
	}
	doc := buildersYAML(set, root)
	if err := os.WriteFile(filepath.Join(dir, "builders.yaml"), doc, 0o644); err != nil {
		return err
	}
	threshold := min(2, len(set))
	if err := writeInitPolicy(cmd.Context(), filepath.Join(dir, "policy.yaml"), trusted, threshold, src); err != nil {
		return err
	}
	if _, err := builders.Load(filepath.Join(dir, "builders.yaml")); err != nil {
		return fmt.Errorf("the written builders file does not check (a bug): %w", err)
	}
	fmt.Fprintf(cmd.OutOrStdout(), "wrote %s: builders.yaml (%d builders), policy.yaml (threshold %d), and a key pair per builder\n", dir, len(set), threshold)
	return nil
}

// writeInitPolicy writes the policy of 'builders init' to file: the trusted
// builders, the catalog's pipeline digests and the source of src, if any.
func writeInitPolicy(ctx context.Context, file string, trusted []verify.PolicyBuilder, threshold int, src policySourceFlags) error {
	digests, err := catalogPipelineDigests(ctx)
	if err != nil {
		return err
	}
	pf := verify.PolicyFile{APIVersion: "accord.dev/v1alpha1", Kind: "Policy", Builders: trusted, Threshold: threshold, SBOM: "required", Pipelines: digests, Sources: src.policy()}
	pol, err := yaml.Marshal(pf)
	if err != nil {
		return err
	}
	head := "# accord verify policy ('accord verify --help'). pipelines: the catalog's pipeline digests ('accord catalog').\n"
	if pf.Sources == nil {
		head += "# Add sources to pin the repositories and refs you build ('accord builders init --source URI --ref REF').\n"
	}
	if err := os.WriteFile(file, append([]byte(head), pol...), 0o644); err != nil {
		return err
	}
	if _, err := verify.LoadPolicy(file); err != nil {
		return fmt.Errorf("the written policy does not check (a bug): %w", err)
	}
	return nil
}

// buildersYAML writes a builders file in the documented field order.
func buildersYAML(set []builders.Builder, root bool) []byte {
	var b strings.Builder
	b.WriteString("# accord builders file: the first builder is the primary ('accord builders --help').\n")
	if !root {
		b.WriteString("# Written without root: uid/gid are not varied (a rootless runner owns one host id).\n")
	}
	b.WriteString("apiVersion: accord.dev/v1alpha1\nkind: Builders\nbuilders:\n")
	for _, x := range set {
		fmt.Fprintf(&b, "- name: %s\n  key: %s\n  runtime: %s\n", x.Name, x.Key, x.Runtime)
		v := x.Variation
		if v == (engine.Variation{}) {
			continue
		}
		fmt.Fprintf(&b, "  variation:\n    workspaceRoot: %s\n    hostname: %s\n", v.WorkspaceRoot, v.Hostname)
		if v.UID != 0 {
			fmt.Fprintf(&b, "    uid: %d\n    gid: %d\n", v.UID, v.GID)
		}
		fmt.Fprintf(&b, "    umask: %q\n    timezone: %s\n    cpus: %d\n    envOrder: %s\n", v.Umask, v.Timezone, v.CPUs, v.EnvOrder)
	}
	return []byte(b.String())
}

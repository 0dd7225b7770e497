package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/accord-build/accord/attest"
	"github.com/accord-build/accord/internal/build"
	"github.com/accord-build/accord/internal/divergence"
	"github.com/accord-build/accord/internal/store"
)

func newDiffCmd() *cobra.Command {
	var storeRef, output, key, signerID, policyFile, buildersFile string
	cmd := &cobra.Command{
		Use:   "diff ARTIFACT_A ARTIFACT_B",
		Short: "Explain why two builds of an artifact differ",
		Long: `Unpack both artifacts (OCI images layer by layer, tar, gzip and zip archives,
nested), list every path that differs, and classify each difference:

  timestamp    a date, time or Unix time in the content or an archive header
  build-path   the build's working path embedded in the output
  file-order   an archive lists the same members in another order
  ordering     the same lines in another order (map or hash iteration)
  mode-owner   permission bits, uid/gid or owner names
  toolchain    a compiler or tool version, or different build inputs
  content      anything else
  derived      digests and sizes that differ because what they name differs

Each difference comes with evidence: the differing bytes in context. The
builders' workspace roots, times and inputs are taken from the artifacts'
stored provenance, only where its signature verifies with the key of a
builder that --policy or --builders-file trusts; without either, no
provenance is used (a note says so). When diffoscope is installed (Debian:
diffoscope-minimal) its text diff is added.

An ARTIFACT is a stored name, NAME@sha256:<digest>, or a file. With --key,
the report is signed (predicate type ` + divergence.PredicateType + `)
and stored beside both artifacts.

Exit codes: 0 identical, 1 different, 2 bad input.`,
		Example: `  accord diff app@sha256:1111... app@sha256:2222...
  accord diff out-a.tar.gz out-b.tar.gz -o json`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if output != "text" && output != "json" {
				return usageErr(fmt.Errorf("--output %q: use text or json", output))
			}
			ctx := cmd.Context()
			var st store.Store
			open := func() (store.Store, error) {
				if st == nil {
					s, err := store.Open(storeRef)
					if err != nil {
						return nil, err
					}
					st = s
				}
				return st, nil
			}
			var tr *trust
			if cmd.Flags().Changed("builders-file") || policyFile != "" || fileExists(buildersFile) {
				tr = loadTrust(cmd, trustSources{buildersFile: buildersFile, buildersGiven: cmd.Flags().Changed("builders-file"), policy: policyFile})
			}
			var sides [2]build.Side
			var trees [2]*divergence.Tree
			var sums [2]*attest.Summary
			// Two files are compared under one name (A's), so that their
			// contents line up whatever the files are called.
			root := filepath.Base(args[0])
			for i, arg := range args {
				if data, err := os.ReadFile(arg); err == nil {
					sum := sha256.Sum256(data)
					sides[i] = build.Side{Side: divergence.Side{Name: arg, Digest: "sha256:" + hex.EncodeToString(sum[:])}}
					if trees[i], err = divergence.FromFile(root, data); err != nil {
						return usageErr(err)
					}
					continue
				}
				s, err := open()
				if err != nil {
					return usageErr(err)
				}
				if tr == nil {
					fmt.Fprintln(cmd.ErrOrStderr(), "note: no --policy or --builders-file: the artifacts' provenance is not used (build paths, times and inputs unknown)")
					tr = &trust{notes: cmd.ErrOrStderr()}
				}
				side, tree, sum, err := storedSide(ctx, s, arg, tr)
				if err != nil {
					return usageErr(fmt.Errorf("%s is neither a file nor an artifact in %s: %w", arg, s, err))
				}
				sides[i], trees[i], sums[i] = side, tree, sum
			}
			r := divergence.New(sides[0].Side, sides[1].Side, trees[0], trees[1], build.HintsFrom(sums[0], sums[1]))
			if r.Identical || len(r.Differences) == 0 {
				r.Identical = r.Identical || sides[0].Digest == sides[1].Digest
			} else if os.Getenv("ACCORD_NO_DIFFOSCOPE") == "" {
				var err error
				if r.Diffoscope, err = divergence.RunDiffoscope(ctx, trees[0], trees[1]); err != nil {
					return err
				}
			}
			if key != "" && !r.Identical {
				if sides[0].Stored == "" || sides[1].Stored == "" {
					return usageErr(fmt.Errorf("--key stores the report beside both artifacts: give stored artifacts, not files"))
				}
				signer, err := loadSigner(ctx, key)
				if err != nil {
					return usageErr(err)
				}
				if err := build.StoreDivergence(ctx, st, sides[0], sides[1], r, signer, signerID); err != nil {
					return err
				}
			}
			if output == "json" {
				writeJSON(cmd.OutOrStdout(), r)
			} else {
				r.WriteText(cmd.OutOrStdout())
			}
			if !r.Identical {
				return &exitError{code: exitNotVerified, err: errSilent}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&storeRef, "store", "", "store holding the artifacts (default $XDG_DATA_HOME/accord/store)")
	f.StringVarP(&output, "output", "o", "text", "output format: text or json")
	f.StringVar(&key, "key", "", "sign the report with this key and store it beside both artifacts")
	f.StringVar(&signerID, "builder-id", "https://accord.dev/builders/local", "who reports the divergence (with --key)")
	f.StringVar(&policyFile, "policy", "", "a verify policy: the provenance its builders signed gives the hints")
	f.StringVar(&buildersFile, "builders-file", defaultBuildersFile(), "a builders file: the provenance its builders signed (NAME.pub beside each key) gives the hints (used when it exists)")
	return cmd
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// storedSide resolves and unpacks a stored artifact; its digest is the
// subject digest (a file artifact's is the file's). Its builder and
// summary come from the provenance tr trusts, if any.
func storedSide(ctx context.Context, st store.Store, arg string, tr *trust) (build.Side, *divergence.Tree, *attest.Summary, error) {
	name, h, err := resolveArtifact(ctx, st, arg)
	if err != nil {
		return build.Side{}, nil, nil, err
	}
	img, err := st.Image(ctx, h)
	if err != nil {
		return build.Side{}, nil, nil, err
	}
	digest := h.String()
	if m, err := img.Manifest(); err == nil && string(m.Config.MediaType) == divergence.FileArtifactType && len(m.Layers) == 1 {
		digest = m.Layers[0].Digest.String()
	}
	tree, err := divergence.FromImage(ctx, name, img)
	if err != nil {
		return build.Side{}, nil, nil, err
	}
	sum := tr.provenanceSummary(ctx, st, name, h, img, "")
	side := build.Side{Side: divergence.Side{Name: strings.TrimSuffix(name, "@"+h.String()), Digest: digest}, Stored: h.String()}
	if sum != nil {
		side.Builder = sum.BuilderID
	}
	return side, tree, sum, nil
}

package main

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/accord-build/accord/pipelines"
)

func newCatalogCmd() *cobra.Command {
	var out outputOptions
	cmd := &cobra.Command{
		Use:   "catalog",
		Short: "List the catalog's pipelines and tasks with their digests",
		Long: `List the catalog's pipelines and tasks with their digests.

A pipeline's digest is its pipeline digest: the one its provenance records
(buildDefinition.externalParameters.pipeline.digest), covering the pipeline
and every Task it runs. Copy it into a policy's pipelines list to allow
builds of that pipeline ('accord verify --help'). A task's digest is its
own canonical digest, as listed in resolvedDependencies.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := out.check(); err != nil {
				return err
			}
			entries, err := catalogEntries(cmd.Context())
			if err != nil {
				return err
			}
			if out.json() {
				return json.NewEncoder(cmd.OutOrStdout()).Encode(entries)
			}
			for _, e := range entries {
				net := ""
				if e.Network {
					net = "  (network)"
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%-8s %-18s %s%s\n", e.Kind, e.Name, e.Digest, net)
			}
			return nil
		},
	}
	out.AddFlags(cmd)
	return cmd
}

// catalogEntry is one line of 'accord catalog'.
type catalogEntry struct {
	Kind, Name, Digest, File string
	Network                  bool `json:",omitempty"`
}

// catalogEntries lists the catalog: pipelines by the pipeline digest their
// provenance records, then tasks by their own digest.
func catalogEntries(ctx context.Context) ([]catalogEntry, error) {
	cat, err := pipelines.Builtin(ctx)
	if err != nil {
		return nil, err
	}
	var out []catalogEntry
	for _, d := range cat.Pipelines() {
		r, err := cat.Resolve(ctx, d.Name)
		if err != nil {
			return nil, err
		}
		out = append(out, catalogEntry{d.Kind, d.Name, r.Digest, d.File, false})
	}
	for _, d := range cat.Tasks() {
		out = append(out, catalogEntry{d.Kind, d.Name, d.Digest, d.File, pipelines.NeedsNetwork(d.Task)})
	}
	return out, nil
}

// catalogPipelineDigests returns the pipeline digest of every catalog
// pipeline, sorted by pipeline name.
func catalogPipelineDigests(ctx context.Context) ([]string, error) {
	entries, err := catalogEntries(ctx)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range entries {
		if e.Kind == "Pipeline" {
			out = append(out, e.Digest)
		}
	}
	return out, nil
}

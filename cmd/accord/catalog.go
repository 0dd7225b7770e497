package main

import (
	"encoding/json"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/accord-build/accord/pipelines"
)

func newCatalogCmd() *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "catalog",
		Short: "List the catalog's pipelines and tasks with their digests",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cat, err := pipelines.Builtin(cmd.Context())
			if err != nil {
				return err
			}
			type entry struct {
				Kind, Name, Digest, File string
				Network                  bool `json:",omitempty"`
			}
			var out []entry
			for _, d := range append(cat.Pipelines(), cat.Tasks()...) {
				out = append(out, entry{d.Kind, d.Name, d.Digest, d.File, pipelines.NeedsNetwork(d.Task)})
			}
			if output == "json" {
				return json.NewEncoder(cmd.OutOrStdout()).Encode(out)
			}
			for _, e := range out {
				net := ""
				if e.Network {
					net = "  (network)"
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%-8s %-18s %s%s\n", e.Kind, e.Name, e.Digest, net)
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "text", "output format: text or json")
	return cmd
}

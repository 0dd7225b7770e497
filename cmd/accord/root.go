package main

import (
	"log/slog"
	"os"

	"github.com/spf13/cobra"
)

// version is set at link time (-X main.version=...).
var version = "dev"

func newRootCmd() *cobra.Command {
	var verbose bool
	root := &cobra.Command{
		Use:   "accord",
		Short: "Hermetic, reproducible builds from a policy-controlled catalog of Tekton pipelines",
		Long: `accord runs Tekton pipelines from its catalog with every step in a fresh OCI
container (runc, crun or runsc): no network unless the catalog marks a task as
needing it, inputs pinned by digest, a fixed environment, nothing left behind.
The same source and pipeline give bit-identical artifacts on any builder.

Start with:
  accord doctor                      check this machine's prerequisites
  accord images build                build the catalog's builder images (pinned inputs)
  accord run --source examples/hello run the default pipeline on a directory`,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRun: func(cmd *cobra.Command, _ []string) {
			level := slog.LevelWarn
			if verbose {
				level = slog.LevelDebug
			}
			slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})))
		},
	}
	root.PersistentFlags().BoolVarP(&verbose, "verbose", "v", false, "log debug details to stderr")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageErr(err) })
	root.AddCommand(newRunCmd(), newDoctorCmd(), newImagesCmd(), newVersionCmd(), newCatalogCmd(), newKeysCmd(), newSBOMCmd(), newLayoutCmd(), newExportCmd(), newVerifyCmd(), newRebuildCmd(), newBuildersCmd(), newDiffCmd(), newServeCmd())
	return root
}

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print accord's version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cmd.Println("accord", version)
			return nil
		},
	}
}

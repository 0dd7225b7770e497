package main

import (
	"fmt"
	"log/slog"

	"github.com/spf13/cobra"

	"github.com/accord-build/accord/internal/images"
)

func newImagesCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "images",
		Short: "Build the catalog's builder images from pinned inputs; pull or import other images",
	}
	var so storeOptions
	build := &cobra.Command{
		Use:   "build",
		Short: "Build the Go builder image and put it in the store",
		Long: `Build the Go builder image that the catalog's tasks run, from pinned and
checksummed inputs only:
  - the Go toolchain module ` + images.GoToolchainModule + `@` + images.GoToolchainVersion + `
    (from the Go module proxy, checked against ` + images.GoToolchainSum + `)
  - Debian's ` + images.BusyboxPackage + ` ` + images.BusyboxVersion + ` (sha256 ` + images.BusyboxSHA256[:12] + `...)
  - ocipack, accord's deterministic image packer, compiled with that toolchain
Layers are uncompressed tars with sorted entries, zero times and uid/gid 0,
so the image digest is the same on every machine and equals the digest the
catalog pins. Needs: go, apt-get, dpkg-deb.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			st, err := so.open()
			if err != nil {
				return usageErr(err)
			}
			img, err := images.BuildGo(cmd.Context(), images.Options{Logger: slog.Default()})
			if err != nil {
				return err
			}
			h, err := st.Put(cmd.Context(), images.GoBuilderRef, img)
			if err != nil {
				return fmt.Errorf("storing the Go builder image: %w", err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s@%s\n", images.GoBuilderRef, h)
			return nil
		},
	}
	so.AddFlags(build, "store the images go into")
	cmd.AddCommand(build, newImagesPullCmd(), newImagesImportCmd())
	return cmd
}

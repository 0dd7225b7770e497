package main

import (
	"encoding/json"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/accord-build/accord/internal/pull"
)

// imagesOutput is what images pull and images import print with -o json.
type imagesOutput struct {
	Images []pull.Result `json:"images"`
}

func newImagesPullCmd() *cobra.Command {
	var (
		so  storeOptions
		po  pullOptions
		out outputOptions
		tmp string
	)
	cmd := &cobra.Command{
		Use:   "pull REF@DIGEST...",
		Short: "Fetch pinned images from their registries into the store, for offline runs",
		Long: `Fetch each image by digest from its registry (or first from the mirrors
configured for that registry) into the store, where runs find it without a
network. The manifest must hash to the pinned digest and every layer and the
config to the digests the manifest gives; an image index resolves to this
host's platform (` + pull.HostPlatform().String() + `), and both digests are kept. Nothing
reaches the store until every blob is fetched and checked, so a failed pull
leaves the store as it was. Credentials come from the Docker config
($DOCKER_CONFIG/config.json, default ~/.docker/config.json). An image the
store has is not fetched again.

accord run pulls the step images the store lacks the same way, before the
first step runs; this command is for machines that run offline later.`,
		Example: `  accord images pull docker.io/library/golang@sha256:...
  accord images pull --registry-mirror docker.io=registry.internal:5000/hub docker.io/library/golang@sha256:...`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := out.check(); err != nil {
				return err
			}
			st, err := so.open()
			if err != nil {
				return err
			}
			p, err := po.puller(cmd.ErrOrStderr(), tmp)
			if err != nil {
				return err
			}
			var res imagesOutput
			for _, ref := range args {
				r, err := p.Pull(cmd.Context(), ref, st)
				if err != nil {
					return err
				}
				res.Images = append(res.Images, *r)
			}
			return printImages(cmd.OutOrStdout(), out, res, st.String())
		},
	}
	so.AddFlags(cmd, "store the images go into")
	po.AddFlags(cmd)
	out.AddFlags(cmd)
	cmd.Flags().StringVar(&tmp, "tmpdir", "", "where pulls are staged until verified (default $TMPDIR)")
	return cmd
}

func newImagesImportCmd() *cobra.Command {
	var (
		so  storeOptions
		out outputOptions
		tmp string
	)
	cmd := &cobra.Command{
		Use:   "import FILE...",
		Short: "Put images from an OCI layout or a docker save tarball into the store",
		Long: `Put the images of each FILE into the store: an OCI image layout (a directory,
or a tar of one, optionally gzipped: skopeo copy ... oci-archive:FILE, docker
save of Docker 25 and later, crane pull --format oci), or a docker save
tarball (manifest.json). An index resolves to this host's platform
(` + pull.HostPlatform().String() + `). Every blob is checked against its digest before
anything is stored; a failed import leaves the store as it was.

An OCI layout keeps the registry's digests, so a step pinned to
REPO@DIGEST finds the imported image. A docker save tarball without an OCI
layout keeps no manifest: accord gives its image a manifest of its own
(uncompressed layers, the tarball's config as it is), the same for the same
tarball on every machine; pin the digest this command prints.`,
		Example: `  accord images import golang.oci.tar
  docker save busybox:1.36 -o busybox.tar && accord images import busybox.tar -o json`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := out.check(); err != nil {
				return err
			}
			st, err := so.open()
			if err != nil {
				return err
			}
			p := pull.New(pull.WithTempDir(tmp))
			var res imagesOutput
			for _, f := range args {
				rs, err := p.Import(cmd.Context(), f, st)
				if err != nil {
					return err
				}
				res.Images = append(res.Images, rs...)
			}
			return printImages(cmd.OutOrStdout(), out, res, st.String())
		},
	}
	so.AddFlags(cmd, "store the images go into")
	out.AddFlags(cmd)
	cmd.Flags().StringVar(&tmp, "tmpdir", "", "where tarballs are unpacked until verified (default $TMPDIR)")
	return cmd
}

// printImages prints what a pull or an import stored.
func printImages(w io.Writer, out outputOptions, res imagesOutput, store string) error {
	if out.json() {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(res)
	}
	for _, r := range res.Images {
		verb := "stored"
		if r.Cached {
			verb = "already in the store:"
		}
		fmt.Fprintf(w, "%s %s\n", verb, r.Ref)
		if r.Index {
			fmt.Fprintf(w, "  index, resolved to %s %s\n", r.Platform, r.Manifest)
		} else {
			fmt.Fprintf(w, "  image %s\n", r.Platform)
		}
		fmt.Fprintf(w, "  %d layers, %s", r.Layers, sizeText(r.Size))
		if r.Source != "" {
			fmt.Fprintf(w, ", from %s", r.Source)
		}
		fmt.Fprintf(w, ", in %s\n", store)
	}
	return nil
}

func sizeText(n int64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

package main

import (
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/accord-build/accord/internal/pull"
)

// pullOptions is --registry-mirror: how step images the store lacks are
// fetched from their registries.
type pullOptions struct {
	mirrors []string
}

// AddFlags declares --registry-mirror.
func (o *pullOptions) AddFlags(cmd *cobra.Command) {
	cmd.Flags().StringArrayVar(&o.mirrors, "registry-mirror", nil,
		"FROM=TO: fetch images of registry FROM (e.g. docker.io) from TO (HOST[:PORT][/PATH], http://... for plain HTTP) first, then from FROM; repeatable (default $"+pull.MirrorsEnv+", comma-separated)")
}

// puller is the puller these options describe: mirrors from the flags,
// else from $ACCORD_REGISTRY_MIRRORS; credentials from the Docker config;
// staging under tempDir (default $TMPDIR); a line per layer to progress.
func (o *pullOptions) puller(progress io.Writer, tempDir string) (*pull.Puller, error) {
	var ms pull.Mirrors
	if len(o.mirrors) > 0 {
		for _, s := range o.mirrors {
			m, err := pull.ParseMirror(s)
			if err != nil {
				return nil, usageErr(fmt.Errorf("--registry-mirror: %w", err))
			}
			ms = append(ms, m)
		}
	} else {
		var err error
		if ms, err = pull.ParseMirrors(os.Getenv(pull.MirrorsEnv)); err != nil {
			return nil, usageErr(fmt.Errorf("$%s: %w", pull.MirrorsEnv, err))
		}
	}
	return pull.New(pull.WithMirrors(ms), pull.WithTempDir(tempDir), pull.WithProgress(progress)), nil
}

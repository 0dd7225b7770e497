// Command accord is the supply-chain hermetic build orchestrator: it runs
// catalog Tekton pipelines with every step in a fresh, network-less OCI
// container, so that the same source and pipeline give bit-identical
// artifacts.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/accord-build/accord/internal/startup"
)

// Exit codes (see DESIGN.md's CLI contract).
const (
	exitOK          = 0
	exitNotVerified = 1
	exitUsage       = 2
	exitBuildFailed = 3
)

// exitError carries an exit code through cobra.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func usageErr(err error) error { return &exitError{code: exitUsage, err: err} }

func main() {
	startup.Done()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cmd := newRootCmd()
	err := cmd.ExecuteContext(ctx)
	if err == nil {
		return
	}
	code := exitUsage
	var ee *exitError
	if errors.As(err, &ee) {
		code = ee.code
	}
	if !errors.Is(err, errSilent) {
		fmt.Fprintln(os.Stderr, "accord:", err)
	}
	os.Exit(code)
}

// errSilent marks an error already reported to the user.
var errSilent = errors.New("reported")

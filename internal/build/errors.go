package build

import "errors"

// Exit codes of accord's CLI contract; reports carry them (exitCode in
// JSON) so that every front end tells the same outcome the same way.
const (
	ExitOK          = 0
	ExitNotVerified = 1
	ExitUsage       = 2
	ExitBuildFailed = 3
)

// InputError is a request that cannot be built as given: a bad pipeline,
// param, source, runtime or key. Its message names what to fix.
type InputError struct{ Err error }

func (e *InputError) Error() string { return e.Err.Error() }
func (e *InputError) Unwrap() error { return e.Err }

// RunError is a build that could not run to the end for a reason that is
// not the request's: a missing runtime, an engine failure.
type RunError struct{ Err error }

func (e *RunError) Error() string { return e.Err.Error() }
func (e *RunError) Unwrap() error { return e.Err }

func inputErr(err error) error {
	if err == nil {
		return nil
	}
	var ie *InputError
	if errors.As(err, &ie) {
		return err
	}
	return &InputError{Err: err}
}

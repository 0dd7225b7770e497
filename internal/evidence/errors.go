package evidence

import "errors"

// InputError is an error in what the caller gave: an artifact that is not
// in the store, a key, builders or policy file that cannot be used, no
// key to trust anything with. Its text is Err's; front ends map it to
// "bad usage or input".
type InputError struct{ Err error }

func (e *InputError) Error() string { return e.Err.Error() }
func (e *InputError) Unwrap() error { return e.Err }

// inputErr marks err as the caller's; nil stays nil.
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

// IsInput reports whether err is, or wraps, an [*InputError].
func IsInput(err error) bool {
	var ie *InputError
	return errors.As(err, &ie)
}

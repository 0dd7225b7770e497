package pipelines

// Option configures loading.
type Option func(*options)

type options struct {
	allowUnpinned bool
}

// WithAllowUnpinned accepts step images that are not pinned by digest.
// Default: refused. The caller should record that it was used.
func WithAllowUnpinned(allow bool) Option {
	return func(o *options) { o.allowUnpinned = allow }
}

func makeOptions(opts []Option) *options {
	o := &options{}
	for _, opt := range opts {
		opt(o)
	}
	return o
}

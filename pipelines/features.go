package pipelines

import (
	"context"

	"github.com/tektoncd/pipeline/pkg/apis/config"
)

// tektonContext is ctx with the Tekton configuration accord loads
// definitions with. accord has no feature flags: what it supports is on
// for every definition. Today that is CEL in when expressions (Tekton's
// enable-cel-in-whenexpression, off by default there); matrix is a beta
// field, which Tekton's default enable-api-fields ("beta") already allows.
// Everything else (the matrix combinations limit of 256, ...) stays at
// Tekton's defaults or at what ctx already carries.
func tektonContext(ctx context.Context) context.Context {
	cfg := *config.FromContextOrDefaults(ctx) // a copy: never change the caller's
	if cfg.FeatureFlags == nil {
		cfg.FeatureFlags = config.DefaultFeatureFlags.DeepCopy()
	}
	cfg.FeatureFlags = cfg.FeatureFlags.DeepCopy()
	cfg.FeatureFlags.EnableCELInWhenExpression = true
	return config.ToContext(ctx, &cfg)
}

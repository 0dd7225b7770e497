// Package pipelines is accord's policy-controlled catalog of Tekton Tasks and
// Pipelines, and the code that loads them.
//
// Definitions are YAML under catalog/ (embedded in the binary) or in a file
// given by the user. They are decoded with Tekton's own Go types
// (tekton.dev/v1, or tekton.dev/v1beta1 through Tekton's conversion),
// defaulted and validated with Tekton's SetDefaults and Validate, checked
// for fields accord's engines cannot honour, and refused when a step image
// is not pinned by digest. StepActions (tekton.dev/v1beta1, or v1alpha1
// converted) that steps reference by name (ref: {name: ...}) come from the
// same file or the catalog; resolvers are refused. Each definition gets a
// canonical digest, and a resolved pipeline a digest over itself and every
// task and StepAction it uses.
package pipelines

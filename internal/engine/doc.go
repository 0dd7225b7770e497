// Package engine defines the executor seam: a [Build] goes in, a [Result]
// comes out, whichever engine (local runc/crun, or Tekton on Kubernetes)
// runs it. It also reads Tekton Chains' type hints from task results, so
// every engine reports artifacts the same way.
//
// # What an engine implements
//
// An engine is an [Executor]. Nothing above the seam (artifact collection,
// proof recording, the build service, the CLI) knows where a run's
// workspaces live or names an engine's package for anything but
// constructing it:
//
//   - Run runs the pipeline with Tekton's semantics and returns one
//     [TaskResult] per task. Bad input (params, workspace bindings, images,
//     variation) is an [*InputError] (front ends map it to a usage error);
//     a task that fails is a Result with Succeeded false, not an error.
//     With [Build.RecordArtifacts], every step's [StepResult] carries what
//     its in-toto link needs: Command, Materials and Products (every file
//     of the task's workspaces before and after the step, keyed
//     "<pipeline workspace>[/<subPath>]/<path>", so keys are the same on
//     every builder), and the digests of its output.
//   - [TaskResult.Workspaces] gives, for each mount path in the task's
//     containers, an [io/fs.FS] of the tree mounted there as the run left
//     it. Readers open announced artifacts (files, OCI layouts) and Go
//     module caches through it, by the container paths tasks announce.
//     A step wrote these trees, so each FS must keep every name inside its
//     workspace: a symbolic link may lead elsewhere in the workspace, never
//     out of it (to a file of the engine's host, another volume, a device),
//     not even through a subPath directory a later step replaced with a
//     link; Open must not block on a FIFO or device, so that a reader can
//     Stat what it opened before it reads; errors name paths relative to
//     the FS. Readers still refuse anything but regular files. The trees
//     stay readable until Cleanup.
//   - Cleanup(ctx, b) releases what the run of b holds (workspaces,
//     containers, scratch space) unless the engine was told to keep it.
//     Callers call it once after reading the result, also when Run failed,
//     with a context that is not cancelled by the end of the run.
//   - ExpectedCommand ([StepCommands]) tells, before any run, the command
//     line the engine runs for a step of a task spec, exactly as the step's
//     link will record it: the in-toto layout (accord layout) expects it,
//     and layouts already signed must keep matching, so an engine never
//     changes what it returns for a step.
//
// # The local engine
//
// Package local runs each step in a fresh OCI container on this host. Its
// workspaces are host directories; each Workspaces FS is the bind's subPath
// beneath its pipeline workspace's directory, resolved inside it by the
// kernel (package beneath, [os.Root]). A script step runs as
// /tekton/scripts/script-<i> with its args, a command step as its command
// and args; for an image entrypoint it expects nothing. Its bad-input
// error, local.InputError, is [InputError].
//
// # A cluster engine (Tekton)
//
// A Tekton engine would create a PipelineRun whose workspaces are volumes
// in the cluster and wait for it; each task's steps are preceded and
// followed by an accord-owned recorder step that hashes the task's
// workspaces (Materials, Products) and writes them, with the step's exit
// code and output digests, where only the controller reads them. Run maps
// admission or validation refusals (unknown params, unbound workspaces,
// unpinned images) to [*InputError]. Workspaces would be an FS per mount
// served from the volume, by the recorder or a reader pod that resolves
// names beneath the workspace root as the local engine does, or from an
// archive of the workspace it uploaded, checked against its Products
// digests; either way the controller never mounts the volume. Cleanup
// deletes the PipelineRun, its pods and its volume claims. ExpectedCommand
// returns the command the recorder writes into the link: Tekton runs a
// script as /tekton/scripts/script-<i>-<random suffix>, so the recorder
// records the script's path without the suffix (or the engine returns nil
// and in-toto only warns); the same step must give the same command on
// every run.
package engine

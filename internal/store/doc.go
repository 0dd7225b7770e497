// Package store keeps build outputs (images, file artifacts) and builder
// images, in an OCI image layout directory (the default) or in any OCI
// registry.
//
// Layout writes are atomic: blobs are written to a temporary file, checked
// against their digest and renamed into place, and index.json is replaced
// by rename under an exclusive lock, so an interrupted write leaves the
// index as it was (at worst an unreferenced blob).
//
// # Where a registry store puts an image
//
// An image artifact named REGISTRY/REPO[:TAG] goes to REGISTRY/REPO, and
// its signatures, attestations and links beside it there by cosign's
// conventions (REGISTRY/REPO:sha256-<hex>.sig, .att, .links), when
// REGISTRY is the store's own registry or one [WithAllowedRegistries]
// allows; a name without a registry or under [AccordNamespace] stays in
// the store's repository, and a name in any other registry is refused
// ([*RegistryError], [CheckName]). [Name] gives the repository of a name,
// [For] the store as seen from it, [Reference] the pullable reference.
// A layout store keeps every name in its one directory.
//
// # Concurrency
//
// [Attach] reads what is attached under a ref, adds layers and writes the
// result; builders that agree on a digest attach to the same ref at the
// same time. What each store guarantees:
//
//   - Layout: every change of index.json (creating it, [Layout.Put], and
//     Attach's lookup, compose and put as one step) holds the store's
//     lock, a mutex of the [Layout] and flock of the file .lock in the
//     directory. Attaches from goroutines, from several Layouts of one
//     directory and from several processes on one host take turns, and
//     none loses another's layers. (flock does not hold across hosts on
//     every network file system: share a layout directory on one host.)
//   - Registry: attaches to one tag from one process take turns (one lock
//     per tag, for every [Registry] of the process). A registry has no lock
//     and no conditional write, so against other processes Attach checks
//     its write: it reads the tag back right away and again after a wait,
//     and writes again, on top of what the tag then holds, every layer it
//     added or saw that a writer who had not seen it overwrote. Manifests
//     accord writes name the manifest they were composed from
//     ([BaseAnnotation]), so a layer another writer's replace func dropped
//     on purpose is not put back. After 8 writes that were
//     all overwritten, Attach fails with [ErrAttachContended]. A writer
//     that read the tag before this call's write and writes it only after
//     this call's last check can still drop its layers: the wait (twice
//     the time the write took, from 50 ms to 2 s) makes that window
//     small, not empty.
//   - Other [Store]s: attaches take turns within the process only.
package store

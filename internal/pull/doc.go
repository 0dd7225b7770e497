// Package pull fetches pinned step images (REGISTRY/REPO@sha256:...) from
// their registries, or from configured mirrors, into accord's store, and
// imports images from files (an OCI layout, as a directory or a tarball,
// or a `docker save` tarball) for machines without a registry.
//
// Every pull is by digest and checked: the manifest's bytes must hash to
// the pinned digest, every layer and the config to the digests the
// manifest gives; an image index resolves to the host platform's image
// (linux/amd64 on most builders) and both digests are kept. A pull writes
// into a staging directory first and reaches the store only when every
// blob was fetched and verified, so a failed pull leaves the store as it
// was. Pulls run on the host, never in a sandbox.
//
// Credentials come from the Docker config keychain ($DOCKER_CONFIG or
// ~/.docker/config.json, with its credential helpers).
package pull

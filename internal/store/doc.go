// Package store keeps build outputs (images, file artifacts) and builder
// images, in an OCI image layout directory (the default) or in any OCI
// registry.
//
// Layout writes are atomic: blobs are written to a temporary file, checked
// against their digest and renamed into place, and index.json is replaced
// by rename under an exclusive lock, so an interrupted write leaves the
// index as it was (at worst an unreferenced blob).
package store

// Package images builds accord's builder images from pinned, checksummed
// inputs into deterministic layers, so that "pinned by digest" means the same
// bytes on every machine, with no registry involved.
package images

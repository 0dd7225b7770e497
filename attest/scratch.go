package attest

import "os"

// ScratchDir makes a new directory for files that in-toto-golang reads
// only from disk (a layout, link files), size bytes in all, to be removed
// by the caller. Unless $TMPDIR names a place, a few MB at most go to the
// memory filesystem /dev/shm when there is one, everything else to
// [os.TempDir]: a verification writes and deletes a few dozen small
// files, and on a journaling disk filesystem creating and deleting them
// costs more than checking them (about 9 ms against 3 ms for 37 files).
func ScratchDir(pattern string, size int64) (string, error) {
	if size <= scratchMemMax && os.Getenv("TMPDIR") == "" {
		if d, err := os.MkdirTemp(memTemp, pattern); err == nil {
			return d, nil
		}
	}
	return os.MkdirTemp("", pattern)
}

// memTemp is the memory filesystem ScratchDir prefers, and scratchMemMax
// the most it writes there (a container's /dev/shm may be small).
var (
	memTemp       = "/dev/shm"
	scratchMemMax = int64(4 << 20)
)

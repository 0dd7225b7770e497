package hashtree

import "syscall"

// nofollow makes opening a path that became a symlink after the walk fail
// rather than follow it.
const nofollow = syscall.O_NOFOLLOW

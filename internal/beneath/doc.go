// Package beneath opens paths beneath a directory the caller holds open,
// one component at a time, never following a symbolic link in any of them
// (openat with O_NOFOLLOW): a link a build step planted in a workspace
// cannot make the host create, chown, read or bind anything outside it,
// and a link swapped in while accord works cannot either, since each
// component is opened from the descriptor of the one before.
//
// [FS] is the weaker, read-only form for readers of what a run left: a
// file system confined to a directory, in which links may lead elsewhere
// inside it but never out.
package beneath

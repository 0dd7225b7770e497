// Package startup switches the garbage collector off while the packages of
// a command initialise, and back on when the command starts.
//
// accord links Tekton, Kubernetes and sigstore, whose package init
// allocates a few MB: with the default GOGC that is three collections
// before main runs, about a quarter of the CPU a start-up costs (measured
// with GODEBUG=gctrace=1 and GOGC=off: 26-31 ms against 34-43 ms for
// `accord --help`). Everything allocated there stays live anyway.
//
// Import it blank, first, from package main, and call [Done] at the top of
// main, and in TestMain of the package's tests (a test binary never runs
// main, so without it its collector would stay off). Its only dependency is runtime/debug, and Go initialises packages
// in import-path order among those whose imports are done, so its init
// runs before those of the heavy dependencies.
package startup

import "runtime/debug"

var percent = 100

func init() { percent = debug.SetGCPercent(-1) }

// Done restores the collector's setting (GOGC, or 100), as it was before
// init switched it off. Call it once, at the start of main.
func Done() { debug.SetGCPercent(percent) }

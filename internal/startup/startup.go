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
// main, so without it its collector would stay off). It imports only the
// standard library's runtime, os and sync (which runtime/debug needs
// anyway), and Go initialises packages in import-path order among those
// whose imports are done, so its init runs before those of the heavy
// dependencies.
package startup

import (
	"os"
	"runtime"
	"runtime/debug"
	"sync"
)

var percent = 100

// restore is the setting the first collection after Done restores
// (percent, unless a command chose its own with PreferGCPercent), and
// whether it has.
var restore struct {
	sync.Mutex
	percent   int
	preferred bool // percent is PreferGCPercent's
	restored  bool
}

func init() { percent = debug.SetGCPercent(-1) }

// firstPercent is the collector's setting until its first collection
// after init. Restored at once, GOGC=100 would start a collection as main
// starts (its first goal, 4 MB, lies below the 8 MB init leaves, half of
// it live), which costs a short command like verify about 3 ms of CPU and
// frees almost nothing; 400 puts the first collection off until the heap
// reaches 16 MB, and then restores the setting.
const firstPercent = 400

// Done restores the collector's setting (GOGC, or 100), as it was before
// init switched it off: after the first collection, which is put off
// until the heap has doubled (see firstPercent). Call it once, at the
// start of main.
func Done() {
	restore.Lock()
	defer restore.Unlock()
	if !restore.preferred {
		restore.percent = percent
	}
	restore.restored = false
	if percent < 0 || percent >= firstPercent {
		restore.restored = true
		debug.SetGCPercent(restore.percent)
		return
	}
	debug.SetGCPercent(firstPercent)
	sentinel := new([64]byte)
	runtime.AddCleanup(sentinel, func(struct{}) {
		restore.Lock()
		defer restore.Unlock()
		restore.restored = true
		debug.SetGCPercent(restore.percent)
	}, struct{}{})
}

// PreferGCPercent makes p the collector's setting unless the environment
// sets GOGC: at once if the first collection after Done has restored the
// setting, else when it does (so that it does not put GOGC's default
// back over p); called before Done, when Done restores it. A command
// whose heap is small and churns fast (accord serve) calls it.
func PreferGCPercent(p int) {
	if _, set := os.LookupEnv("GOGC"); set {
		return
	}
	restore.Lock()
	defer restore.Unlock()
	restore.percent, restore.preferred = p, true
	if restore.restored {
		debug.SetGCPercent(p)
	}
}

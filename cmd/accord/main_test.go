package main

import (
	"os"
	"testing"

	"github.com/accord-build/accord/internal/startup"
)

// runMainEnv set to 1 makes the test binary run accord's main instead of
// the tests: the serve tests start it as 'accord serve' in a child process.
const runMainEnv = "ACCORD_TEST_RUN_MAIN"

// TestMain turns the garbage collector back on, as main does: package
// startup switches it off while packages initialise, and a test binary
// never runs main.
func TestMain(m *testing.M) {
	if os.Getenv(runMainEnv) == "1" {
		main()
		os.Exit(0)
	}
	startup.Done()
	os.Exit(m.Run())
}

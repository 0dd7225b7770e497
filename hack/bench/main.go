// Command bench measures accord against peer tools side by side, in one
// run, alternating rounds so that machine noise hits every contender alike,
// and prints a markdown table with medians and ratios.
//
//	go run ./hack/bench hash DIR            accord hashtree vs sha256sum (all cores) vs in-toto-golang run
//	go run ./hack/bench sbom BIN...         accord SBOM vs syft, with module-set comparison
//
// Peer tools come from the environment (ACCORD_INTOTO, ACCORD_SYFT), as
// hack/bench/run.sh sets them.
package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"time"

	"github.com/accord-build/accord/internal/hashtree"
	"github.com/accord-build/accord/sbom"
)

const rounds = 5

func main() {
	if len(os.Args) < 3 {
		fmt.Fprintln(os.Stderr, "usage: bench hash DIR | bench sbom BIN...")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "hash":
		err = benchHash(os.Args[2])
	case "sbom":
		err = benchSBOM(os.Args[2:])
	default:
		err = fmt.Errorf("unknown benchmark %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

type contender struct {
	name string
	run  func() error
}

// measure runs each contender once per round, in turn, and returns the
// median wall time of each.
func measure(cs []contender) (map[string]time.Duration, error) {
	times := map[string][]time.Duration{}
	for r := 0; r < rounds; r++ {
		for _, c := range cs {
			start := time.Now()
			if err := c.run(); err != nil {
				return nil, fmt.Errorf("%s: %w", c.name, err)
			}
			times[c.name] = append(times[c.name], time.Since(start))
		}
	}
	med := map[string]time.Duration{}
	for n, ts := range times {
		sort.Slice(ts, func(i, j int) bool { return ts[i] < ts[j] })
		med[n] = ts[len(ts)/2]
	}
	return med, nil
}

func sh(name string, args ...string) func() error {
	return func() error {
		cmd := exec.Command(name, args...)
		var stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = nil, &stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("%v: %s", err, stderr.String())
		}
		return nil
	}
}

func benchHash(dir string) error {
	files, err := hashtree.Tree(dir, hashtree.Options{})
	if err != nil {
		return err
	}
	intoto := os.Getenv("ACCORD_INTOTO")
	work, err := os.MkdirTemp("", "bench-hash-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	key := filepath.Join(work, "key.pem")
	if out, err := exec.Command("openssl", "genpkey", "-algorithm", "ed25519", "-out", key).CombinedOutput(); err != nil {
		return fmt.Errorf("openssl: %v %s", err, out)
	}
	cs := []contender{
		{"accord hashtree", func() error { _, err := hashtree.Tree(dir, hashtree.Options{}); return err }},
		{"sha256sum, all cores", sh("sh", "-c", fmt.Sprintf("find %q -type f -print0 | xargs -0 -P%d -n 256 sha256sum > /dev/null", dir, runtime.NumCPU()))},
	}
	if intoto != "" {
		cs = append(cs, contender{"in-toto-golang run", sh(intoto, "run", "-n", "bench", "-k", key, "-m", dir, "-d", work, "-x")})
	}
	med, err := measure(cs)
	if err != nil {
		return err
	}
	fmt.Printf("Hashing %d files (%s), median of %d rounds, %d cores:\n\n", len(files), dir, rounds, runtime.NumCPU())
	fmt.Println("| tool | median | accord speed-up |")
	fmt.Println("|---|---|---|")
	base := med["accord hashtree"]
	for _, c := range cs {
		fmt.Printf("| %s | %s | %.2fx |\n", c.name, med[c.name].Round(time.Millisecond), float64(med[c.name])/float64(base))
	}
	return nil
}

func benchSBOM(bins []string) error {
	syft := os.Getenv("ACCORD_SYFT")
	if syft == "" {
		return fmt.Errorf("ACCORD_SYFT is not set (hack/bench/run.sh builds syft)")
	}
	fmt.Println("| binary | size | accord | syft | accord speed-up | same Go modules |")
	fmt.Println("|---|---|---|---|---|---|")
	for _, bin := range bins {
		b, err := os.ReadFile(bin)
		if err != nil {
			return err
		}
		cs := []contender{
			{"accord", func() error {
				doc, err := sbom.FromGoBinary(filepath.Base(bin), b, sbom.Options{})
				if err != nil {
					return err
				}
				_, err = sbom.JSON(doc)
				return err
			}},
			{"syft", func() error {
				cmd := exec.Command(syft, "scan", "file:"+bin, "-o", "spdx-json", "-q")
				cmd.Env = append(os.Environ(), "SYFT_CHECK_FOR_APP_UPDATE=false")
				return cmd.Run()
			}},
		}
		med, err := measure(cs)
		if err != nil {
			return err
		}
		same, err := sameModules(syft, bin, b)
		if err != nil {
			return err
		}
		fmt.Printf("| %s | %.1f MB | %s | %s | %.1fx | %s |\n", filepath.Base(bin), float64(len(b))/1e6,
			med["accord"].Round(time.Millisecond), med["syft"].Round(time.Millisecond), float64(med["syft"])/float64(med["accord"]), same)
	}
	return nil
}

// sameModules compares the Go module sets (path@version) both tools report.
func sameModules(syft, bin string, b []byte) (string, error) {
	doc, err := sbom.FromGoBinary(filepath.Base(bin), b, sbom.Options{})
	if err != nil {
		return "", err
	}
	ours := map[string]bool{}
	for _, p := range doc.Packages {
		for _, r := range p.PackageExternalReferences {
			if strings.HasPrefix(r.Locator, "pkg:golang/") && p.PackageName != "stdlib" && p.PackageVersion != "" && p.PackageVersion != "(devel)" {
				ours[p.PackageName+"@"+p.PackageVersion] = true
			}
		}
	}
	cmd := exec.Command(syft, "scan", "file:"+bin, "-o", "syft-json", "-q")
	cmd.Env = append(os.Environ(), "SYFT_CHECK_FOR_APP_UPDATE=false")
	out, err := cmd.Output()
	if err != nil {
		return "", err
	}
	var s struct {
		Artifacts []struct {
			Name, Version, Type string
		}
	}
	if err := json.Unmarshal(out, &s); err != nil {
		return "", err
	}
	theirs := map[string]bool{}
	for _, a := range s.Artifacts {
		// syft labels a main module built from a directory "UNKNOWN"
		// where Go's build info (and accord) say "(devel)".
		if a.Type == "go-module" && a.Name != "stdlib" && a.Version != "" && a.Version != "(devel)" && a.Version != "UNKNOWN" {
			theirs[a.Name+"@"+a.Version] = true
		}
	}
	var onlyUs, onlyThem int
	for m := range ours {
		if !theirs[m] {
			onlyUs++
		}
	}
	for m := range theirs {
		if !ours[m] {
			onlyThem++
		}
	}
	if onlyUs == 0 && onlyThem == 0 {
		return fmt.Sprintf("yes (%d)", len(ours)), nil
	}
	return fmt.Sprintf("no: %d only in accord, %d only in syft", onlyUs, onlyThem), nil
}

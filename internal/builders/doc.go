// Package builders reads the builders file: the primary builder and the
// validators that rebuild its artifacts, each an identity, a signing key, an
// engine, a runtime and a variation profile (see [engine.Variation]).
//
//	apiVersion: accord.dev/v1alpha1
//	kind: Builders
//	minDifferences: 3          # each validator differs from the primary in at least this many dimensions
//	builders:
//	- name: primary            # the first builder is the primary
//	  key: primary.key         # cosign key file (relative to this file) or KMS URI
//	  runtime: runc
//	- name: validator-1
//	  id: https://builders.example/validator-1   # default https://accord.dev/builders/NAME
//	  key: validator-1.key
//	  engine: local
//	  runtime: crun
//	  variation:
//	    workspaceRoot: /build/validator-1
//	    hostname: validator-1
//	    uid: 1000
//	    gid: 1000
//	    umask: "0077"
//	    timezone: NPT-5:45
//	    cpus: 1
//	    envOrder: reversed
//	- name: validator-2
//	  key: validator-2.key
//	  runtime: runsc           # gVisor: another kernel; umask 0022 and its own environment order
//	  variation:
//	    workspaceRoot: /build/validator-2
//	    hostname: validator-2
//	    timezone: ACST-9:30
package builders

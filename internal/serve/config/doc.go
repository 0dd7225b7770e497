// Package config reads the configuration file of 'accord serve': the
// server's address, state directory, webhook secrets, GitHub connection,
// and for each repository its catalog pipeline, params, builders and
// verify policy. Errors name the file, the field and the fix.
package config

package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/accord-build/accord/attest"
)

func newKeysCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "keys", Short: "Manage signing keys (cosign-compatible)"}
	gen := &cobra.Command{
		Use:   "generate NAME",
		Short: "Write NAME.key (encrypted) and NAME.pub, in cosign's format",
		Long: `Generate an ECDSA P-256 key pair in the format of 'cosign generate-key-pair':
NAME.key is the PKCS#8 private key encrypted with scrypt + secretbox (PEM
"ENCRYPTED SIGSTORE PRIVATE KEY"), NAME.pub the public key. cosign reads both,
and accord reads keys made by cosign.

The password comes from ACCORD_PASSWORD or COSIGN_PASSWORD (empty is allowed),
else it is asked for on the terminal. Existing files are never overwritten.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			priv, pub := args[0]+".key", args[0]+".pub"
			for _, f := range []string{priv, pub} {
				if _, err := os.Stat(f); err == nil {
					return usageErr(fmt.Errorf("%s exists; refusing to overwrite it\n  fix: choose another NAME or remove the old key pair", f))
				}
			}
			pass, err := password(true)
			if err != nil {
				return usageErr(err)
			}
			privPEM, pubPEM, err := attest.GenerateKeyPair(pass)
			if err != nil {
				return err
			}
			if err := os.WriteFile(priv, privPEM, 0o600); err != nil {
				return err
			}
			if err := os.WriteFile(pub, pubPEM, 0o644); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Private key written to %s\nPublic key written to %s\n", priv, pub)
			return nil
		},
	}
	cmd.AddCommand(gen)
	return cmd
}

// password reads the key password from the environment, else from the
// terminal (twice when confirm).
func password(confirm bool) ([]byte, error) {
	if p, ok := attest.PasswordFromEnv(); ok {
		return p, nil
	}
	if !term.IsTerminal(int(os.Stdin.Fd())) {
		return nil, errors.New("no key password: set ACCORD_PASSWORD (or COSIGN_PASSWORD), or run on a terminal to be asked")
	}
	fmt.Fprint(os.Stderr, "Enter password for private key: ")
	p, err := term.ReadPassword(int(os.Stdin.Fd()))
	fmt.Fprintln(os.Stderr)
	if err != nil {
		return nil, err
	}
	if confirm {
		fmt.Fprint(os.Stderr, "Enter password for private key again: ")
		q, err := term.ReadPassword(int(os.Stdin.Fd()))
		fmt.Fprintln(os.Stderr)
		if err != nil {
			return nil, err
		}
		if !bytes.Equal(p, q) {
			return nil, errors.New("passwords do not match")
		}
	}
	return p, nil
}

func loadSigner(ctx context.Context, ref string) (*attest.Signer, error) {
	if attest.IsKMS(ref) {
		return attest.LoadSigner(ctx, ref, nil)
	}
	return attest.LoadSigner(ctx, ref, func() ([]byte, error) { return password(false) })
}

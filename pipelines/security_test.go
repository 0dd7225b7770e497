package pipelines

import (
	"context"
	"errors"
	"strings"
	"testing"
)

// TestSecurityContext: who a step runs as (runAsUser, runAsGroup,
// runAsNonRoot, and the harmless falses) loads; every other
// securityContext field is refused by name with its reason.
func TestSecurityContext(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name, sc, field, why string
	}{
		{name: "runAsUser", sc: "{runAsUser: 65532}"},
		{name: "runAsUser and runAsGroup", sc: "{runAsUser: 1000, runAsGroup: 1000}"},
		{name: "runAsNonRoot", sc: "{runAsNonRoot: true, runAsUser: 65532}"},
		{name: "the catalog's hardening falses", sc: "{allowPrivilegeEscalation: false, privileged: false, readOnlyRootFilesystem: false}"},
		{name: "privileged", sc: "{privileged: true}", field: "privileged", why: "privileged steps"},
		{name: "privilege escalation", sc: "{allowPrivilegeEscalation: true}", field: "allowPrivilegeEscalation", why: "no_new_privs"},
		{name: "added capabilities", sc: "{capabilities: {add: [NET_ADMIN]}}", field: "capabilities", why: "capabilities"},
		{name: "dropped capabilities", sc: "{capabilities: {drop: [ALL]}}", field: "capabilities", why: "capabilities"},
		{name: "procMount", sc: "{procMount: Unmasked}", field: "procMount", why: "/proc"},
		{name: "seLinuxOptions", sc: "{seLinuxOptions: {level: 's0:c1'}}", field: "seLinuxOptions", why: "SELinux"},
		{name: "appArmorProfile", sc: "{appArmorProfile: {type: Unconfined}}", field: "appArmorProfile", why: "AppArmor"},
		{name: "seccompProfile", sc: "{seccompProfile: {type: Unconfined}}", field: "seccompProfile", why: "seccomp"},
		{name: "windowsOptions", sc: "{windowsOptions: {runAsUserName: x}}", field: "windowsOptions", why: "Windows"},
		{name: "readOnlyRootFilesystem", sc: "{readOnlyRootFilesystem: true}", field: "readOnlyRootFilesystem", why: "writable layer"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, where := range []struct{ spec, step, field string }{
				{"", "      securityContext: " + tc.sc + "\n", "spec.steps[0].securityContext."},
				{"  stepTemplate:\n    securityContext: " + tc.sc + "\n", "", "spec.stepTemplate.securityContext."},
			} {
				_, err := Parse(ctx, "t.yaml", []byte(task(where.spec, where.step)))
				if tc.field == "" {
					if err != nil {
						t.Errorf("refused: %v", err)
					}
					continue
				}
				var pe *Error
				if !errors.As(err, &pe) {
					t.Fatalf("error %v, want a field error", err)
				}
				if want := where.field + tc.field; pe.Field != want || !strings.Contains(pe.Msg, tc.why) {
					t.Errorf("error on %q (%s), want %q with %q", pe.Field, pe.Msg, want, tc.why)
				}
			}
		})
	}
}

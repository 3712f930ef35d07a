package localcluster

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// ToolsDirEnv names the folder holding the server binaries built by
// `make tools` (etcd, kube-apiserver, kube-controller-manager, coredns).
const ToolsDirEnv = "MCS_TOOLS_DIR"

// Binaries this package runs.
const (
	EtcdBinary              = "etcd"
	APIServerBinary         = "kube-apiserver"
	ControllerManagerBinary = "kube-controller-manager"
	CoreDNSBinary           = "coredns"
	// ToxiproxyBinary is Toxiproxy's server, for Options.FarAway.
	ToxiproxyBinary = "toxiproxy-server"
)

// ToolsDir returns the folder of server binaries: $MCS_TOOLS_DIR, else the
// repository's git-ignored .cache/bin.
func ToolsDir() string {
	if dir := os.Getenv(ToolsDirEnv); dir != "" {
		return dir
	}
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", ".cache", "bin")
}

// CheckTools reports which of the local clusters' servers are missing
// from dir, with the fix.
func CheckTools(dir string) error {
	if err := checkBinaries(dir, []string{EtcdBinary, APIServerBinary, ControllerManagerBinary, CoreDNSBinary}); err != nil {
		return fmt.Errorf("test servers: %w", err)
	}
	return nil
}

// RequireToolsEnv, when set, makes a test that cannot find its tools fail
// instead of skip. The Makefile sets it for `make test` and `make e2e`,
// which build the tools first, and CI's MCS_REQUIRE_DATAPLANE implies it:
// there a missing binary is a broken build, never a reason to pass. A plain
// `go test ./...` on a fresh clone (no .cache/bin) skips those tests and
// says to run `make tools`, whatever MCS_TOOLS_DIR names.
const RequireToolsEnv = "MCS_REQUIRE_TOOLS"

// ToolsRequired says whether missing tools are a failure (see
// RequireToolsEnv).
func ToolsRequired() bool {
	return os.Getenv(RequireToolsEnv) != "" || os.Getenv("MCS_REQUIRE_DATAPLANE") != ""
}

// NeedTools returns the tools folder when it holds binaries (the local
// clusters' servers when none are named). Otherwise the test skips, or
// fails where ToolsRequired, with a message naming what is missing and
// `make tools`.
func NeedTools(t testing.TB, binaries ...string) string {
	t.Helper()
	dir := ToolsDir()
	err := CheckTools(dir)
	if len(binaries) > 0 {
		err = checkBinaries(dir, binaries)
	}
	if err == nil {
		return dir
	}
	if ToolsRequired() {
		t.Fatalf("%v; %s is set, so this is a failure, not a skip", err, RequireToolsEnv)
	}
	t.Skipf("skipped: %v", err)
	return ""
}

func checkBinaries(dir string, names []string) error {
	var missing []string
	for _, name := range names {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("tools %v not found in %s (run `make tools`, or set %s)", missing, dir, ToolsDirEnv)
	}
	return nil
}

// CheckFarAwayTools reports whether toxiproxy-server, which Options.FarAway
// needs, is missing from dir, with the fix.
func CheckFarAwayTools(dir string) error {
	if _, err := os.Stat(filepath.Join(dir, ToxiproxyBinary)); err != nil {
		return fmt.Errorf("%s not found in %s (run `make tools`)", ToxiproxyBinary, dir)
	}
	return nil
}

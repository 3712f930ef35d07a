package localcluster

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
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

// CheckTools reports which binaries are missing from dir, with the fix.
func CheckTools(dir string) error {
	var missing []string
	for _, name := range []string{EtcdBinary, APIServerBinary, ControllerManagerBinary, CoreDNSBinary} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("test servers %v not found in %s (run `make tools`)", missing, dir)
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

// Package version holds the build identity of kubectl-mcs. The Makefile
// stamps Version and GitCommit with -ldflags -X at build time; a plain
// `go install` falls back to the module version Go records in the binary.
package version

import (
	"runtime"
	"runtime/debug"
)

// Stamped at build time: -X github.com/kubectl-mcs/kubectl-mcs/pkg/version.Version=v0.1.0
var (
	Version   = ""
	GitCommit = ""
)

// Info is what `kubectl mcs version` prints.
type Info struct {
	Version   string `json:"version"`
	GitCommit string `json:"gitCommit"`
	GoVersion string `json:"goVersion"`
	Platform  string `json:"platform"`
}

// Get returns the stamped build identity, filled in from the Go build info
// where the Makefile did not stamp it (go install ...@version).
func Get() Info {
	info := Info{
		Version:   Version,
		GitCommit: GitCommit,
		GoVersion: runtime.Version(),
		Platform:  runtime.GOOS + "/" + runtime.GOARCH,
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		if info.Version == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			info.Version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && info.GitCommit == "" {
				info.GitCommit = s.Value
			}
		}
	}
	if info.Version == "" {
		info.Version = "v0.0.0-dev"
	}
	if info.GitCommit == "" {
		info.GitCommit = "unknown"
	}
	return info
}

// Command krew-manifest renders the krew Plugin manifest of kubectl mcs from
// its template and the release archives of hack/dist.sh: one platform per
// archive found for the version, each with the archive's sha256 computed
// here, from the bytes krew will download.
//
//	go run ./hack/krew-manifest -dist dist -version v0.1.0 -out krew-manifest/mcs.yaml
package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/template"
)

// releaseURL is where the GitHub release of a version serves its archives;
// {version} and {archive} are filled in per platform.
const releaseURL = "https://github.com/kubectl-mcs/kubectl-mcs/releases/download/{version}/{archive}"

// platform is one archive of the release, as the template sees it.
type platform struct {
	OS, Arch       string
	URI, SHA256    string
	Binary         string
	CompletionShim string
}

func main() {
	var (
		distDir  = flag.String("dist", "dist", "folder holding the kubectl-mcs_<version>_<os>_<arch>.tar.gz archives")
		version  = flag.String("version", "", "plugin version (a semantic version with a leading v, e.g. v0.1.0)")
		tmplPath = flag.String("template", "krew-manifest/mcs.yaml.tmpl", "manifest template")
		outPath  = flag.String("out", "krew-manifest/mcs.yaml", "where to write the manifest")
		uriFmt   = flag.String("uri", releaseURL, "download URI of each archive; {version} and {archive} are replaced")
	)
	flag.Parse()
	if err := run(*distDir, *version, *tmplPath, *outPath, *uriFmt); err != nil {
		fmt.Fprintln(os.Stderr, "krew-manifest:", err)
		os.Exit(1)
	}
}

func run(distDir, version, tmplPath, outPath, uriFmt string) error {
	if !strings.HasPrefix(version, "v") {
		return fmt.Errorf("-version %q: krew wants a semantic version with a leading v", version)
	}
	platforms, err := findPlatforms(distDir, version, uriFmt)
	if err != nil {
		return err
	}
	tmpl, err := template.New(filepath.Base(tmplPath)).Option("missingkey=error").ParseFiles(tmplPath)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	if err := tmpl.Execute(&buf, map[string]any{"Version": version, "Platforms": platforms}); err != nil {
		return err
	}
	if err := os.WriteFile(outPath, buf.Bytes(), 0o644); err != nil {
		return err
	}
	fmt.Printf("krew-manifest: wrote %s (%s, %d platforms)\n", outPath, version, len(platforms))
	return nil
}

// findPlatforms hashes every archive of the version, in the order of the
// names (so the manifest does not change with the directory listing).
func findPlatforms(distDir, version, uriFmt string) ([]platform, error) {
	prefix := "kubectl-mcs_" + version + "_"
	archives, err := filepath.Glob(filepath.Join(distDir, prefix+"*.tar.gz"))
	if err != nil {
		return nil, err
	}
	if len(archives) == 0 {
		return nil, fmt.Errorf("no %s*.tar.gz in %s (run `make dist` first, with the same VERSION)", prefix, distDir)
	}
	var out []platform
	for _, path := range archives {
		name := filepath.Base(path)
		osArch := strings.TrimSuffix(strings.TrimPrefix(name, prefix), ".tar.gz")
		goos, arch, ok := strings.Cut(osArch, "_")
		if !ok || goos == "" || arch == "" {
			return nil, fmt.Errorf("%s: expected %s<os>_<arch>.tar.gz", name, prefix)
		}
		sum, err := sha256File(path)
		if err != nil {
			return nil, err
		}
		p := platform{
			OS: goos, Arch: arch, SHA256: sum,
			URI:            strings.NewReplacer("{version}", version, "{archive}", name).Replace(uriFmt),
			Binary:         "kubectl-mcs",
			CompletionShim: "kubectl_complete-mcs",
		}
		if goos == "windows" {
			p.Binary, p.CompletionShim = "kubectl-mcs.exe", "kubectl_complete-mcs.cmd"
		}
		out = append(out, p)
	}
	return out, nil
}

func sha256File(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", errors.Join(fmt.Errorf("hashing %s", path), err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

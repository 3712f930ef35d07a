// Package dist tests what users install, with the real tools: the release
// archive of hack/dist.sh, the krew manifest rendered from it, krew's own
// manifest validator and installer (sigs.k8s.io/krew v0.4.3), and kubectl
// (k8s.io/kubectl at the Kubernetes version of the test clusters) finding,
// running and completing the installed plugin; and the k9s plugins file:
// against the command tree, against the keys k9s binds itself, and in a
// real k9s (github.com/derailed/k9s v0.51.0) driven through tmux. `make
// tools` builds kubectl, krew and k9s.
package dist

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/kubectl-mcs/kubectl-mcs/test/localcluster"
)

// The build identity the test stamps, to find it again in `kubectl mcs
// version`. A pre-release, so that krew's semver parsing is exercised.
const (
	testVersion = "v0.9.0-disttest.1"
	testCommit  = "0123456789abcdef0123456789abcdef01234567"
)

// installation is a release archive of the host's platform, installed by
// krew, with kubectl on PATH.
type installation struct {
	repo, distDir, archive, manifest string
	tools                            string
	krewRoot                         string
	// env runs kubectl and krew: PATH holds KREW_ROOT/bin, then kubectl and
	// kubectl-krew, then the system's (for sh, which the completion shim
	// and krew's validator use).
	env []string
}

func TestKrewInstallsThePluginAndKubectlRunsIt(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a release archive and runs krew and kubectl (not in -short mode)")
	}
	in := prepare(t)

	t.Run("archive", in.checkArchive)
	t.Run("krew validator, structure", func(t *testing.T) {
		in.run(t, filepath.Join(in.tools, "validate-krew-manifest"), "-manifest", in.manifest, "-skip-install")
	})
	t.Run("krew validator, installing every platform", in.validateWithInstall)
	t.Run("krew install", func(t *testing.T) {
		in.run(t, "kubectl", "krew", "install", "--manifest="+in.manifest, "--archive="+in.archive)
		store := filepath.Join(in.krewRoot, "store", "mcs", testVersion)
		for _, name := range []string{"kubectl-mcs", "LICENSE", "kubectl_complete-mcs"} {
			if _, err := os.Stat(filepath.Join(store, name)); err != nil {
				t.Errorf("krew did not install %s: %v", name, err)
			}
		}
		if target, err := os.Readlink(filepath.Join(in.krewRoot, "bin", "kubectl-mcs")); err != nil || target != filepath.Join(store, "kubectl-mcs") {
			t.Errorf("KREW_ROOT/bin/kubectl-mcs links to %q (%v), want the stored binary", target, err)
		}
	})
	t.Run("kubectl finds the plugin", func(t *testing.T) {
		out := in.run(t, "kubectl", "plugin", "list")
		if !strings.Contains(out, filepath.Join(in.krewRoot, "bin", "kubectl-mcs")) {
			t.Errorf("kubectl plugin list does not show KREW_ROOT/bin/kubectl-mcs:\n%s", out)
		}
	})
	t.Run("kubectl mcs version", func(t *testing.T) {
		out := in.run(t, "kubectl", "mcs", "version")
		want := "kubectl-mcs " + testVersion + " (commit " + testCommit + ", "
		if !strings.HasPrefix(out, want) || !strings.Contains(out, runtime.GOOS+"/"+runtime.GOARCH) {
			t.Errorf("kubectl mcs version printed %q, want %q... %s/%s", out, want, runtime.GOOS, runtime.GOARCH)
		}
		var info struct{ Version, GitCommit string }
		if err := json.Unmarshal([]byte(in.run(t, "kubectl", "mcs", "version", "-o", "json")), &info); err != nil {
			t.Fatal(err)
		}
		if info.Version != testVersion || info.GitCommit != testCommit {
			t.Errorf("version -o json: %+v", info)
		}
	})
	t.Run("kubectl completes the plugin", in.checkKubectlCompletion)
}

// prepare builds the archive for the host platform into a temporary dist
// folder and renders the manifest from it, as `make dist krew-manifest` do
// for every platform.
func prepare(t *testing.T) *installation {
	t.Helper()
	tools := localcluster.NeedTools(t, "kubectl", "krew", "validate-krew-manifest")
	in := &installation{repo: repoRoot(t), distDir: t.TempDir(), tools: tools, krewRoot: t.TempDir()}
	bin := t.TempDir()
	for link, target := range map[string]string{"kubectl": "kubectl", "kubectl-krew": "krew"} {
		if err := os.Symlink(filepath.Join(in.tools, target), filepath.Join(bin, link)); err != nil {
			t.Fatal(err)
		}
	}
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(kubeconfig, []byte(completionKubeconfig), 0o600); err != nil {
		t.Fatal(err)
	}
	// A HOME of their own keeps kubectl and krew away from the user's
	// ~/.kube and ~/.krew.
	home := t.TempDir()
	in.env = append(os.Environ(),
		"PATH="+strings.Join([]string{filepath.Join(in.krewRoot, "bin"), bin, os.Getenv("PATH")}, string(os.PathListSeparator)),
		"KREW_ROOT="+in.krewRoot,
		"KREW_NO_UPGRADE_CHECK=1",
		"KUBECONFIG="+kubeconfig,
		"HOME="+home,
	)

	// Built with the caller's environment: its HOME holds the Go build and
	// module caches.
	dist := exec.Command(filepath.Join(in.repo, "hack", "dist.sh"), in.distDir, testVersion, testCommit, runtime.GOOS+"/"+runtime.GOARCH)
	if out, err := dist.CombinedOutput(); err != nil {
		t.Fatalf("hack/dist.sh: %v\n%s", err, out)
	}
	in.archive = filepath.Join(in.distDir, "kubectl-mcs_"+testVersion+"_"+runtime.GOOS+"_"+runtime.GOARCH+".tar.gz")
	in.manifest = filepath.Join(in.distDir, "mcs.yaml")
	in.renderManifest(t, in.manifest, "")
	return in
}

// renderManifest runs hack/krew-manifest on the dist folder; uri, if set,
// replaces the GitHub release download URI.
func (in *installation) renderManifest(t *testing.T, out, uri string) {
	t.Helper()
	args := []string{"run", "./hack/krew-manifest", "-dist", in.distDir, "-version", testVersion,
		"-template", filepath.Join(in.repo, "krew-manifest", "mcs.yaml.tmpl"), "-out", out}
	if uri != "" {
		args = append(args, "-uri", uri)
	}
	c := exec.Command("go", args...)
	c.Dir = in.repo
	if b, err := c.CombinedOutput(); err != nil {
		t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, b)
	}
}

// run runs a program with the installation's environment and returns its
// standard output; a failure ends the test with everything it printed.
func (in *installation) run(t *testing.T, name string, args ...string) string {
	t.Helper()
	c := exec.Command(name, args...)
	c.Dir = in.repo
	c.Env = in.env
	var stdout, stderr strings.Builder
	c.Stdout, c.Stderr = &stdout, &stderr
	if err := c.Run(); err != nil {
		t.Fatalf("%s %s: %v\nstdout:\n%s\nstderr:\n%s", filepath.Base(name), strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String()
}

// checkArchive: the sha256 list matches, and the archive holds exactly the
// binary, the license and the completion shim, executable where needed.
func (in *installation) checkArchive(t *testing.T) {
	data, err := os.ReadFile(in.archive)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	list, err := os.ReadFile(filepath.Join(in.distDir, "sha256sums.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if want := hex.EncodeToString(sum[:]) + "  " + filepath.Base(in.archive) + "\n"; string(list) != want {
		t.Errorf("sha256sums.txt:\n%s\nwant:\n%s", list, want)
	}
	modes := map[string]int64{}
	gz, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(gz)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		modes[hdr.Name] = hdr.Mode
	}
	want := map[string]int64{"kubectl-mcs": 0o755, "LICENSE": 0o644, "kubectl_complete-mcs": 0o755}
	if len(modes) != len(want) {
		t.Errorf("archive holds %v, want %v", modes, want)
	}
	for name, mode := range want {
		if got, ok := modes[name]; !ok || got != mode {
			t.Errorf("%s: mode %o (present: %v), want %o", name, got, ok, mode)
		}
	}
}

// validateWithInstall runs krew's validator without -skip-install: it
// installs every platform of the manifest with `kubectl krew install`
// into a fresh KREW_ROOT, downloading from the manifest's URI, and checks
// that a license file came with it. The archives are served over HTTP from
// the dist folder by a manifest rendered with that URI.
func (in *installation) validateWithInstall(t *testing.T) {
	server := httptest.NewServer(http.FileServer(http.Dir(in.distDir)))
	defer server.Close()
	served := filepath.Join(t.TempDir(), "mcs.yaml") // the validator wants <plugin>.yaml
	in.renderManifest(t, served, server.URL+"/{archive}")
	out := in.runCombined(t, filepath.Join(in.tools, "validate-krew-manifest"), "-manifest", served)
	if !strings.Contains(out, "spec.platforms installed fine") {
		t.Errorf("validate-krew-manifest did not install the platforms:\n%s", out)
	}
}

func (in *installation) runCombined(t *testing.T, name string, args ...string) string {
	t.Helper()
	c := exec.Command(name, args...)
	c.Env = in.env
	out, err := c.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", filepath.Base(name), strings.Join(args, " "), err, out)
	}
	return string(out)
}

// completionKubeconfig has contexts only: kubectl and the plugin never
// contact its cluster to complete a context.
const completionKubeconfig = `apiVersion: v1
kind: Config
current-context: east
clusters:
- name: unused
  cluster:
    server: https://127.0.0.1:1
contexts:
- name: east
  context:
    cluster: unused
- name: west
  context:
    cluster: unused
users: []
`

// checkKubectlCompletion follows docs/completion.md: copy the shipped
// kubectl_complete-mcs onto PATH next to the plugin, and kubectl's own
// completion (`kubectl __complete`, what its shell scripts call) completes
// the plugin's verbs and flag values.
func (in *installation) checkKubectlCompletion(t *testing.T) {
	shim := filepath.Join(in.krewRoot, "store", "mcs", testVersion, "kubectl_complete-mcs")
	data, err := os.ReadFile(shim)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(in.krewRoot, "bin", "kubectl_complete-mcs"), data, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"mcs", ""}, []string{"completion", "crds", "export", "import", "status", "unexport", "version"}},
		{[]string{"mcs", "ex"}, []string{"export"}},
		{[]string{"mcs", "export", "--context", ""}, []string{"east", "west"}},
		{[]string{"mcs", "import", "--from", "west,"}, []string{"west,east"}},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			out := in.run(t, "kubectl", append([]string{"__complete"}, tc.args...)...)
			var got []string
			for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
				if line != "" && !strings.HasPrefix(line, ":") {
					name, _, _ := strings.Cut(line, "\t")
					got = append(got, name)
				}
			}
			for _, want := range tc.want {
				if !slices.Contains(got, want) {
					t.Errorf("kubectl __complete %s: %q not among %q", strings.Join(tc.args, " "), want, got)
				}
			}
			if len(tc.want) == 1 && len(got) != 1 {
				t.Errorf("kubectl __complete %s: %q, want only %q", strings.Join(tc.args, " "), got, tc.want)
			}
		})
	}
}

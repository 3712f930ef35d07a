// Package toolsbuild tests what test/tools/build.sh builds for a choice of
// groups, with a stand-in for the go command that records each build
// instead of compiling (the real builds take many minutes; `make tools`
// runs them).
package toolsbuild

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// fakeGo answers `go version` and, for `go build -o DIR/ PKG...`, logs the
// module folder and packages and creates one executable per package, named
// as go build names it (the last path element; "." is the module folder),
// or, for `go build -o FILE PKG`, FILE.
const fakeGo = `#!/usr/bin/env bash
if [[ $1 == version ]]; then echo "go version go1.26.0 linux/amd64"; exit 0; fi
[[ $1 == build ]] || exit 3
out= pkgs=() prev=
for a in "${@:2}"; do
	if [[ $prev == -o ]]; then out=$a
	elif [[ $prev != -ldflags && $a != -* ]]; then pkgs+=("$a"); fi
	prev=$a
done
echo "$(basename "$PWD") ${pkgs[*]}" >>"$GO_LOG"
if [[ $out != */ ]]; then touch "$out" && chmod +x "$out"; exit 0; fi
for p in "${pkgs[@]}"; do
	name=${p##*/}; [[ $p == . ]] && name=$(basename "$PWD")
	touch "$out$name" && chmod +x "$out$name"
done
`

func run(t *testing.T, env []string, args ...string) (string, error) {
	t.Helper()
	script, err := filepath.Abs(filepath.Join("..", "tools", "build.sh"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("bash", append([]string{script}, args...)...)
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func builds(t *testing.T, log string) []string {
	t.Helper()
	b, err := os.ReadFile(log)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	os.Remove(log)
	return strings.Split(strings.TrimSpace(string(b)), "\n")
}

func TestBuildGroups(t *testing.T) {
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("needs bash")
	}
	bin, out := t.TempDir(), t.TempDir()
	if err := os.WriteFile(filepath.Join(bin, "go"), []byte(fakeGo), 0o755); err != nil {
		t.Fatal(err)
	}
	log := filepath.Join(t.TempDir(), "go.log")
	env := append(os.Environ(), "PATH="+bin+":"+os.Getenv("PATH"), "GO_LOG="+log)

	// What make demo builds: the servers and kube-proxy, the Kubernetes
	// binaries in one go build, CoreDNS in its own module.
	if o, err := run(t, env, out, "servers", "proxy"); err != nil {
		t.Fatalf("build.sh servers proxy: %v\n%s", err, o)
	}
	want := []string{
		"tools ./cmd/etcd k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager k8s.io/kubernetes/cmd/kube-proxy",
		"coredns .",
	}
	if got := builds(t, log); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("servers proxy built:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	for _, name := range []string{"etcd", "kube-apiserver", "kube-controller-manager", "kube-proxy", "coredns"} {
		if _, err := os.Stat(filepath.Join(out, name)); err != nil {
			t.Errorf("no %s after building servers and proxy: %v", name, err)
		}
	}
	if _, err := os.Stat(filepath.Join(out, "k9s")); err == nil {
		t.Error("k9s was built for servers and proxy")
	}

	// Again: up to date, nothing built.
	if o, err := run(t, env, out, "servers", "proxy"); err != nil || !strings.Contains(o, "servers up to date") {
		t.Fatalf("second build.sh servers proxy: %v\n%s", err, o)
	}
	if got := builds(t, log); len(got) != 0 {
		t.Errorf("an up-to-date build ran go build: %v", got)
	}

	// Every group (make tools, make test): only the ones not built yet.
	if o, err := run(t, env, out); err != nil {
		t.Fatalf("build.sh: %v\n%s", err, o)
	}
	want = []string{
		"tools ./cmd/kubectl",
		"krew sigs.k8s.io/krew/cmd/krew sigs.k8s.io/krew/cmd/validate-krew-manifest",
		"k9s github.com/derailed/k9s",
		"toxiproxy github.com/Shopify/toxiproxy/v2/cmd/server",
	}
	if got := builds(t, log); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("all groups after servers and proxy built:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	// A removed binary rebuilds its group only.
	if err := os.Remove(filepath.Join(out, "kube-proxy")); err != nil {
		t.Fatal(err)
	}
	if o, err := run(t, env, out); err != nil {
		t.Fatalf("build.sh: %v\n%s", err, o)
	}
	if got := builds(t, log); strings.Join(got, "\n") != "tools k8s.io/kubernetes/cmd/kube-proxy" {
		t.Errorf("after removing kube-proxy, built %v, want kube-proxy alone", got)
	}

	if o, err := run(t, env, out, "nosuchgroup"); err == nil || !strings.Contains(o, "unknown group nosuchgroup (the groups are: servers proxy clients k9s toxiproxy)") {
		t.Errorf("an unknown group: %v\n%s", err, o)
	}
}

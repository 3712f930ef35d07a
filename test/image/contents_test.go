package image

import (
	"archive/tar"
	"debug/elf"
	"encoding/json"
	"errors"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// TestImageContents: the image of the host's platform holds the static
// plugin (stamped with the build's version) and nothing to run a shell
// with, its user is one the Deployment's runAsNonRoot accepts, its labels
// name the source, revision and version, and its docker tarball is the
// same image under the Deployment's repository.
func TestImageContents(t *testing.T) {
	b := sharedImage(t)
	img := readLayout(t, b.layout)
	m := readManifest(t)
	c := m.container()
	cfg := img.config.Config

	if img.config.OS != "linux" || img.config.Architecture != runtime.GOARCH {
		t.Errorf("config platform %s/%s, want %s", img.config.OS, img.config.Architecture, hostPlatform)
	}
	argv := imageArgv(t, img, c)
	uid, gid := imageUser(t, img)
	if uid == 0 {
		t.Errorf("image user %q is root; the Deployment asks for runAsNonRoot", cfg.User)
	}

	want := map[string]string{
		"org.opencontainers.image.source":   sourceURL(t),
		"org.opencontainers.image.revision": testCommit,
		"org.opencontainers.image.version":  testVersion,
	}
	for k, v := range want {
		if cfg.Labels[k] != v {
			t.Errorf("label %s = %q, want %q", k, cfg.Labels[k], v)
		}
		if img.index.Annotations[k] != v {
			t.Errorf("index annotation %s = %q, want %q", k, img.index.Annotations[k], v)
		}
	}

	root := t.TempDir()
	entries := unpack(t, img, root, false)
	t.Logf("image files: %v", slices.Sorted(maps.Keys(entries)))
	entry := strings.TrimPrefix(argv[0], "/")
	hdr, ok := entries[entry]
	if !ok || hdr.Typeflag != tar.TypeReg || hdr.Mode&0o111 != 0o111 {
		t.Fatalf("entrypoint %s: not an executable file of the image (%+v)", argv[0], hdr)
	}
	checkStatic(t, filepath.Join(root, entry))
	for _, shell := range []string{"bin/sh", "bin/bash", "bin/busybox", "usr/bin/env"} {
		if _, ok := entries[shell]; ok {
			t.Errorf("the image holds %s; it should hold no shell", shell)
		}
	}
	// Files are root's, except the user's home.
	home := ""
	for _, e := range cfg.Env {
		if v, ok := strings.CutPrefix(e, "HOME="); ok {
			home = strings.TrimPrefix(v, "/")
		}
	}
	for name, h := range entries {
		owner := [2]int{0, 0}
		if home != "" && name == home {
			owner = [2]int{uid, gid}
		}
		if [2]int{h.Uid, h.Gid} != owner {
			t.Errorf("%s is owned by %d:%d, want %d:%d", name, h.Uid, h.Gid, owner[0], owner[1])
		}
	}
	if h, ok := entries[home]; home == "" || !ok || h.Typeflag != tar.TypeDir {
		t.Errorf("HOME %q (from %v) is no directory of the image; the Deployment mounts its cache under it", home, cfg.Env)
	}

	out, err := exec.Command(filepath.Join(root, entry), "version").CombinedOutput()
	if err != nil || !strings.Contains(string(out), testVersion) || !strings.Contains(string(out), testCommit) {
		t.Errorf("%s version: %v\n%s\nwant %s and %s in it", argv[0], err, out, testVersion, testCommit)
	}

	checkDockerTarball(t, b.tarball, img)
	checkFilledManifest(t, b.manifest, img)
}

// checkFilledManifest: the release's copy of the manifest differs from the
// repository's only in the comment under the container's image, which
// names the built index by digest.
func checkFilledManifest(t *testing.T, path string, img *layoutImage) {
	t.Helper()
	filled, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	orig, err := os.ReadFile(filepath.Join(repoRoot(t), manifestPath))
	if err != nil {
		t.Fatal(err)
	}
	a, b := strings.Split(string(orig), "\n"), strings.Split(string(filled), "\n")
	if len(a) != len(b) {
		t.Fatalf("%s has %d lines, %s %d", path, len(b), manifestPath, len(a))
	}
	var changed []int
	for i := range a {
		if a[i] != b[i] {
			changed = append(changed, i)
		}
	}
	want := "# image digest: " + imageRepo(t) + "@" + img.digest
	if len(changed) != 1 || changed[0] == 0 || !strings.HasPrefix(strings.TrimSpace(b[changed[0]]), want) ||
		!strings.HasPrefix(strings.TrimSpace(a[changed[0]-1]), "image: "+imageRepo(t)) {
		t.Errorf("the filled manifest changes lines %v of %s; want only the comment under the container's image, to start with %q", changed, manifestPath, want)
	}
}

// imageArgv is what the Deployment's container runs, by Kubernetes' rules:
// the image's Entrypoint, or the container's command in its place; then
// the container's args, or else (without a command) the image's Cmd.
func imageArgv(t testing.TB, img *layoutImage, c corev1.Container) []string {
	t.Helper()
	cmd, args := img.config.Config.Entrypoint, img.config.Config.Cmd
	if len(c.Command) > 0 {
		cmd, args = c.Command, nil
	}
	if len(c.Args) > 0 {
		args = c.Args
	}
	argv := append(slices.Clone(cmd), args...)
	if len(argv) == 0 || !filepath.IsAbs(argv[0]) {
		t.Fatalf("the container would run %q: want an absolute path first (the image has no PATH to search)", argv)
	}
	return argv
}

// imageUser is the numeric uid and gid of the image's User, which the
// kubelet needs numeric to check runAsNonRoot without the image's passwd.
func imageUser(t testing.TB, img *layoutImage) (uid, gid int) {
	t.Helper()
	u, g, ok := strings.Cut(img.config.Config.User, ":")
	var err1, err2 error
	uid, err1 = strconv.Atoi(u)
	gid, err2 = strconv.Atoi(g)
	if !ok || err1 != nil || err2 != nil {
		t.Fatalf("image user %q is not numeric UID:GID; the kubelet cannot check runAsNonRoot on a name", img.config.Config.User)
	}
	return uid, gid
}

// checkStatic: the binary is an executable for the host's architecture
// with no program interpreter (no dynamic loader to find in an empty base).
func checkStatic(t *testing.T, path string) {
	t.Helper()
	f, err := elf.Open(path)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	defer f.Close()
	machines := map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64}
	if want, ok := machines[runtime.GOARCH]; ok && f.Machine != want {
		t.Errorf("%s is for %s, want %s", path, f.Machine, want)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Errorf("%s is dynamically linked (has a program interpreter); the image has no libc", path)
		}
	}
}

// checkDockerTarball: the `docker load` tarball holds the layout's image
// of the host platform (same config digest), tagged REPO:VERSION with the
// Deployment's repository.
func checkDockerTarball(t *testing.T, path string, img *layoutImage) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	files := map[string][]byte{}
	tr := tar.NewReader(f)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if files[hdr.Name], err = io.ReadAll(tr); err != nil {
			t.Fatal(err)
		}
	}
	var entries []struct {
		Config   string
		RepoTags []string
		Layers   []string
	}
	if err := json.Unmarshal(files["manifest.json"], &entries); err != nil || len(entries) != 1 {
		t.Fatalf("%s: manifest.json %q: want one image (%v)", path, files["manifest.json"], err)
	}
	e := entries[0]
	if want := []string{imageRepo(t) + ":" + testVersion}; !slices.Equal(e.RepoTags, want) {
		t.Errorf("%s: tags %v, want %v", path, e.RepoTags, want)
	}
	if _, hexDigest, _ := strings.Cut(img.configDigest, ":"); !strings.Contains(e.Config, hexDigest) || files[e.Config] == nil {
		t.Errorf("%s: config %s, want the layout's %s", path, e.Config, img.configDigest)
	}
	if len(e.Layers) != len(img.manifest.Layers) {
		t.Errorf("%s: %d layers, the layout's image has %d", path, len(e.Layers), len(img.manifest.Layers))
	}
}

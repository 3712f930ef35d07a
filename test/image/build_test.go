package image

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
)

// What the test builds stamp into the binary and the labels.
const (
	testVersion = "v0.0.0-imagetest"
	testCommit  = "0123456789abcdef0123456789abcdef01234567"
)

// hostPlatform: the tests build and run the image of the machine's own
// architecture only (`make image` builds every platform); a second
// architecture would double the compile time and could not run here.
var hostPlatform = "linux/" + runtime.GOARCH

// builtImage is one run of hack/image.
type builtImage struct {
	dir     string
	layout  string // OCI image layout directory
	tarball string // docker load tarball of hostPlatform
	// manifest is the in-cluster manifest with its digest comment filled,
	// as a release carries it.
	manifest string
}

// buildImage runs the builder (its own module, hack/image) into dir, the
// way `make image` does, for hostPlatform.
func buildImage(t testing.TB, dir string) *builtImage {
	t.Helper()
	b := &builtImage{dir: dir, layout: filepath.Join(dir, "oci"), tarball: filepath.Join(dir, "image.tar"), manifest: filepath.Join(dir, "kubectl-mcs.yaml")}
	cmd := exec.Command("go", "run", ".", "-root", repoRoot(t), "-version", testVersion, "-commit", testCommit,
		"-platforms", hostPlatform, "-repo", imageRepo(t), "-layout", b.layout, "-tarball", b.tarball,
		"-manifest", filepath.Join(repoRoot(t), manifestPath), "-manifest-out", b.manifest)
	cmd.Dir = filepath.Join(repoRoot(t), "hack", "image")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("hack/image: %v\n%s", err, out)
	}
	t.Logf("hack/image:\n%s", out)
	return b
}

var (
	sharedOnce  sync.Once
	sharedDir   string
	sharedBuilt *builtImage
)

// sharedImage is the build the tests share (the first test to ask builds
// it); TestMain removes it.
func sharedImage(t *testing.T) *builtImage {
	t.Helper()
	if testing.Short() {
		t.Skip("builds the image: not in -short mode")
	}
	sharedOnce.Do(func() {
		dir, err := os.MkdirTemp("", "kubectl-mcs-image-test-")
		if err != nil {
			t.Fatal(err)
		}
		sharedDir = dir
		sharedBuilt = buildImage(t, dir)
	})
	if sharedBuilt == nil {
		t.Fatal("the shared image build failed (see the first test)")
	}
	return sharedBuilt
}

func removeSharedImage() {
	if sharedDir != "" {
		os.RemoveAll(sharedDir)
	}
}

// TestImageReproducible: a second build of the same source gives the same
// index digest and the same docker tarball, byte for byte.
func TestImageReproducible(t *testing.T) {
	first := sharedImage(t)
	second := buildImage(t, t.TempDir())
	d1, d2 := readLayout(t, first.layout).digest, readLayout(t, second.layout).digest
	t.Logf("index digests: %s, %s", d1, d2)
	if d1 != d2 {
		t.Errorf("two builds of one source gave index digests %s and %s", d1, d2)
	}
	if s1, s2 := fileSHA256(t, first.tarball), fileSHA256(t, second.tarball); s1 != s2 {
		t.Errorf("two builds of one source gave docker tarballs with sha256 %s and %s", s1, s2)
	}
}

func fileSHA256(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// Types of the OCI image layout, index, manifest and config, as far as
// the tests read them; read here by hand rather than with the builder's
// library, so the layout is checked by a second reader.
type (
	descriptor struct {
		MediaType   string            `json:"mediaType"`
		Digest      string            `json:"digest"`
		Size        int64             `json:"size"`
		Annotations map[string]string `json:"annotations"`
		Platform    *struct {
			OS           string `json:"os"`
			Architecture string `json:"architecture"`
		} `json:"platform"`
	}
	ociIndex struct {
		MediaType   string            `json:"mediaType"`
		Manifests   []descriptor      `json:"manifests"`
		Annotations map[string]string `json:"annotations"`
	}
	ociManifest struct {
		MediaType string       `json:"mediaType"`
		Config    descriptor   `json:"config"`
		Layers    []descriptor `json:"layers"`
	}
	imageConfig struct {
		OS           string `json:"os"`
		Architecture string `json:"architecture"`
		Config       struct {
			Entrypoint []string          `json:"Entrypoint"`
			Cmd        []string          `json:"Cmd"`
			User       string            `json:"User"`
			Env        []string          `json:"Env"`
			WorkingDir string            `json:"WorkingDir"`
			Labels     map[string]string `json:"Labels"`
		} `json:"config"`
	}
)

// layoutImage is the host platform's image of an OCI layout.
type layoutImage struct {
	dir          string
	digest       string // of the index
	index        ociIndex
	manifest     ociManifest
	config       imageConfig
	configDigest string
}

// readLayout reads the layout's single index and the image of
// hostPlatform in it, checking every blob against its digest and size.
func readLayout(t *testing.T, dir string) *layoutImage {
	t.Helper()
	var top ociIndex
	readJSON(t, filepath.Join(dir, "index.json"), &top)
	if len(top.Manifests) != 1 || top.Manifests[0].MediaType != "application/vnd.oci.image.index.v1+json" {
		t.Fatalf("%s/index.json: want one OCI image index, got %+v", dir, top.Manifests)
	}
	img := &layoutImage{dir: dir, digest: top.Manifests[0].Digest}
	if err := json.Unmarshal(readBlob(t, dir, top.Manifests[0]), &img.index); err != nil {
		t.Fatal(err)
	}
	for _, m := range img.index.Manifests {
		if m.Platform != nil && m.Platform.OS+"/"+m.Platform.Architecture == hostPlatform {
			if err := json.Unmarshal(readBlob(t, dir, m), &img.manifest); err != nil {
				t.Fatal(err)
			}
		}
	}
	if img.manifest.MediaType != "application/vnd.oci.image.manifest.v1+json" {
		t.Fatalf("%s: no OCI image manifest for %s in the index %+v", dir, hostPlatform, img.index.Manifests)
	}
	img.configDigest = img.manifest.Config.Digest
	if err := json.Unmarshal(readBlob(t, dir, img.manifest.Config), &img.config); err != nil {
		t.Fatal(err)
	}
	return img
}

// readBlob reads a blob of the layout and checks it is what d says.
func readBlob(t *testing.T, layout string, d descriptor) []byte {
	t.Helper()
	algo, hexDigest, ok := strings.Cut(d.Digest, ":")
	if !ok || algo != "sha256" {
		t.Fatalf("descriptor digest %q is not sha256:...", d.Digest)
	}
	data, err := os.ReadFile(filepath.Join(layout, "blobs", algo, hexDigest))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	if got := hex.EncodeToString(sum[:]); got != hexDigest || int64(len(data)) != d.Size {
		t.Fatalf("blob %s: sha256 %s, %d bytes; the descriptor says %d bytes", d.Digest, got, len(data), d.Size)
	}
	return data
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.NewDecoder(bytes.NewReader(data)).Decode(v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// repoRoot is the repository holding this package.
func repoRoot(t testing.TB) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	root, err := filepath.Abs(filepath.Join(filepath.Dir(file), "..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// sourceURL is the repository's address as the image's source label must
// give it: https:// and the module path of go.mod.
func sourceURL(t testing.TB) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(repoRoot(t), "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	first, _, _ := strings.Cut(string(data), "\n")
	module, ok := strings.CutPrefix(first, "module ")
	if !ok {
		t.Fatalf("go.mod starts with %q, not a module line", first)
	}
	return fmt.Sprintf("https://%s", strings.TrimSpace(module))
}

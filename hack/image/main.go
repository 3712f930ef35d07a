// Command image builds the in-cluster image of kubectl mcs (the one
// deploy/in-cluster/kubectl-mcs.yaml runs) without a container engine: the
// static plugin binary on an empty base, one image per platform, gathered in
// an OCI image index.
//
//	cd hack/image && go run . -root ../.. -version v0.1.0 -commit $(git rev-parse HEAD) \
//	    -layout ../../bin/image/oci -tarball '../../bin/image/kubectl-mcs-image_{os}_{arch}.tar'
//
// It writes an OCI image layout (the index, for pushing every platform), and
// on request a `docker load` tarball of each platform's image, a tar of the
// layout (skopeo's oci-archive), the index digest, and a copy of the
// Deployment manifest whose digest comment names the image.
//
// The digest depends only on the source, the version, the commit, the Go
// toolchain and SOURCE_DATE_EPOCH: binaries are built with -trimpath and no
// VCS stamp, tar entries are sorted with fixed owners, modes and times, gzip
// carries no timestamp, and every time in the config is the epoch.
//
// It lives in its own module so that go-containerregistry stays out of the
// plugin's go.mod.
package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

const (
	modulePath = "github.com/kubectl-mcs/kubectl-mcs"
	sourceURL  = "https://github.com/kubectl-mcs/kubectl-mcs"
	// Entrypoint is where the binary lives in the image; the Deployment
	// passes only arguments.
	entrypoint = "/kubectl-mcs"
	// The conventional non-root user of distroless images: numeric, so
	// that the kubelet can check runAsNonRoot without a passwd lookup.
	uid, gid = 65532, 65532
	home     = "/home/nonroot"
	// digestMarker starts the comment line of the Deployment manifest that
	// the release fills with the image digest.
	digestMarker = "# image digest:"
)

type options struct {
	root, version, commit, repo string
	platforms                   []string
	epoch                       int64
	layoutDir, tarballPath      string
	ociArchive, digestFile      string
	manifestIn, manifestOut     string
}

func main() {
	var o options
	var platforms string
	flag.StringVar(&o.root, "root", "../..", "the kubectl-mcs repository (module root)")
	flag.StringVar(&o.version, "version", "v0.0.0-dev", "version stamped into the binary and the labels")
	flag.StringVar(&o.commit, "commit", "unknown", "git commit stamped into the binary and the labels")
	flag.StringVar(&o.repo, "repo", "ghcr.io/kubectl-mcs/kubectl-mcs", "image repository: the docker tarball is tagged REPO:VERSION")
	flag.StringVar(&platforms, "platforms", "linux/amd64,linux/arm64", "comma-separated OS/ARCH list of the index")
	flag.Int64Var(&o.epoch, "epoch", -1, "time of every file and of the config, in seconds (default: $SOURCE_DATE_EPOCH, else the commit's time, else 0)")
	flag.StringVar(&o.layoutDir, "layout", "", "OCI image layout directory to write (replaced)")
	flag.StringVar(&o.tarballPath, "tarball", "", "also write a `docker load` tarball of each platform's image here; {os} and {arch} in the path name the platform")
	flag.StringVar(&o.ociArchive, "oci-archive", "", "also write the layout as one tar file here (skopeo's oci-archive: transport)")
	flag.StringVar(&o.digestFile, "digest-file", "", "also write the index digest (sha256:...) here")
	flag.StringVar(&o.manifestIn, "manifest", "", "Deployment manifest whose '"+digestMarker+"' comment to fill (with -manifest-out)")
	flag.StringVar(&o.manifestOut, "manifest-out", "", "where to write the filled manifest")
	flag.Parse()
	o.platforms = strings.Split(platforms, ",")
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "image:", err)
		os.Exit(1)
	}
}

func run(o options) error {
	if o.layoutDir == "" {
		return errors.New("-layout is required")
	}
	if (o.manifestIn == "") != (o.manifestOut == "") {
		return errors.New("-manifest and -manifest-out go together")
	}
	if len(o.platforms) > 1 && o.tarballPath != "" && !strings.Contains(o.tarballPath, "{arch}") {
		return fmt.Errorf("-tarball %s: a docker tarball holds one platform's image; put {arch} in the path to write one per platform", o.tarballPath)
	}
	for _, out := range []string{o.layoutDir, o.tarballPath, o.ociArchive, o.digestFile, o.manifestOut} {
		if out != "" {
			if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
				return err
			}
		}
	}
	root, err := filepath.Abs(o.root)
	if err != nil {
		return err
	}
	if o.epoch < 0 {
		o.epoch = sourceDateEpoch(root)
	}
	created := time.Unix(o.epoch, 0).UTC()
	stage, err := os.MkdirTemp("", "kubectl-mcs-image-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(stage)

	labels := map[string]string{
		"org.opencontainers.image.source":      sourceURL,
		"org.opencontainers.image.revision":    o.commit,
		"org.opencontainers.image.version":     o.version,
		"org.opencontainers.image.title":       "kubectl-mcs",
		"org.opencontainers.image.description": "kubectl mcs sync --watch: Kubernetes Multi-Cluster Services for a clusterset",
		"org.opencontainers.image.licenses":    "Apache-2.0",
		"org.opencontainers.image.created":     created.Format(time.RFC3339),
	}
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	images := map[string]v1.Image{}
	for _, p := range o.platforms {
		goos, goarch, ok := strings.Cut(p, "/")
		if !ok || goos != "linux" {
			return fmt.Errorf("platform %q: the image is for linux/ARCH", p)
		}
		bin := filepath.Join(stage, goos+"_"+goarch, "kubectl-mcs")
		if err := buildBinary(root, goos, goarch, o.version, o.commit, bin); err != nil {
			return err
		}
		img, err := platformImage(bin, goos, goarch, created, labels)
		if err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		images[p] = img
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{
			Add:        img,
			Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: goos, Architecture: goarch}},
		})
	}
	idx = mutate.Annotations(idx, labels).(v1.ImageIndex)
	digest, err := idx.Digest()
	if err != nil {
		return err
	}

	if err := os.RemoveAll(o.layoutDir); err != nil {
		return err
	}
	lp, err := layout.Write(o.layoutDir, empty.Index)
	if err != nil {
		return err
	}
	// ref.name lets skopeo address the index as oci:DIR:VERSION.
	if err := lp.AppendIndex(idx, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": o.version})); err != nil {
		return err
	}
	fmt.Printf("image: %s (index %s, %s) in %s\n", o.version, digest, strings.Join(o.platforms, " "), o.layoutDir)
	if o.tarballPath != "" {
		// docker load takes one image per tag, not an index: each
		// platform gets its own tarball, tagged REPO:VERSION.
		tag, err := name.NewTag(o.repo + ":" + o.version)
		if err != nil {
			return fmt.Errorf("tag for the docker tarball: %w", err)
		}
		for _, p := range o.platforms {
			goos, goarch, _ := strings.Cut(p, "/")
			path := strings.NewReplacer("{os}", goos, "{arch}", goarch).Replace(o.tarballPath)
			if err := tarball.WriteToFile(path, tag, images[p]); err != nil {
				return err
			}
			d, _ := images[p].Digest()
			fmt.Printf("image: docker load tarball of %s (%s, %s) in %s\n", p, tag, d, path)
		}
	}
	if o.ociArchive != "" {
		if err := tarDir(o.layoutDir, o.ociArchive, created); err != nil {
			return err
		}
		fmt.Printf("image: OCI archive of the layout in %s\n", o.ociArchive)
	}
	if o.digestFile != "" {
		if err := os.WriteFile(o.digestFile, []byte(digest.String()+"\n"), 0o644); err != nil {
			return err
		}
	}
	if o.manifestIn != "" {
		if err := fillManifest(o.manifestIn, o.manifestOut, fmt.Sprintf("%s %s@%s (%s)", digestMarker, o.repo, digest, o.version)); err != nil {
			return err
		}
		fmt.Printf("image: %s names %s@%s\n", o.manifestOut, o.repo, digest)
	}
	return nil
}

// sourceDateEpoch: $SOURCE_DATE_EPOCH, else the time of the checked-out
// commit, else 0 (no git).
func sourceDateEpoch(root string) int64 {
	if s := os.Getenv("SOURCE_DATE_EPOCH"); s != "" {
		if n, err := strconv.ParseInt(s, 10, 64); err == nil {
			return n
		}
	}
	out, err := exec.Command("git", "-C", root, "log", "-1", "--format=%ct").Output()
	if err != nil {
		return 0
	}
	n, err := strconv.ParseInt(strings.TrimSpace(string(out)), 10, 64)
	if err != nil {
		return 0
	}
	return n
}

// buildBinary builds the plugin the way the Makefile and hack/dist.sh do:
// static, no paths, no VCS stamp, the same -ldflags.
func buildBinary(root, goos, goarch, version, commit, out string) error {
	ldflags := fmt.Sprintf("-s -w -X %[1]s/pkg/version.Version=%[2]s -X %[1]s/pkg/version.GitCommit=%[3]s", modulePath, version, commit)
	cmd := exec.Command("go", "build", "-trimpath", "-buildvcs=false", "-ldflags", ldflags, "-o", out, "./cmd/kubectl-mcs")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS="+goos, "GOARCH="+goarch)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	fmt.Fprintf(os.Stderr, "image: building kubectl-mcs %s for %s/%s\n", version, goos, goarch)
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go build for %s/%s: %w", goos, goarch, err)
	}
	return nil
}

// platformImage is the image of one platform: a single layer on nothing.
func platformImage(bin, goos, goarch string, created time.Time, labels map[string]string) (v1.Image, error) {
	binary, err := os.ReadFile(bin)
	if err != nil {
		return nil, err
	}
	layer, err := rootLayer(binary, created)
	if err != nil {
		return nil, err
	}
	cfg := &v1.ConfigFile{
		Architecture: goarch,
		OS:           goos,
		Created:      v1.Time{Time: created},
		Config: v1.Config{
			Entrypoint: []string{entrypoint},
			User:       fmt.Sprintf("%d:%d", uid, gid),
			// HOME is set here rather than left to the runtime's passwd
			// lookup: kubectl's discovery cache goes to $HOME/.kube, where
			// the Deployment mounts a writable volume over a read-only root.
			Env:        []string{"HOME=" + home},
			WorkingDir: "/",
			Labels:     labels,
		},
		RootFS: v1.RootFS{Type: "layers"},
	}
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err = mutate.ConfigFile(img, cfg)
	if err != nil {
		return nil, err
	}
	return mutate.Append(img, mutate.Addendum{
		Layer:   layer,
		History: v1.History{Created: v1.Time{Time: created}, CreatedBy: "hack/image: kubectl-mcs " + labels["org.opencontainers.image.version"], Comment: "static binary on an empty base"},
	})
}

// entry is one file or directory of the image's root filesystem.
type entry struct {
	name     string
	mode     int64
	uid, gid int
	body     []byte
	dir      bool
}

// rootFiles is everything the image holds. No shell, no libc, no CA bundle:
// the plugin reaches API servers with the CA data of its kubeconfig (and,
// in-cluster, the service account's ca.crt), never with the system roots.
// passwd and group name the user for tools that look it up; /tmp is there
// for runs without a read-only root (the Deployment's root is read-only
// and the plugin writes nowhere but $HOME/.kube).
func rootFiles(binary []byte) []entry {
	return []entry{
		{name: "etc/", mode: 0o755, dir: true},
		{name: "etc/group", mode: 0o644, body: fmt.Appendf(nil, "root:x:0:\nnonroot:x:%d:\n", gid)},
		{name: "etc/passwd", mode: 0o644, body: fmt.Appendf(nil, "root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:%d:%d:nonroot:%s:/sbin/nologin\n", uid, gid, home)},
		{name: "home/", mode: 0o755, dir: true},
		{name: strings.TrimPrefix(home, "/") + "/", mode: 0o700, uid: uid, gid: gid, dir: true},
		{name: strings.TrimPrefix(entrypoint, "/"), mode: 0o755, body: binary},
		{name: "tmp/", mode: 0o1777, dir: true},
	}
}

// rootLayer is the gzipped tar of rootFiles, byte for byte the same for the
// same binary and time.
func rootLayer(binary []byte, mtime time.Time) (v1.Layer, error) {
	files := rootFiles(binary)
	slices.SortFunc(files, func(a, b entry) int { return strings.Compare(a.name, b.name) })
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		return nil, err
	}
	tw := tar.NewWriter(zw)
	for _, f := range files {
		hdr := &tar.Header{Name: f.name, Mode: f.mode, Uid: f.uid, Gid: f.gid, ModTime: mtime, Format: tar.FormatPAX}
		if f.dir {
			hdr.Typeflag = tar.TypeDir
		} else {
			hdr.Typeflag, hdr.Size = tar.TypeReg, int64(len(f.body))
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, err
		}
		if _, err := tw.Write(f.body); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	compressed := buf.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(compressed)), nil
	}, tarball.WithMediaType(types.OCILayer))
}

// tarDir writes dir as a tar file (the layout as skopeo's oci-archive),
// sorted, owned by root, at one time.
func tarDir(dir, out string, mtime time.Time) (err error) {
	var paths []string
	if err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		paths = append(paths, p)
		return nil
	}); err != nil {
		return err
	}
	slices.Sort(paths)
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}()
	tw := tar.NewWriter(f)
	for _, p := range paths {
		rel, _ := filepath.Rel(dir, p)
		info, err := os.Stat(p)
		if err != nil {
			return err
		}
		hdr := &tar.Header{Name: filepath.ToSlash(rel), Mode: 0o644, ModTime: mtime, Typeflag: tar.TypeReg, Size: info.Size(), Format: tar.FormatPAX}
		if info.IsDir() {
			hdr.Name, hdr.Mode, hdr.Typeflag, hdr.Size = hdr.Name+"/", 0o755, tar.TypeDir, 0
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if !info.IsDir() {
			body, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			if _, err := tw.Write(body); err != nil {
				return err
			}
		}
	}
	return tw.Close()
}

// fillManifest copies the Deployment manifest with its digest comment line
// replaced. The repository's copy cannot carry the digest: the image's
// revision label is the commit, so committing the digest would change it.
func fillManifest(in, out, line string) error {
	raw, err := os.ReadFile(in)
	if err != nil {
		return err
	}
	lines := strings.Split(string(raw), "\n")
	found := 0
	for i, l := range lines {
		trimmed := strings.TrimLeft(l, " ")
		if strings.HasPrefix(trimmed, digestMarker) {
			lines[i] = l[:len(l)-len(trimmed)] + line
			found++
		}
	}
	if found != 1 {
		return fmt.Errorf("%s: %d lines start with %q, want exactly one (the comment on the container's image)", in, found, digestMarker)
	}
	return os.WriteFile(out, []byte(strings.Join(lines, "\n")), 0o644)
}

package image

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// unpack extracts the image's layers into root, as a container runtime
// lays out a root filesystem, and returns the entries by path. chown gives
// files the owners the layers say (needs root). The image may hold only
// directories and regular files: no links, devices or whiteouts.
func unpack(t *testing.T, img *layoutImage, root string, chown bool) map[string]*tar.Header {
	t.Helper()
	entries := map[string]*tar.Header{}
	for _, l := range img.manifest.Layers {
		if l.MediaType != "application/vnd.oci.image.layer.v1.tar+gzip" {
			t.Fatalf("layer %s has media type %s, want a gzipped OCI layer", l.Digest, l.MediaType)
		}
		zr, err := gzip.NewReader(bytes.NewReader(readBlob(t, img.dir, l)))
		if err != nil {
			t.Fatal(err)
		}
		tr := tar.NewReader(zr)
		for {
			hdr, err := tr.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("layer %s: %v", l.Digest, err)
			}
			name := strings.TrimSuffix(hdr.Name, "/")
			if !filepath.IsLocal(name) || strings.Contains(filepath.Base(name), ".wh.") {
				t.Fatalf("layer %s: entry %q is outside the root or a whiteout", l.Digest, hdr.Name)
			}
			path := filepath.Join(root, name)
			switch hdr.Typeflag {
			case tar.TypeDir:
				err = os.MkdirAll(path, 0o755)
			case tar.TypeReg:
				var body []byte
				if body, err = io.ReadAll(tr); err == nil {
					err = os.WriteFile(path, body, 0o600)
				}
			default:
				t.Fatalf("layer %s: entry %q has type %q; the image holds only directories and files", l.Digest, hdr.Name, hdr.Typeflag)
			}
			if err == nil && chown {
				err = os.Lchown(path, hdr.Uid, hdr.Gid)
			}
			if err == nil {
				// After chown, which clears the setuid/setgid bits.
				err = os.Chmod(path, hdr.FileInfo().Mode()&(os.ModePerm|os.ModeSticky|os.ModeSetuid|os.ModeSetgid))
			}
			if err != nil {
				t.Fatalf("unpacking %s: %v", hdr.Name, err)
			}
			entries[name] = hdr
		}
	}
	return entries
}

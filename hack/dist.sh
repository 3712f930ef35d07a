#!/usr/bin/env bash
# Builds the release archives of kubectl-mcs:
#
#   hack/dist.sh OUT_DIR VERSION COMMIT [OS/ARCH...]
#
# writes OUT_DIR/kubectl-mcs_<VERSION>_<os>_<arch>.tar.gz for each platform
# (default: linux/amd64 linux/arm64 darwin/amd64 darwin/arm64 windows/amd64)
# and OUT_DIR/sha256sums.txt. Each archive holds the binary (kubectl-mcs, or
# kubectl-mcs.exe on Windows), LICENSE and the kubectl completion shim.
#
# The archives are reproducible: the same source, version and Go toolchain
# give the same bytes (static binaries, no paths or VCS stamps, sorted tar
# entries owned by root, mtime from SOURCE_DATE_EPOCH or the commit, gzip
# without a timestamp), so the sha256 in a krew manifest can be checked by
# rebuilding.
set -euo pipefail
if (($# < 3)); then
	echo "usage: $0 OUT_DIR VERSION COMMIT [OS/ARCH...]" >&2
	exit 2
fi
out=$1 version=$2 commit=$3
shift 3
platforms=("$@")
if ((${#platforms[@]} == 0)); then
	platforms=(linux/amd64 linux/arm64 darwin/amd64 darwin/arm64 windows/amd64)
fi

root=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$out"
out=$(cd "$out" && pwd)
pkg=github.com/kubectl-mcs/kubectl-mcs
ldflags="-s -w -X $pkg/pkg/version.Version=$version -X $pkg/pkg/version.GitCommit=$commit"
mtime=${SOURCE_DATE_EPOCH:-$(git -C "$root" log -1 --format=%ct 2>/dev/null || echo 0)}

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
rm -f "$out"/kubectl-mcs_*.tar.gz "$out/sha256sums.txt"

for platform in "${platforms[@]}"; do
	os=${platform%/*} arch=${platform#*/}
	dir="$stage/${os}_${arch}"
	mkdir -p "$dir"
	bin=kubectl-mcs shim=kubectl_complete-mcs
	if [[ $os == windows ]]; then
		bin=kubectl-mcs.exe shim=kubectl_complete-mcs.cmd
	fi
	echo "dist: building $bin $version for $os/$arch"
	(cd "$root" && CGO_ENABLED=0 GOOS=$os GOARCH=$arch go build -trimpath -buildvcs=false -ldflags "$ldflags" -o "$dir/$bin" ./cmd/kubectl-mcs)
	install -m 0644 "$root/LICENSE" "$dir/LICENSE"
	install -m 0755 "$root/hack/$shim" "$dir/$shim"
	chmod 0755 "$dir/$bin"
	archive="kubectl-mcs_${version}_${os}_${arch}.tar.gz"
	tar --sort=name --owner=0 --group=0 --numeric-owner --mtime="@$mtime" \
		-C "$dir" -cf - "$bin" LICENSE "$shim" | gzip -n -9 >"$out/$archive"
done

(cd "$out" && sha256sum kubectl-mcs_*.tar.gz >sha256sums.txt)
echo "dist: archives in $out"
(cd "$out" && ls -l kubectl-mcs_*.tar.gz | awk '{printf "  %-60s %6.1f MiB\n", $9, $5 / 1048576}')

#!/usr/bin/env bash
# Builds the real servers the local test clusters run (etcd, kube-apiserver,
# kube-controller-manager, CoreDNS) from the Go module proxy into $1
# (default .cache/bin). Rebuilds only when the pinned versions or the build
# inputs change: a fingerprint of them is kept beside the binaries.
set -euo pipefail
cd "$(dirname "$0")"
out=${1:-../../.cache/bin}
mkdir -p "$out"
out=$(cd "$out" && pwd)

k8s_version=$(awk '$1=="k8s.io/kubernetes" {print $2; exit}' go.mod)
fingerprint=$( (go version; cat build.sh go.mod go.sum cmd/etcd/main.go coredns/go.mod coredns/go.sum coredns/main.go) | sha256sum | cut -c1-16)
if [[ -f "$out/.fingerprint" && "$(cat "$out/.fingerprint")" == "$fingerprint" ]] &&
	[[ -x "$out/etcd" && -x "$out/kube-apiserver" && -x "$out/kube-controller-manager" && -x "$out/coredns" ]]; then
	echo "tools: up to date in $out (kubernetes $k8s_version)"
	exit 0
fi

minor=${k8s_version#v1.}
minor=${minor%%.*}
# Without these stamps the servers report v0.0.0-master and clients that
# check the server version (kubectl version) fail.
stamp() {
	local pkg=$1
	echo "-X $pkg.gitVersion=$k8s_version -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
}
ldflags="-s -w $(stamp k8s.io/component-base/version) $(stamp k8s.io/client-go/pkg/version)"

start=$(date +%s)
echo "tools: building etcd, kube-apiserver, kube-controller-manager $k8s_version into $out"
go build -trimpath -ldflags "$ldflags" -o "$out/" ./cmd/etcd k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager
echo "tools: building coredns"
(cd coredns && go build -trimpath -ldflags "-s -w" -o "$out/coredns" .)
echo "$fingerprint" >"$out/.fingerprint"
echo "tools: built in $(($(date +%s) - start))s"

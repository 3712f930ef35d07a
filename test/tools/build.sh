#!/usr/bin/env bash
# Builds the real programs the tests run, from the Go module proxy, into $1
# (default .cache/bin):
#   servers: etcd, kube-apiserver, kube-controller-manager, CoreDNS (the
#            local test clusters);
#   proxy:   kube-proxy (the data plane of the local clusters: it programs
#            Services, derived ones included, into each node's iptables);
#   clients: kubectl, krew and krew's validate-krew-manifest (the plugin's
#            distribution tests);
#   k9s:     k9s (the test that runs plugins.yaml in a real k9s, in tmux);
#   toxiproxy: toxiproxy-server (the far-away test bed: latency and faults
#            between the plugin and the local API servers).
# Each group is rebuilt only when its pinned versions or build inputs change:
# a fingerprint of them is kept beside the binaries, one per group, so that
# bumping krew or k9s never relinks kube-apiserver.
set -euo pipefail
cd "$(dirname "$0")"
out=${1:-../../.cache/bin}
mkdir -p "$out"
out=$(cd "$out" && pwd)

k8s_version=$(awk '$1=="k8s.io/kubernetes" {print $2; exit}' go.mod)
krew_version=$(awk '{for (i = 1; i < NF; i++) if ($i == "sigs.k8s.io/krew") {print $(i + 1); exit}}' krew/go.mod)
k9s_version=$(awk '{for (i = 1; i < NF; i++) if ($i == "github.com/derailed/k9s") {print $(i + 1); exit}}' k9s/go.mod)
toxiproxy_version=$(awk '{for (i = 1; i < NF; i++) if ($i == "github.com/Shopify/toxiproxy/v2") {print $(i + 1); exit}}' toxiproxy/go.mod)
minor=${k8s_version#v1.}
minor=${minor%%.*}
# Without these stamps the servers report v0.0.0-master, clients that check
# the server version (kubectl version) fail, and kubectl prints no version.
stamp() {
	local pkg=$1
	echo "-X $pkg.gitVersion=$k8s_version -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
}
k8s_ldflags="-s -w $(stamp k8s.io/component-base/version) $(stamp k8s.io/client-go/pkg/version)"
# k9s shows its version in its header and `k9s version`.
k9s_ldflags="-s -w -X github.com/derailed/k9s/cmd.version=$k9s_version"
# toxiproxy-server -version and its /version endpoint print this.
toxiproxy_ldflags="-s -w -X github.com/Shopify/toxiproxy/v2.Version=$toxiproxy_version"

# One function per group builds its binaries.
build_servers() {
	echo "tools: building etcd, kube-apiserver, kube-controller-manager $k8s_version into $out"
	go build -trimpath -ldflags "$k8s_ldflags" -o "$out/" ./cmd/etcd k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager
	echo "tools: building coredns"
	(cd coredns && go build -trimpath -ldflags "-s -w" -o "$out/coredns" .)
}

build_proxy() {
	echo "tools: building kube-proxy $k8s_version into $out"
	go build -trimpath -ldflags "$k8s_ldflags" -o "$out/" k8s.io/kubernetes/cmd/kube-proxy
}

build_clients() {
	echo "tools: building kubectl $k8s_version into $out"
	go build -trimpath -ldflags "$k8s_ldflags" -o "$out/kubectl" ./cmd/kubectl
	# krew reports itself as a development build without its version
	# stamps, which also keeps it from checking GitHub for upgrades.
	echo "tools: building krew $krew_version and validate-krew-manifest"
	(cd krew && go build -trimpath -ldflags "-s -w" -o "$out/" sigs.k8s.io/krew/cmd/krew sigs.k8s.io/krew/cmd/validate-krew-manifest)
}

build_k9s() {
	echo "tools: building k9s $k9s_version into $out"
	(cd k9s && go build -trimpath -ldflags "$k9s_ldflags" -o "$out/k9s" github.com/derailed/k9s)
}

build_toxiproxy() {
	echo "tools: building toxiproxy-server $toxiproxy_version into $out"
	(cd toxiproxy && go build -trimpath -ldflags "$toxiproxy_ldflags" -o "$out/toxiproxy-server" github.com/Shopify/toxiproxy/v2/cmd/server)
}

# fingerprint GROUP LDFLAGS FILE...: what a group's binaries were built
# from: the Go version, the group's build function, its link flags and its
# input files. Editing one group's build never rebuilds another group.
fingerprint() {
	local group=$1 ldflags=$2
	shift 2
	(go version; declare -f "build_$group"; echo "$ldflags"; cat "$@") | sha256sum | cut -c1-16
}

# up_to_date GROUP FINGERPRINT BINARY...: whether every binary of the group
# is there and was built from the same inputs.
up_to_date() {
	local stampfile="$out/.fingerprint-$1" want=$2
	shift 2
	[[ -f "$stampfile" && "$(cat "$stampfile")" == "$want" ]] || return 1
	for bin in "$@"; do
		[[ -x "$out/$bin" ]] || return 1
	done
}

start=$(date +%s)

servers_fp=$(fingerprint servers "$k8s_ldflags" go.mod go.sum cmd/etcd/main.go coredns/go.mod coredns/go.sum coredns/main.go)
if up_to_date servers "$servers_fp" etcd kube-apiserver kube-controller-manager coredns; then
	echo "tools: servers up to date in $out (kubernetes $k8s_version)"
else
	build_servers
	echo "$servers_fp" >"$out/.fingerprint-servers"
fi

proxy_fp=$(fingerprint proxy "$k8s_ldflags" go.mod go.sum)
if up_to_date proxy "$proxy_fp" kube-proxy; then
	echo "tools: kube-proxy up to date in $out (kubernetes $k8s_version)"
else
	build_proxy
	echo "$proxy_fp" >"$out/.fingerprint-proxy"
fi

clients_fp=$(fingerprint clients "$k8s_ldflags" go.mod go.sum cmd/kubectl/main.go krew/go.mod krew/go.sum)
if up_to_date clients "$clients_fp" kubectl krew validate-krew-manifest; then
	echo "tools: clients up to date in $out (kubectl $k8s_version, krew $krew_version)"
else
	build_clients
	echo "$clients_fp" >"$out/.fingerprint-clients"
fi

k9s_fp=$(fingerprint k9s "$k9s_ldflags" k9s/go.mod k9s/go.sum)
if up_to_date k9s "$k9s_fp" k9s; then
	echo "tools: k9s up to date in $out (k9s $k9s_version)"
else
	k9s_start=$(date +%s)
	build_k9s
	echo "tools: k9s built in $(($(date +%s) - k9s_start))s"
	echo "$k9s_fp" >"$out/.fingerprint-k9s"
fi
toxiproxy_fp=$(fingerprint toxiproxy "$toxiproxy_ldflags" toxiproxy/go.mod toxiproxy/go.sum)
if up_to_date toxiproxy "$toxiproxy_fp" toxiproxy-server; then
	echo "tools: toxiproxy-server up to date in $out (toxiproxy $toxiproxy_version)"
else
	build_toxiproxy
	echo "$toxiproxy_fp" >"$out/.fingerprint-toxiproxy"
fi
echo "tools: done in $(($(date +%s) - start))s"

#!/usr/bin/env bash
# Builds the real programs the tests run, from the Go module proxy, into DIR
# (default .cache/bin):
#
#   test/tools/build.sh [DIR [GROUP...]]
#
# GROUPs (all of them when none is named):
#   servers: etcd, kube-apiserver, kube-controller-manager, CoreDNS (the
#            local test clusters);
#   proxy:   kube-proxy (the data plane of the local clusters: it programs
#            Services, derived ones included, into each node's iptables);
#   clients: kubectl, krew and krew's validate-krew-manifest (the plugin's
#            distribution tests, the benchmarks' kubectl baseline);
#   k9s:     k9s (the test that runs plugins.yaml in a real k9s, in tmux);
#   toxiproxy: toxiproxy-server (the far-away test bed: latency and faults
#            between the plugin and the local API servers).
# `make demo` builds "servers proxy" only: the demo runs nothing else.
#
# Each group is rebuilt only when its pinned versions or build inputs change:
# a fingerprint of them is kept beside the binaries, one per group, so that
# bumping krew or k9s never relinks kube-apiserver. The binaries of every
# group that needs building are then built with one `go build` per Go module,
# so that kube-apiserver, kube-controller-manager, kube-proxy and kubectl
# compile the Kubernetes packages they share once, in one build graph.
set -euo pipefail
cd "$(dirname "$0")"
out=${1:-../../.cache/bin}
[[ $# -gt 0 ]] && shift
mkdir -p "$out"
out=$(cd "$out" && pwd)

all_groups=(servers proxy clients k9s toxiproxy)

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

# ldflags MODULE: the link flags of every binary of a module (the folder of
# its go.mod, relative to test/tools).
ldflags() {
	case $1 in
	.) echo "-s -w $(stamp k8s.io/component-base/version) $(stamp k8s.io/client-go/pkg/version)" ;;
	# k9s shows its version in its header and `k9s version`.
	k9s) echo "-s -w -X github.com/derailed/k9s/cmd.version=$k9s_version" ;;
	# toxiproxy-server -version and its /version endpoint print this.
	toxiproxy) echo "-s -w -X github.com/Shopify/toxiproxy/v2.Version=$toxiproxy_version" ;;
	# krew reports itself as a development build without its version
	# stamps, which also keeps it from checking GitHub for upgrades.
	*) echo "-s -w" ;;
	esac
}

# group_builds GROUP: one MODULE:PACKAGE per binary. `go build -o DIR/`
# names each binary after its package's last path element (CoreDNS's
# module ends in /coredns); MODULE:PACKAGE=NAME names it NAME instead.
group_builds() {
	case $1 in
	servers) echo ".:./cmd/etcd .:k8s.io/kubernetes/cmd/kube-apiserver .:k8s.io/kubernetes/cmd/kube-controller-manager coredns:." ;;
	proxy) echo ".:k8s.io/kubernetes/cmd/kube-proxy" ;;
	clients) echo ".:./cmd/kubectl krew:sigs.k8s.io/krew/cmd/krew krew:sigs.k8s.io/krew/cmd/validate-krew-manifest" ;;
	k9s) echo "k9s:github.com/derailed/k9s" ;;
	toxiproxy) echo "toxiproxy:github.com/Shopify/toxiproxy/v2/cmd/server=toxiproxy-server" ;;
	*) return 1 ;;
	esac
}

# group_binaries GROUP: what the group puts into DIR.
group_binaries() {
	case $1 in
	servers) echo "etcd kube-apiserver kube-controller-manager coredns" ;;
	proxy) echo "kube-proxy" ;;
	clients) echo "kubectl krew validate-krew-manifest" ;;
	k9s) echo "k9s" ;;
	toxiproxy) echo "toxiproxy-server" ;;
	esac
}

# group_inputs GROUP: the files that pin what the group builds.
group_inputs() {
	case $1 in
	servers) echo "go.mod go.sum cmd/etcd/main.go coredns/go.mod coredns/go.sum coredns/main.go" ;;
	proxy) echo "go.mod go.sum" ;;
	clients) echo "go.mod go.sum cmd/kubectl/main.go krew/go.mod krew/go.sum" ;;
	k9s) echo "k9s/go.mod k9s/go.sum" ;;
	toxiproxy) echo "toxiproxy/go.mod toxiproxy/go.sum" ;;
	esac
}

group_versions() {
	case $1 in
	servers | proxy) echo "kubernetes $k8s_version" ;;
	clients) echo "kubectl $k8s_version, krew $krew_version" ;;
	k9s) echo "k9s $k9s_version" ;;
	toxiproxy) echo "toxiproxy $toxiproxy_version" ;;
	esac
}

# fingerprint GROUP: what a group's binaries were built from: the Go
# version, its packages, their modules' link flags and its input files.
# Editing one group's build never rebuilds another group.
fingerprint() {
	local group=$1 build
	(
		go version
		for build in $(group_builds "$group"); do
			echo "$build $(ldflags "${build%%:*}")"
		done
		# shellcheck disable=SC2046 # one word per file
		cat $(group_inputs "$group")
	) | sha256sum | cut -c1-16
}

# up_to_date GROUP FINGERPRINT: whether every binary of the group is there
# and was built from the same inputs.
up_to_date() {
	local stampfile="$out/.fingerprint-$1" want=$2 bin
	[[ -f "$stampfile" && "$(cat "$stampfile")" == "$want" ]] || return 1
	for bin in $(group_binaries "$1"); do
		[[ -x "$out/$bin" ]] || return 1
	done
}

groups=("$@")
[[ ${#groups[@]} -gt 0 ]] || groups=("${all_groups[@]}")
for group in "${groups[@]}"; do
	group_builds "$group" >/dev/null || {
		echo "tools: unknown group $group (the groups are: ${all_groups[*]})" >&2
		exit 2
	}
done

start=$(date +%s)
stale=()
for group in "${groups[@]}"; do
	fp=$(fingerprint "$group")
	if up_to_date "$group" "$fp"; then
		echo "tools: $group up to date in $out ($(group_versions "$group"))"
	else
		stale+=("$group:$fp")
	fi
done

if [[ ${#stale[@]} -gt 0 ]]; then
	# The packages of every stale group, gathered per module.
	modules=()
	for entry in "${stale[@]}"; do
		for build in $(group_builds "${entry%%:*}"); do
			module=${build%%:*}
			[[ " ${modules[*]} " == *" $module "* ]] || modules+=("$module")
		done
	done
	for module in "${modules[@]}"; do
		pkgs=()
		for entry in "${stale[@]}"; do
			for build in $(group_builds "${entry%%:*}"); do
				[[ ${build%%:*} == "$module" ]] && pkgs+=("${build#*:}")
			done
		done
		label=test/tools
		[[ $module == . ]] || label=test/tools/$module
		module_start=$(date +%s)
		echo "tools: building ${pkgs[*]} (module $label) into $out"
		named=()
		for pkg in "${pkgs[@]}"; do
			[[ $pkg == *=* ]] && named+=("$pkg")
		done
		plain=()
		for pkg in "${pkgs[@]}"; do
			[[ $pkg == *=* ]] || plain+=("$pkg")
		done
		if [[ ${#plain[@]} -gt 0 ]]; then
			(cd "$module" && go build -trimpath -ldflags "$(ldflags "$module")" -o "$out/" "${plain[@]}")
		fi
		for pkg in "${named[@]}"; do
			(cd "$module" && go build -trimpath -ldflags "$(ldflags "$module")" -o "$out/${pkg#*=}" "${pkg%=*}")
		done
		echo "tools: $label built in $(($(date +%s) - module_start))s"
	done
	for entry in "${stale[@]}"; do
		group=${entry%%:*}
		echo "${entry#*:}" >"$out/.fingerprint-$group"
		echo "tools: $group built ($(group_versions "$group"))"
	done
fi
echo "tools: done in $(($(date +%s) - start))s"

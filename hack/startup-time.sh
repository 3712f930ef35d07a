#!/usr/bin/env bash
# Measures start-up time: the median wall time of N runs (default 20) of
#   kubectl-mcs version          the plugin alone
#   kubectl mcs version          through kubectl's plugin lookup
#   kubectl version --client     kubectl alone, for scale
#
#   hack/startup-time.sh PLUGIN_BINARY KUBECTL_BINARY [N]
set -euo pipefail
plugin=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
kubectl=$(cd "$(dirname "$2")" && pwd)/$(basename "$2")
runs=${3:-20}

# kubectl finds the plugin as kubectl-mcs on PATH.
bin=$(mktemp -d)
trap 'rm -rf "$bin"' EXIT
ln -s "$plugin" "$bin/kubectl-mcs"
ln -s "$kubectl" "$bin/kubectl"
export PATH="$bin:$PATH"
# Neither command reads a cluster; an empty kubeconfig keeps the user's out.
export KUBECONFIG=/dev/null

median_ms() {
	local times=() start end
	"$@" >/dev/null # warm the page cache
	for ((i = 0; i < runs; i++)); do
		start=$(date +%s%N)
		"$@" >/dev/null
		end=$(date +%s%N)
		times+=($(((end - start) / 1000)))
	done
	printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR] = $1} END {m = (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2; printf "%.1f", m / 1000}'
}

printf '%-28s %9s   (median of %d runs)\n' command ms "$runs"
printf '%-28s %9s\n' "kubectl-mcs version" "$(median_ms kubectl-mcs version)"
printf '%-28s %9s\n' "kubectl mcs version" "$(median_ms kubectl mcs version)"
printf '%-28s %9s\n' "kubectl version --client" "$(median_ms kubectl version --client)"

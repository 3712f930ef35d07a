// Package dns owns the DNS side of kubectl-mcs: the names an imported
// service is reachable by, what a cluster's DNS answers for them, and the
// CoreDNS configuration that makes the clusterset names work.
//
// Three concerns live here, all pure (no client, no network, no clock):
//
//   - Names (Parse, ParseTarget, Name.String): the MCS DNS forms under
//     clusterset.local, the derived Service forms under cluster.local, with
//     DNS limits checked and errors that say how to fix the name.
//   - Answers (Answer, NamesForHost, NamesForService): the records a name
//     gets from the state a consumer cluster holds after `kubectl mcs
//     import` (ServiceImports, derived Services amcs-<svc>, mirrored
//     EndpointSlices). The model follows CoreDNS v1.15's kubernetes plugin
//     line by line: its `multicluster` option for clusterset.local, its
//     ordinary Service lookup for cluster.local. Where the MCS DNS
//     specification and CoreDNS disagree, Answer gives what CoreDNS serves
//     and says so in a note, because that is what a pod will see.
//   - The Corefile (CheckCorefile, PatchCorefile): whether ConfigMap
//     kube-system/coredns serves clusterset.local the upstream way, and the
//     smallest text edit that makes it do so, optionally with a rewrite rule
//     for the vendor's cluster-id-less per-pod form.
//
// Reading the state from a cluster, and printing, belong to other packages.
package dns

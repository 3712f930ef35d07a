// Package reconcile is the pure core of kubectl-mcs: it turns one snapshot of
// a clusterset (what the source clusters export, what the consumer cluster
// already holds) into a Plan (the ServiceImports, derived Services and
// mirrored EndpointSlices the consumer must hold, the ServiceExport
// conditions every source must carry, and the ordered list of changes that
// gets there).
//
// The package owns the Multi-Cluster Services rules of KEP-1645 as this
// project applies them: the Service type mapping, export validity and
// conflict conditions, oldest-export-wins precedence, the port union,
// endpoint mirroring with one source cluster per slice, stale-cluster
// retention, adoption of hand-made ServiceImports and the refusal to touch
// objects that kubectl-mcs does not manage. It also owns the naming contract
// (DerivedServiceName, EndpointSliceName) and the ownership markers
// (FieldManager, ManagedByLabel).
//
// It imports no client and reads no clock: Snapshot.Now is the only time it
// knows, every output list is sorted, and the same snapshot always yields the
// same Plan, byte for byte. Reading clusters, applying the plan and printing
// it belong to other packages.
//
// The library works on v1beta1 types only; v1alpha1 and v1beta1 are
// schema-identical in mcs-api v0.5.x, so the caller converts apiVersion when
// a cluster serves only v1alpha1.
package reconcile

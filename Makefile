# kubectl-mcs. `make demo` runs the seed scenario on two local clusters;
# `make test` runs every test. Both build what they need first.
GO       ?= go
BIN      := $(CURDIR)/bin
# Real servers for the local clusters, and kubectl, krew and k9s for the
# distribution tests, built from the Go module proxy (`make tools` builds
# every group, `make demo-tools` only what the demo runs).
TOOLS_DIR ?= $(CURDIR)/.cache/bin
export MCS_TOOLS_DIR := $(TOOLS_DIR)
# The e2e fault tests run the real binary (SIGKILL at random points).
export MCS_PLUGIN_BINARY := $(BIN)/kubectl-mcs
# Tests that need the tools fail without them under make (make builds them
# first), where a plain `go test ./...` skips them and says `make tools`.
export MCS_REQUIRE_TOOLS := 1

# A semantic version, as krew requires (hack/version.sh says which).
VERSION ?= $(shell hack/version.sh)
COMMIT  ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
PKG     := github.com/kubectl-mcs/kubectl-mcs
LDFLAGS := -s -w -X $(PKG)/pkg/version.Version=$(VERSION) -X $(PKG)/pkg/version.GitCommit=$(COMMIT)
# Where demo-up keeps its clusters between commands. Each demo-up starts
# from a clean state; demo-down leaves the stopped clusters' files there
# (etcd data, logs), and demo-clean removes them.
DEMO_DIR ?= $(CURDIR)/.cache/demo
# demo-up WAN=50ms puts each demo cluster 50 ms (round trip) away, behind a
# Toxiproxy proxy; demo-wan WAN=100ms JITTER=10ms changes it while they run.
WAN    ?=
JITTER ?= 0s
# The demo's program, built with the plugin's -trimpath: a package compiled
# with other flags is compiled again, and without it a cold `make demo`
# compiled the Kubernetes client packages twice (about 3 minutes more on two
# cores; docs/local-clusters.md).
LOCALCLUSTERS := $(GO) run -trimpath ./test/cmd/localclusters
# Release archives (make dist) and the krew manifest rendered from them.
DIST_DIR ?= $(CURDIR)/dist

.PHONY: build tools demo-tools test unit e2e soak vet fmt-check mod-check demo demo-up demo-wan demo-down demo-clean clean dist krew-manifest startup-time

build:
	$(GO) build -trimpath -ldflags "$(LDFLAGS)" -o $(BIN)/kubectl-mcs ./cmd/kubectl-mcs

tools:
	test/tools/build.sh $(TOOLS_DIR)

# What the demo runs: the servers and CoreDNS, and kube-proxy for its data
# plane (and Toxiproxy when demo-up puts the clusters far away, WAN=...).
# The demo runs the plugin itself, never kubectl, krew or k9s.
demo-tools:
	test/tools/build.sh $(TOOLS_DIR) servers proxy $(if $(WAN),toxiproxy)

vet:
	$(GO) vet ./...

fmt-check:
	@out=$$(gofmt -l cmd pkg test hack docs); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

# go.mod and go.sum say exactly what the code imports.
mod-check:
	@$(GO) mod tidy -diff >/dev/null 2>&1 || { echo "go.mod/go.sum are not tidy (run go mod tidy):"; $(GO) mod tidy -diff; exit 1; }

unit:
	$(GO) test -short -count=1 ./...

e2e: tools build
	$(GO) test -count=1 -timeout 30m ./test/e2e/...

# The SIGKILL convergence loop at full length (make test runs 5 kills).
soak: tools build
	MCS_SOAK_ITERATIONS=20 $(GO) test -count=1 -timeout 30m -run 'TestKilledImportConverges' -v ./test/e2e/

# Everything: formatting, vet, unit and golden tests, e2e on real clusters.
test: fmt-check mod-check vet tools build
	$(GO) test -count=1 -timeout 40m ./...

# Release archives for every platform, with the sha256 list; beside them the
# in-cluster image (docker load tarballs per platform, the OCI layout as one
# tar) and the Deployment manifest naming it by digest (docs/image.md).
dist:
	hack/dist.sh $(DIST_DIR) $(VERSION) $(COMMIT) && \
	$(IMAGE_BUILD) -layout $(abspath $(IMAGE_DIR))/oci \
		-tarball '$(abspath $(DIST_DIR))/kubectl-mcs-image_$(VERSION)_{os}_{arch}.tar' \
		-oci-archive $(abspath $(DIST_DIR))/kubectl-mcs-image_$(VERSION)_oci.tar \
		-manifest $(CURDIR)/deploy/in-cluster/kubectl-mcs.yaml -manifest-out $(abspath $(DIST_DIR))/kubectl-mcs-in-cluster.yaml && \
	cd $(abspath $(DIST_DIR)) && sha256sum kubectl-mcs-image_$(VERSION)_* kubectl-mcs-in-cluster.yaml >>sha256sums.txt

# The in-cluster image (docs/image.md) for linux/amd64 and linux/arm64
# (IMAGE_PLATFORMS=linux/amd64 for one), as an OCI layout (bin/image/oci),
# a docker load tarball per platform and the index digest. The builder is a
# module of its own: go-containerregistry stays out of go.mod.
IMAGE_DIR       ?= $(BIN)/image
IMAGE_PLATFORMS ?= linux/amd64,linux/arm64
IMAGE_BUILD      = cd hack/image && $(GO) run . -root $(CURDIR) -version $(VERSION) -commit $(COMMIT) -platforms $(IMAGE_PLATFORMS)
.PHONY: image
image:
	$(IMAGE_BUILD) -layout $(abspath $(IMAGE_DIR))/oci -tarball '$(abspath $(IMAGE_DIR))/kubectl-mcs-image_{os}_{arch}.tar' -digest-file $(abspath $(IMAGE_DIR))/digest

# krew-manifest/mcs.yaml from the archives of `make dist` (same VERSION),
# checked by krew's own validator.
krew-manifest: tools
	$(GO) run ./hack/krew-manifest -dist $(DIST_DIR) -version $(VERSION) -out krew-manifest/mcs.yaml
	$(TOOLS_DIR)/validate-krew-manifest -manifest krew-manifest/mcs.yaml -skip-install

# Start-up time of the plugin next to kubectl's (median of 20 runs).
startup-time: tools build
	hack/startup-time.sh $(BIN)/kubectl-mcs $(TOOLS_DIR)/kubectl 20

demo: demo-tools build
	$(LOCALCLUSTERS) demo --plugin $(BIN)/kubectl-mcs

demo-up: demo-tools build
	$(LOCALCLUSTERS) up --dir $(DEMO_DIR) --plugin $(BIN)/kubectl-mcs --wan "$(WAN)"

demo-wan:
	$(LOCALCLUSTERS) wan --dir $(DEMO_DIR) --wan "$(WAN)" --jitter $(JITTER)

demo-down:
	$(LOCALCLUSTERS) down --dir $(DEMO_DIR)

# Stops the demo clusters if they run, and removes their files.
demo-clean:
	$(LOCALCLUSTERS) clean --dir $(DEMO_DIR)

# Stops the demo clusters first: their files are removed from under them.
clean: demo-clean
	rm -rf $(BIN) $(DIST_DIR)

# Benchmarks on real local clusters (round trips, scale, fan-out, start-up,
# library, propagation, continuous mode): prints the tables and rewrites the
# section of docs/performance.md between <!-- bench:start --> and
# <!-- bench:end -->.
.PHONY: bench
bench: tools build
	MCS_BENCH=1 $(GO) test -count=1 -timeout 30m -run 'TestBench$$' -v ./test/bench/

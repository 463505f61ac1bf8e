# dwnsync — make targets. The two a newcomer needs: `make demo` and `make test`.
SHELL := /usr/bin/env bash
.SHELLFLAGS := -eu -o pipefail -c
export GOTOOLCHAIN := local

BIN        := $(CURDIR)/bin
ASSETS      = $(shell bash hack/install-tools.sh --print-assets)
VERSION    ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT     ?= $(shell git rev-parse --short=12 HEAD 2>/dev/null)
# The same flags the Dockerfile uses: a static, reproducible binary.
GO_BUILD_FLAGS := -trimpath -ldflags "-s -w -X github.com/dwnsync/dwnsync/internal/version.Version=$(VERSION) -X github.com/dwnsync/dwnsync/internal/version.commit=$(COMMIT)"
GO_TEST_FLAGS  ?= -count=1 -timeout 60m
CONTROLLER_GEN := $(BIN)/controller-gen

.PHONY: all
all: build

##@ Getting started
.PHONY: demo
demo: build dwn-server ## Replicate a tenant between two real local DWN servers (no cluster needed)
	go run ./hack/demo

.PHONY: demo-k8s
demo-k8s: build dwn-server install-tools ## The same story on an envtest control plane with kubectl
	KUBEBUILDER_ASSETS="$(ASSETS)" go run ./hack/demo -k8s

# The packages with the engine's concurrency (client, ledger, engine) run again under the race
# detector: about 3 minutes on two cores.
RACE_PACKAGES := ./internal/dwn/... ./internal/ledger ./internal/syncer

.PHONY: test
test: install-tools dwn-server ## Unit, protocol, engine end-to-end and envtest tests, then the engine's packages under -race
	KUBEBUILDER_ASSETS="$(ASSETS)" go test $(GO_TEST_FLAGS) ./...
	go test -race $(GO_TEST_FLAGS) $(RACE_PACKAGES)

.PHONY: test-stress
test-stress: install-tools dwn-server ## The suite 3 times beside CPU hogs (kill tests once), to find flaky tests; lists every failure (not part of make test)
	KUBEBUILDER_ASSETS="$(ASSETS)" bash hack/test-stress.sh

##@ Development
.PHONY: install-tools
install-tools: ## Build kube-apiserver, etcd, kubectl, controller-gen and helm into ./bin (cached per user)
	bash hack/install-tools.sh

.PHONY: dwn-server
dwn-server: ## Install the pinned @web5/dwn-server and dwn-sdk-js from npm (cached per user)
	bash hack/dwn-server/install.sh

.PHONY: generate
generate: ## Generate deepcopy code for the API types
	@test -x $(CONTROLLER_GEN) || bash hack/install-tools.sh controller-gen
	$(CONTROLLER_GEN) object paths=./api/...

.PHONY: manifests
manifests: generate ## Generate the CRD and RBAC from the Go types and markers
	$(CONTROLLER_GEN) rbac:roleName=manager-role crd paths=./... \
		output:crd:artifacts:config=config/crd/bases output:rbac:artifacts:config=config/rbac
	go run ./hack/chartcrd
	go run ./hack/crdref > docs/crd-reference.md
	go run ./hack/chartdoc > charts/dwnsync/README.md

.PHONY: verify-manifests
verify-manifests: manifests ## Fail if generated files are not committed
	@git diff --exit-code -- api config charts/dwnsync/templates charts/dwnsync/README.md docs/crd-reference.md \
		|| { echo "generated files are stale: run 'make manifests' and commit"; exit 1; }

.PHONY: lint
lint: ## gofmt, go vet, and go.mod tidy
	@out="$$(gofmt -l $$(git ls-files '*.go'))"; if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	go vet ./...
	@go mod tidy -diff >/dev/null || { echo "go.mod/go.sum are not tidy: run 'go mod tidy' and commit"; go mod tidy -diff; exit 1; }

.PHONY: fuzz
fuzz: ## Run each fuzz target briefly
	go test -run='^$$' -fuzz='^FuzzDecodeRPCResponse$$' -fuzztime=10s ./internal/dwn/wire
	go test -run='^$$' -fuzz='^FuzzWSFrame$$' -fuzztime=10s ./internal/dwn/wire
	go test -run='^$$' -fuzz='^FuzzDecodeReplies$$' -fuzztime=10s ./internal/dwn/dialect

.PHONY: bench
bench: dwn-server ## Benchmarks (never part of make test)
	go test -run='^$$' -bench=. -benchmem ./internal/...

.PHONY: bench-e2e
bench-e2e: install-tools dwn-server ## End-to-end figures against real servers, each beside its baseline (BENCHMARKS.md; never part of make test). Sizes: BENCH_FLAGS="-p1-messages 2000", STATUS_BENCH_FLAGS="-status-bench-links=1000"
	go run ./hack/bench $(BENCH_FLAGS)
	@# P5's status writes run on envtest, in the controllers' test package: only its JSON lines.
	KUBEBUILDER_ASSETS="$(ASSETS)" go test ./controllers -run '^$$' -bench BenchmarkStatusWritesManyLinks -benchtime=1x -timeout 60m $(STATUS_BENCH_FLAGS) | grep '^{"figure"'

.PHONY: build
build: ## Build bin/dwnsync
	CGO_ENABLED=0 go build $(GO_BUILD_FLAGS) -o $(BIN)/dwnsync ./cmd/dwnsync

.PHONY: helm-lint
helm-lint: install-tools ## Lint the chart
	$(BIN)/helm lint --strict charts/dwnsync

.PHONY: help
help: ## Show this help
	@awk 'BEGIN {FS = ":.*##"} /^[a-zA-Z_-]+:.*?##/ { printf "  %-18s %s\n", $$1, $$2 } /^##@/ { printf "\n%s\n", substr($$0, 5) }' $(MAKEFILE_LIST)

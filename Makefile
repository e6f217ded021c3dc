# buildfleet: `make demo` runs the whole story locally, `make test` runs every
# test against real parts (a Nomad dev agent, SQLite files, ghsim).
# Everything the tests need is built or installed here, into a cache outside
# the repository, idempotently.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := build

export BUILDFLEET_CACHE ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/buildfleet
NOMAD_VERSION      ?= 1.10.5
STATICCHECK_VERSION ?= v0.8.2
BIN                := bin
TOOLS              := $(BUILDFLEET_CACHE)/tools
STATICCHECK        := $(TOOLS)/staticcheck-$(STATICCHECK_VERSION)
export BUILDFLEET_NOMAD := $(BUILDFLEET_CACHE)/nomad-$(NOMAD_VERSION)/nomad
export BUILDFLEET_NPM_DIR := $(BUILDFLEET_CACHE)/npm
# github-act-runner, the runner for platforms GitHub ships none for; its
# version and module hashes are pinned in runner-images/act-runner.
ACT_RUNNER_VERSION := $(shell awk '$$1 == "require" && $$2 == "github.com/ChristopherHX/github-act-runner" { print $$3 }' runner-images/act-runner/go.mod)
export BUILDFLEET_ACT_RUNNER := $(BUILDFLEET_CACHE)/runners/github-act-runner-$(ACT_RUNNER_VERSION)/$(shell go env GOOS)-$(shell go env GOARCH)/github-act-runner

.PHONY: build nomad runners fixtures tools packages browser lint test proof bench demo clean

## build: the buildfleet and ghsim binaries in bin/
build:
	go build -o $(BIN)/ ./cmd/...

## nomad: the pinned Nomad release, built once from the Go module proxy
nomad: $(BUILDFLEET_NOMAD)
$(BUILDFLEET_NOMAD):
	NOMAD_VERSION=$(NOMAD_VERSION) ./scripts/build-nomad.sh >/dev/null

## runners: github-act-runner for linux/amd64, freebsd/amd64, linux/riscv64,
## linux/s390x and linux/ppc64le, built once per version from the Go module
## proxy with verified module hashes
runners:
	./scripts/build-runners.sh

## fixtures: GitHub's published OpenAPI description and webhook examples (npm)
fixtures:
	./scripts/fetch-npm-fixtures.sh

## tools: staticcheck, pinned
tools: $(STATICCHECK)
$(STATICCHECK):
	@echo "make tools: installing staticcheck $(STATICCHECK_VERSION)"
	@mkdir -p $(TOOLS)/.gobin
	GOBIN=$(TOOLS)/.gobin go install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)
	mv $(TOOLS)/.gobin/staticcheck $@

## packages: Debian packages the tests use (shellcheck), installed once
packages:
	@command -v shellcheck >/dev/null || { echo "make packages: installing shellcheck"; \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq shellcheck; \
	  else sudo apt-get update -qq && sudo apt-get install -y -qq shellcheck; fi; }

## browser: Debian's chromium for the status page's browser tests, installed once
browser:
	@command -v chromium >/dev/null || { echo "make browser: installing chromium"; \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq chromium; \
	  else sudo apt-get update -qq && sudo apt-get install -y -qq chromium; fi; }

## lint: gofmt, go vet, staticcheck
lint: tools
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$unformatted" ]; then echo "gofmt needed:"; echo "$$unformatted"; exit 1; fi
	go vet ./...
	$(STATICCHECK) ./...

## test: lint, the shipped workflows against the example fleet, then every
## test with the race detector, Nomad included
test: nomad runners fixtures packages browser lint
	go run ./cmd/buildfleet --config config/example.yaml lint workflows/*.yml
	BUILDFLEET_TEST_STRICT=1 go test -race -count=1 -timeout 45m ./...

## proof: the reliability suite: 100 labelled PRs × 2 builders on ghsim and a
## Nomad agent under every fault scenario, drain time against GitHub's write
## budget (make test runs its short form: 3 PRs per scenario, under the race
## detector; the full form runs without it, as deployed, since it times the drain)
proof: nomad
	BUILDFLEET_PROOF=1 BUILDFLEET_PROOF_N=$${BUILDFLEET_PROOF_N:-100} BUILDFLEET_PROOF_SCENARIOS=$${BUILDFLEET_PROOF_SCENARIOS:-} \
	  go test -count=1 -timeout 120m -run '^TestProof$$' -v ./manager/
	BUILDFLEET_PROOF=1 BUILDFLEET_PROOF_N=$${BUILDFLEET_PROOF_N:-100} \
	  go test -count=1 -timeout 90m -run '^TestProof' -v ./cmd/buildfleet/

## bench: performance figures beside same-run baselines, one bounded run, written to BENCHMARKS.md
bench: nomad fixtures
	@mkdir -p $(BIN)
	rc=0; { BUILDFLEET_TEST_STRICT=1 go test -run '^$$' -bench . -benchtime 1x -count 1 -timeout 30m \
	    ./manager/ ./manager/fleet/ ./manager/status/ || rc=$$?; \
	  BUILDFLEET_TEST_STRICT=1 go test -run '^$$' -bench . -benchtime 3000x -count 1 -timeout 5m ./manager/webhook/ || rc=$$?; \
	} > $(BIN)/bench.out 2>&1; cat $(BIN)/bench.out; \
	go run ./scripts/benchreport -in $(BIN)/bench.out -out BENCHMARKS.md -nomad $(BUILDFLEET_NOMAD); exit $$rc

## demo: Nomad dev agent + GitHub simulator + manager, a labelled PR, results
demo: nomad runners build
	./scripts/demo.sh

clean:
	rm -rf $(BIN)

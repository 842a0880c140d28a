# union9p — see README.md. `make` builds; `make test` runs every test on a
# fresh machine (it installs what the tests need first).

GO      ?= go
BIN     ?= union9p
PKGS    := ./...

.PHONY: all build deps test unit vet vmtest vmtest-virtfs bench bench-tenants bench-guest bench-layers man demo demo-tenants fuzz torture load clean

all: build

# A static binary: the same file serves on the host and runs in guests.
build:
	CGO_ENABLED=0 $(GO) build -trimpath -o $(BIN) ./cmd/union9p

deps:
	./.ci/deps

# vet also checks arm64: Stat_t's field widths differ between
# architectures (Nlink is uint32 there), so no amd64-only type slips in.
vet:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt needed"; exit 1; }
	$(GO) vet $(PKGS)
	GOARCH=arm64 $(GO) vet $(PKGS)

unit: vet
	$(GO) test -count=1 -timeout 20m $(PKGS)

# Real-kernel tests: a Debian kernel under QEMU as the 9p client. The
# runner is built rather than run with `go run`, so its own last line
# ("N passed, M failed") is the last line of the output. The guest runs
# the suite on the default path, through the relay and on a union over
# the virtiofs transport (union9p as a vhost-user-fs device).
vmtest: build
	$(GO) build -o bin/vmtest ./test/vm
	./bin/vmtest -virtiofs -union9p $(CURDIR)/$(BIN)

# The VM suite with one more union over the virtfs transport (not in CI:
# QEMU's 9p server refuses FIFOs, sockets and device nodes there).
vmtest-virtfs: build
	$(GO) build -o bin/vmtest ./test/vm
	./bin/vmtest -virtfs -virtiofs -union9p $(CURDIR)/$(BIN)

test: deps unit vmtest

bench: build
	$(GO) run ./test/bench -union9p $(CURDIR)/$(BIN)

# One server with 1, 10 and 100 tenants against 100 separate servers
# (RSS, live heap, attach latency of tenant 100).
bench-tenants: build
	$(GO) run ./test/bench -union9p $(CURDIR)/$(BIN) -sections tenants -timeout 60m

# In a guest under emulation: union9p beside QEMU's own virtio-9p.
bench-guest: build
	$(GO) run ./test/bench/guest -union9p $(CURDIR)/$(BIN)

# union9p export/import of a 100k-file upper beside tar c/tar x of it.
bench-layers: build
	$(GO) run ./test/bench/layertools -union9p $(CURDIR)/$(BIN)

# The man page and completions, generated from the command definitions.
man: build
	mkdir -p bin
	./$(BIN) man > bin/union9p.8
	./$(BIN) completion bash > bin/union9p.bash
	./$(BIN) completion zsh > bin/_union9p
	./$(BIN) completion fish > bin/union9p.fish

demo: build
	$(GO) run ./test/vm/demo

# Two guests booting from two tenants of one server over one base.
demo-tenants: build
	$(GO) run ./test/vm/demo -tenants

# Longer fuzzing than the seed corpora run in `unit`: whole frames through
# a server, the typed request decoder alone, and sequences of union
# operations against the kernel's overlayfs (as root). FUZZTIME=10m for a
# long run.
FUZZTIME ?= 60s
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzFrame$$' -fuzztime $(FUZZTIME) ./p9srv
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeRequest$$' -fuzztime $(FUZZTIME) ./p9srv/wire
	$(GO) test -run '^$$' -fuzz '^FuzzUnionOps$$' -fuzztime $(FUZZTIME) ./test/difftest

# Crash torture: SIGKILL the server at 1000 random moments of a mixed
# workload and check the layers after each restart (CI runs a dozen).
torture:
	UNION9P_TORTURE_KILLS=$${UNION9P_TORTURE_KILLS:-1000} $(GO) test -count=1 -timeout 180m -run '^TestTorture$$' -v ./test/torture

# 64 connections of mixed operations for 5 minutes against one server on a
# unix socket; prints the server's fds and live heap every 10 s.
load: build
	$(GO) run ./test/load -union9p $(CURDIR)/$(BIN)

clean:
	rm -rf $(BIN) bin

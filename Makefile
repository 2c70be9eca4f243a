# orderseal — build, test, demo, bench, fuzz. Everything runs on loopback.
GO       ?= go
BIN      := bin
BINARIES := keygen cardholder merchant issuer carrier
FUZZTIME ?= 10s

.PHONY: all build test demo demo-postgres bench bench-quick bench-flood fuzz vet lint fmt-check clean fonts openapi postgres chromium web

all: build

build: web
	@mkdir -p $(BIN)
	@for b in $(BINARIES); do $(GO) build -o $(BIN)/$$b ./cmd/$$b || exit 1; done
	@echo "built: $(addprefix $(BIN)/,$(BINARIES))"

# The browser checkout's sealing program (cmd/checkoutwasm; its flags are
# merchant/checkout.BuildFlags, which the tests and the benchmark use) and Go's
# loader for it, which must come from the same toolchain: merchant serve
# -checkout $(BIN)/web serves both. Built, never committed.
web:
	@mkdir -p $(BIN)/web
	GOOS=js GOARCH=wasm $(GO) build -trimpath -tags=validator_novalidatefn -ldflags='-s -w' -gcflags=all=-l -gcflags=std= -gcflags=github.com/cloudflare/circl/...= \
		-o $(BIN)/web/checkout.wasm ./cmd/checkoutwasm
	gzip -9 -c $(BIN)/web/checkout.wasm > $(BIN)/web/checkout.wasm.gz
	@cp "$$($(GO) env GOROOT)/lib/wasm/wasm_exec.js" $(BIN)/web/wasm_exec.js

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

# go vet on every build the tree has: the default, the portable field
# arithmetic (-tags purego), a non-Linux host, and the SDK as WebAssembly.
vet:
	$(GO) vet ./...
	$(GO) vet -tags purego ./keygen/...
	GOOS=darwin $(GO) vet ./tstest/cluster/
	GOOS=js GOARCH=wasm $(GO) vet ./keygen ./order ./suite/... ./tools/sealwasm/ ./cmd/checkoutwasm/

# staticcheck at a pinned version, fetched through the module proxy by go run.
STATICCHECK ?= honnef.co/go/tools/cmd/staticcheck@v0.8.2
lint:
	$(GO) mod tidy -diff
	$(GO) run $(STATICCHECK) ./...

# Labels draw CJK names and addresses in Noto Sans CJK, found at run time
# (carrier/label): Debian's fonts-noto-cjk, installed here when missing.
NOTO_CJK := /usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc
fonts:
	@test -f $(NOTO_CJK) || { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y fonts-noto-cjk; }

# The PostgreSQL backends are tested against a real server (tstest/pgtest
# runs initdb and pg_ctl in a temp directory): Debian's postgresql,
# installed here when neither PATH nor /usr/lib/postgresql/*/bin has pg_ctl.
postgres:
	@command -v pg_ctl >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 || \
	{ apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y postgresql; }


# The browser tests (e2e TestBrowserCheckout) drive Debian's chromium
# headless with chromedp; installed here when missing. They fail without it.
chromium:
	@command -v chromium >/dev/null || { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium; }

test: fmt-check vet lint fonts postgres chromium
	$(GO) test -race -count=1 -timeout 20m ./...

demo: build fonts
	@KEEP=$(KEEP) bash scripts/demo.sh

# The demo on a throwaway PostgreSQL cluster (initdb in the demo's
# directory, as the postgres user when run as root; stopped and removed
# at the end), the merchant as three nodes on one database.
demo-postgres: build fonts postgres
	@DEMO_DB=postgres bash scripts/demo.sh

# Benchmarks: ratios against a baseline measured in the same process; the
# ratio table on stdout, bench/results.json, bench/report.md, bench/ratios.png.
bench:
	@$(GO) run ./tools/bench

bench-quick:
	@$(GO) run ./tools/bench -quick

# The flood figures alone (one cardholder floods the issuer while others
# buy; issue 16), merged into bench/results.json and bench/report.md.
bench-flood:
	@$(GO) run ./tools/bench -only flood

# Every fuzz target for FUZZTIME each (go test -fuzz runs one target at a
# time), minimising for at most FUZZMINIMIZETIME; a failure without a
# crasher is retried and never stops the run; the summary lists each
# target's executions (parser targets need MIN_EXECS, default 10000).
FUZZMINIMIZETIME ?= 10x
fuzz:
	@FUZZMINIMIZETIME=$(FUZZMINIMIZETIME) bash scripts/fuzz.sh $(FUZZTIME)

# Each daemon's OpenAPI document (DESIGN.md §11), written from its route
# table; each daemon's TestOpenAPI fails while a committed one is stale.
openapi:
	$(GO) run ./tools/apidoc

clean:
	rm -rf $(BIN)

# Chaos and soak runs of the real daemons on loopback (tools/stress,
# tstest/cluster). The last line of 'make chaos' is its verdict; repeat a
# run's kill schedule with make chaos CHAOS_ARGS='-seed N'.
.PHONY: chaos soak chaos-postgres
# make build's binaries, but for a merchant built to run on a controlled
# clock (-tags orderseal_testclock): the 30-minute issuer outage passes in
# seconds.
chaos: build
	@mkdir -p $(BIN)/chaos
	@for b in $(filter-out merchant,$(BINARIES)); do cp $(BIN)/$$b $(BIN)/chaos/$$b || exit 1; done
	@$(GO) build -tags orderseal_testclock -o $(BIN)/chaos/merchant ./cmd/merchant
	@$(GO) build -o $(BIN)/stress ./tools/stress
	@$(BIN)/stress chaos -bin $(BIN)/chaos $(CHAOS_ARGS)

# Issue 17's chaos run at full size: three merchant nodes on PostgreSQL,
# one killed with SIGKILL every few seconds, CHAOS_ORDERS orders (make test
# runs the same test with 150, under the race detector).
CHAOS_ORDERS ?= 5000
chaos-postgres: postgres
	ORDERSEAL_CHAOS_ORDERS=$(CHAOS_ORDERS) $(GO) test -count=1 -timeout 60m ./e2e -run '^TestPostgresChaos$$' -v

soak: build
	@$(GO) build -o $(BIN)/stress ./tools/stress
	@$(BIN)/stress soak -bin $(BIN) -duration 10m -clients 64 $(SOAK_ARGS)

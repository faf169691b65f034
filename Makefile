# The machine's own go1.26.8 has known crypto/tls, crypto/x509 and net/http
# vulnerabilities; the go command fetches go1.27.3 from the module proxy.
export GOTOOLCHAIN := go1.27.3

GO          ?= go
FUZZTIME    ?= 5s
STATICCHECK ?= honnef.co/go/tools/cmd/staticcheck@v0.8.2
BIN         := bin

.PHONY: run build test unit lint fuzz bench clean

## run: run the gateway on its embedded defaults (NTP on UDP 1123, NTS-KE on TCP 4460)
run:
	$(GO) run ./cmd/timegate

build:
	$(GO) build -o $(BIN)/ ./cmd/timegate ./cmd/gatectl

## test: everything CI runs — lint, unit + integration tests with -race, and a brief fuzz of every target
test: lint unit fuzz

unit:
	$(GO) test -race -count=1 -timeout 20m ./...

lint:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go')); \
	if [ -n "$$unformatted" ]; then echo "gofmt needed:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...
	scripts/govulncheck.sh

fuzz:
	FUZZTIME=$(FUZZTIME) scripts/fuzz.sh

bench:
	$(GO) test -run='^$$' -bench=. -benchmem ./...

clean:
	rm -rf $(BIN)

## load: timegate vs chronyd vs a bare batched echo, plain and NTS, loss-free rate and p99, 1 vs 2 workers, then a spoofed flood of 10M sources with RSS samples (root; about 10 min; scripts/load.sh)
.PHONY: load
load:
	scripts/load.sh

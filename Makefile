# The machine's own go1.26.8 has known crypto/tls, crypto/x509 and net/http
# vulnerabilities; the go command fetches go1.27.3 from the module proxy.
export GOTOOLCHAIN := go1.27.3

GO          ?= go
FUZZTIME    ?= 5s
STATICCHECK ?= honnef.co/go/tools/cmd/staticcheck@v0.8.2
BIN         := bin

.PHONY: run build test unit lint fuzz bench clean install

## run: run the gateway on its embedded defaults (NTP on UDP 1123, NTS-KE on TCP 4460);
## the built binary, not `go run`, so that its exit status is the make's
run: build
	$(BIN)/timegate

# Static, cgo-free binaries: no libc at run time, and privilege dropping can
# change every thread's capabilities (internal/privdrop).
build:
	CGO_ENABLED=0 $(GO) build -trimpath -o $(BIN)/ ./cmd/timegate ./cmd/gatectl

## test: everything CI runs — lint, unit + integration tests with -race, and a brief fuzz of every target
test: lint unit fuzz

unit:
	GO=$(GO) scripts/unit.sh

lint:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go')); \
	if [ -n "$$unformatted" ]; then echo "gofmt needed:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...
	$(GO) vet -tags purego ./siv/        # siv's crypto/aes fallback builds and vets
	GOARCH=arm64 $(GO) vet ./siv/       # ... and so on an architecture without the assembly
	GOARCH=arm $(GO) vet ./...          # 32-bit platforms build (portable UDP path, no kernel stamps)
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

## load-veth: issue 10's side by side through a veth pair between two network namespaces (server pinned to
## CPU 0 in one, load tool on CPU 1 in the other): one table of timegate, chronyd and the echo, plain, NTS, NTS-KE,
## NTP beside NTS-KE, 1 vs 2 workers; no spoofed flood (root; about 7 min; NETNS=1 scripts/load.sh)
.PHONY: load-veth
load-veth:
	NETNS=1 SKIP_SPOOF=1 scripts/load.sh

## accuracy: timegate beside a chronyd -x client of the same three NTS upstreams (chained chronyds serving
## true time + 0.5 s), probed alike, on loopback and over veth with 1 ms each way (tc netem, or without sch_netem
## the userspace delay line tests/delayline); per-stage error
## budget (root; about 4 min per topology; ACCURACY_RUNS=3 for three runs, ACCURACY_OUT=FILE for the report,
## ACCURACY_TOPOLOGIES=loopback|veth, ACCURACY_XLEAVE=1, ACCURACY_LIAR=1, ACCURACY_TG_CONF='txlead off')
.PHONY: accuracy
accuracy:
	$(GO) test -tags accuracy -run TestAccuracy -v -count=1 -timeout 60m ./tests/

## install: binaries, systemd unit (+ clockcontrol drop-in and rmem_max sysctl examples), sysusers/tmpfiles snippets and the sample
## config (kept if present); creates the timegate user when systemd-sysusers exists; enables nothing (root)
PREFIX      ?= /usr/local
SYSCONFDIR  ?= /etc
DESTDIR     ?=
install: build
	install -D -m 0755 $(BIN)/timegate $(DESTDIR)$(PREFIX)/bin/timegate
	install -D -m 0755 $(BIN)/gatectl $(DESTDIR)$(PREFIX)/bin/gatectl
	install -D -m 0644 dist/systemd/timegate.service $(DESTDIR)$(SYSCONFDIR)/systemd/system/timegate.service
	install -D -m 0644 dist/systemd/clockcontrol.conf $(DESTDIR)$(PREFIX)/share/doc/timegate/clockcontrol.conf
	install -D -m 0644 dist/sysctl/timegate-rmem.conf $(DESTDIR)$(PREFIX)/share/doc/timegate/sysctl-timegate-rmem.conf
	install -D -m 0644 dist/systemd/timegate.sysusers $(DESTDIR)$(SYSCONFDIR)/sysusers.d/timegate.conf
	install -D -m 0644 dist/systemd/timegate.tmpfiles $(DESTDIR)$(SYSCONFDIR)/tmpfiles.d/timegate.conf
	install -D -m 0644 README.md $(DESTDIR)$(PREFIX)/share/doc/timegate/README.md
	install -D -m 0644 timegate.conf.example $(DESTDIR)$(PREFIX)/share/doc/timegate/timegate.conf.example
	@if [ ! -e $(DESTDIR)$(SYSCONFDIR)/timegate/timegate.conf ]; then \
		install -D -m 0640 timegate.conf.example $(DESTDIR)$(SYSCONFDIR)/timegate/timegate.conf; fi
	@if [ -z "$(DESTDIR)" ] && command -v systemd-sysusers >/dev/null; then \
		systemd-sysusers $(SYSCONFDIR)/sysusers.d/timegate.conf; \
		chgrp timegate $(SYSCONFDIR)/timegate $(SYSCONFDIR)/timegate/timegate.conf; fi
	@if [ -z "$(DESTDIR)" ] && command -v systemd-tmpfiles >/dev/null; then \
		systemd-tmpfiles --create $(SYSCONFDIR)/tmpfiles.d/timegate.conf; fi
	@echo "installed; start with: systemctl daemon-reload && systemctl enable --now timegate"

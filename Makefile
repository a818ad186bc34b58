# Gatehouse. `make run` serves on the embedded SQLite default; `make test` runs every test that
# this machine can run (CI runs all of them: see .ci/run).
SHELL := /bin/bash
GO    ?= go
PKGS   = $(shell $(GO) list ./... | grep -v /e2e)
PG_URL ?= postgres://postgres@127.0.0.1:5432/test?sslmode=disable

# The local PostgreSQL and Redis, when they answer, are used by the tests without further setup.
ifeq ($(GATEHOUSE_TEST_POSTGRES),)
ifneq ($(shell pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null && echo up),)
export GATEHOUSE_TEST_POSTGRES := $(PG_URL)
endif
endif
ifeq ($(GATEHOUSE_TEST_REDIS),)
ifneq ($(shell redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null),)
export GATEHOUSE_TEST_REDIS := redis://127.0.0.1:6379/0
endif
endif

.PHONY: run mail mailpit build test test-unit test-property test-pg test-faults test-cluster e2e e2e-setup screenshots bench fuzz fuzz-short generate lint fmt

run: ## serve the portal on 127.0.0.1:8080 with the embedded SQLite default (GATEHOUSE_ADDR=127.0.0.1:9000 make run to move it)
	@echo "Gatehouse: open http://$${GATEHOUSE_ADDR:-127.0.0.1:8080}/ (mail goes to this log unless GATEHOUSE_SMTP_URL is set; see make mail)"
	$(GO) run ./cmd/gatehouse serve

MAILPIT_VERSION = v1.33.1
MAILPIT = $(HOME)/.cache/gatehouse/bin/mailpit
mailpit: ## build Mailpit (a local SMTP server with a web inbox) once, into ~/.cache/gatehouse/bin
	@test -x $(MAILPIT) || { echo "building Mailpit $(MAILPIT_VERSION) (a few minutes, once)"; GOBIN=$(HOME)/.cache/gatehouse/bin $(GO) install github.com/axllent/mailpit@$(MAILPIT_VERSION); }

mail: mailpit ## the portal with its mail delivered to Mailpit: inbox at http://127.0.0.1:8025
	@$(MAILPIT) --smtp 127.0.0.1:1025 --listen 127.0.0.1:8025 --quiet & mp=$$!; trap "kill $$mp" EXIT; \
	echo "Mailpit inbox: http://127.0.0.1:8025"; \
	GATEHOUSE_SMTP_URL=smtp://127.0.0.1:1025 $(GO) run ./cmd/gatehouse serve

build:
	$(GO) build -o bin/gatehouse ./cmd/gatehouse

test: ## every suite (lint, unit and integration on SQLite and PostgreSQL, property, fuzz, browser, cluster, faults), each even after one fails, then a summary
	@bash .ci/test-all.sh

test-unit:
	$(GO) test -race -count=1 $(PKGS)

PROPERTY_ROUNDS ?= 25
test-property: ## the rotation property test on PostgreSQL for many rounds (CI, or when PostgreSQL answers); it found a lock-order deadlock once
	@if [ -z "$$GATEHOUSE_TEST_POSTGRES" ]; then \
		if [ "$$CI" = "true" ]; then echo "test-property: CI needs GATEHOUSE_TEST_POSTGRES"; exit 1; fi; \
		echo "test-property: skipped (no PostgreSQL)"; \
	else GATEHOUSE_PROPERTY_ROUNDS=$(PROPERTY_ROUNDS) $(GO) test -race -count=1 -run 'TestRotationProperties/postgres' ./services/auth/; fi

test-pg: ## the store and HTTP suites on the local PostgreSQL
	GATEHOUSE_TEST_POSTGRES='$(PG_URL)' $(GO) test -race -count=1 $(PKGS)

test-faults: ## the PostgreSQL restart test: it restarts the local PostgreSQL, so it runs alone and last, in CI or when asked
	@if [ "$$CI" != "true" ] && [ "$$GATEHOUSE_FAULT_TESTS" != "1" ]; then \
		echo "test-faults: skipped (it restarts the local PostgreSQL; CI runs it, or GATEHOUSE_FAULT_TESTS=1 make test-faults)"; \
	else GATEHOUSE_FAULT_TESTS=1 $(GO) test -count=1 -run 'TestFault' -v ./cmd/gatehouse/ 2>&1 | tail -40; exit $${PIPESTATUS[0]}; fi

test-cluster: ## three instances over PgBouncer, PostgreSQL and a Redis of its own, with faults (kill -9, key rotation, disable, Redis restart); in CI, or GATEHOUSE_CLUSTER_TESTS=1 make test-cluster
	@if [ "$$CI" != "true" ] && [ "$$GATEHOUSE_CLUSTER_TESTS" != "1" ]; then \
		echo "test-cluster: skipped (some 45 s of every core; CI runs it, or GATEHOUSE_CLUSTER_TESTS=1 make test-cluster)"; \
	elif [ -z "$$GATEHOUSE_TEST_POSTGRES" ]; then echo "test-cluster: needs PostgreSQL (GATEHOUSE_TEST_POSTGRES), pgbouncer and redis-server"; exit 1; \
	else GATEHOUSE_CLUSTER_TESTS=1 $(GO) test -count=1 -timeout 5m -run 'TestCluster' -v ./cmd/gatehouse/ 2>&1 | grep -v '^        {'; exit $${PIPESTATUS[0]}; fi

e2e-setup:
	bash .ci/e2e-setup.sh

e2e: ## the Playwright suite in Chromium; prepares Chromium and the driver first (.ci/e2e-setup.sh)
	@if [ "$$CI" = "true" ]; then bash .ci/e2e-setup.sh; \
	elif ! bash .ci/e2e-setup.sh; then echo "e2e: skipped (.ci/e2e-setup.sh could not install Chromium or the Playwright driver: run it as root once)"; exit 0; fi
	$(GO) test -count=1 -timeout 10m ./e2e/

screenshots: ## rewrite docs/screenshots/*.png from the browser suite's SQLite run (the only way the suite writes under docs/)
	bash .ci/e2e-setup.sh
	E2E_DOC_SCREENSHOTS=1 $(GO) test -count=1 -timeout 10m -run '/sqlite' ./e2e/

bench: ## refresh (batched and not), /api/me, GET /devices and login on the local PostgreSQL, and the SQLite default beside its limit; prints tables (about 11 minutes)
	$(GO) run ./cmd/gatehouse-bench -database-url '$(PG_URL)'

FUZZTIME ?= 10s
fuzz: ## a run of every fuzz target (FUZZTIME each, 10s by default)
	@for p in ./handlers/ ./services/auth/ ./services/ratelimit/ ./services/mail/; do for t in $$($(GO) test -list 'Fuzz.*' $$p | grep ^Fuzz); do $(GO) test -run '^$$' -fuzz "^$$t$$" -fuzztime $(FUZZTIME) $$p || exit 1; done; done

# A count, not a duration: with a duration Go 1.26's fuzzing coordinator can report "context
# deadline exceeded" at the end of -fuzztime without any failing input (go.dev/issue/75804, fixed in
# Go 1.27); a count has no deadline to race. 3000 runs take 1 to 10 s a target here.
fuzz-short: ## what CI fuzzes: every target for 3000 runs beyond its committed corpus
	@$(MAKE) --no-print-directory fuzz FUZZTIME=3000x

generate:
	$(GO) tool templ generate

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); if [ -n "$$out" ]; then echo "gofmt needed: $$out"; exit 1; fi
	$(GO) vet ./...
	@if command -v staticcheck >/dev/null; then staticcheck ./...; else echo "lint: staticcheck not installed, skipped"; fi

fmt:
	gofmt -w $$(git ls-files '*.go')

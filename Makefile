# statusdash — every target creates the virtualenv and installs the package first.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: install setup certs check test bench demo clean prometheus browser sshd

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

## setup: .env with fresh secrets (never overwritten), data and vault directories
setup: $(STAMP)
	$(BIN)/python -m statusdash.devtools setup

## certs: CA, server certificate (localhost + this host), a client certificate for this host and a viewer
certs: setup
	$(BIN)/python -m statusdash.devtools certs

check: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports

test: $(STAMP)
	$(BIN)/python -m pytest -n 2 --dist loadgroup -q

bench: $(STAMP)
	$(BIN)/python -m bench

## demo: server (mTLS), a local agent and the reader, on embedded defaults, no questions asked
demo: certs
	$(BIN)/python -m statusdash.devtools demo

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .import_linter_cache

## prometheus: Debian's Prometheus for tests/server/test_prometheus_scrape.py (root, no prompt).
## The package's own service is kept from starting (policy-rc.d) and stopped if it runs: the test
## starts its own Prometheus on a free loopback port with its own config and data directory.
prometheus:
	@if command -v prometheus >/dev/null 2>&1; then \
	  echo "prometheus: $$(command -v prometheus)"; \
	else \
	  set -e; policy=/usr/sbin/policy-rc.d; made=; \
	  if [ ! -e $$policy ]; then printf '#!/bin/sh\nexit 101\n' > $$policy; chmod 755 $$policy; made=1; fi; \
	  trap '[ -z "$$made" ] || rm -f /usr/sbin/policy-rc.d' EXIT; \
	  apt-get update -qq; \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus; \
	fi
	@systemctl disable --now prometheus >/dev/null 2>&1 || true
	@service prometheus stop >/dev/null 2>&1 || true
## browser: Debian's Chromium for the status page's browser tests (apt only when it is missing)
browser:
	@if [ -x /usr/bin/chromium ]; then echo "chromium: $$(/usr/bin/chromium --version 2>/dev/null)"; \
	else DEBIAN_FRONTEND=noninteractive apt-get update -q \
	  && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium; fi
## sshd: Debian's OpenSSH server for tests/deploy (agent deploy over SSH; apt only when missing).
## The package's own service is kept from starting (policy-rc.d): the tests run their own sshd on
## a free loopback port with their own keys and config.
sshd:
	@if [ -x /usr/sbin/sshd ]; then echo "sshd: /usr/sbin/sshd"; \
	else \
	  set -e; policy=/usr/sbin/policy-rc.d; made=; \
	  if [ ! -e $$policy ]; then printf '#!/bin/sh\nexit 101\n' > $$policy; chmod 755 $$policy; made=1; fi; \
	  trap '[ -z "$$made" ] || rm -f /usr/sbin/policy-rc.d' EXIT; \
	  apt-get update -qq; \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends openssh-server; \
	fi

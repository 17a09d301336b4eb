# Two entry points, both idempotent and run as root on a fresh Debian/Ubuntu machine:
#   sudo make demo   -- install what is needed, start a local cluster, run a demo
#   sudo make test   -- install what is needed, run lint, type checks, layering and the test suite

VENV    ?= .venv
PY      := $(VENV)/bin/python
APT_PKGS := etcd-server etcd-client busybox-static docker-registry nftables iproute2 \
            crun runc skopeo umoci python3-venv python3-dev gcc curl bind9-dnsutils conntrack
STAMP   := $(VENV)/.installed

.PHONY: deps apt venv lint test test-fast demo demo-down bench clean

deps: apt venv

apt:
	@missing=""; for p in $(APT_PKGS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi
	@# Debian enables these services on install; kubelite starts its own on free ports.
	@systemctl disable --now etcd docker-registry >/dev/null 2>&1 || true

venv: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	@touch $(STAMP)

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

test: deps lint
	$(VENV)/bin/pytest -q -p no:cacheprovider

test-fast: venv
	$(VENV)/bin/pytest -q -x -p no:cacheprovider

demo: deps
	deploy/demo.sh

demo-down: venv
	$(VENV)/bin/kubelite down

# dnsperf and dnsmasq for bench/dns.py; dnsmasq-base is the binary without the Debian service,
# which would take port 53 from the cluster DNS. iperf3 for bench/services.py.
BENCH_APT_PKGS := dnsperf dnsmasq-base iperf3

bench: deps
	@missing=""; for p in $(BENCH_APT_PKGS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi
	$(PY) bench/api.py
	$(PY) bench/scheduler.py
	$(PY) bench/build.py
	$(PY) bench/runtime.py
	$(PY) bench/pods.py
	$(PY) bench/dns.py
	$(PY) bench/services.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache

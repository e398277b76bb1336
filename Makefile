# GRIMBOTS QI 500 toolkit. `make help` lists the targets.
#
# Every target installs what it needs: a fresh Debian machine with Python,
# make and git (as root) is enough.

SHELL        := /bin/bash
.SHELLFLAGS  := -euo pipefail -c
.DEFAULT_GOAL := help

VENV         ?= .venv
BIN          := $(CURDIR)/$(VENV)/bin
PYTHON       ?= python3
INVENTORY    ?= inventories/lab
# Molecule scenarios run by `make test`: the ones in SCENARIOS on Debian 13,
# those in SCENARIOS_DEBIAN12 on Debian 12. The whole topology runs twice:
# `phase3` (10 hosts) is the upgrade path 1 -> 2 -> 3 with data written and
# checked at each step, --check --diff, the phase guard, site.yml over the
# upgraded deployment with nothing changed, a rolling deploy under load and
# the failure drills; `site` (10 hosts, on Debian 12: Debian 12 coverage of
# every role) is site.yml on a fresh inventory straight to the end state,
# then verify, verify naming stopped parts, redis_rebalance.yml,
# app_server_remove.yml under writes, roles/redis's preflight. The small
# scenarios first, so that a broken role shows early.
# Not in the list, each runnable with `make test-scenario S=<name>`: redis_ha
# and patroni (their tiers, their preflight and verify cases run in `site`;
# redis_ha's Redis drills and rolling restart, patroni's phase-2 guard only
# there), phase2 (29 min; its tier runs in phase3's prepare), etcd, haproxy
# (16 min). docs/lab.md has the time of each.
SCENARIOS    ?= common redis phase1 phase3
SCENARIOS_DEBIAN12 ?= redis site
# Scenario and distro for `make test-scenario S=<name> [DISTRO=debian12]`.
S            ?= common
DISTRO       ?= debian13

export PATH             := $(BIN):$(PATH)
export ANSIBLE_CONFIG   := $(CURDIR)/ansible.cfg
export ANSIBLE_FORCE_COLOR := $(if $(CI),0,1)
export PY_COLORS        := $(if $(CI),0,1)

PLAYBOOK     := $(BIN)/ansible-playbook
LAB_PLAY     := $(PLAYBOOK) -i $(INVENTORY) playbooks/lab.yml

.PHONY: help setup venv controller images lab lab-up lab-down converge lint \
        test test-unit test-app test-molecule test-scenario clean-stale clean

help: ## List the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

# --- set-up ----------------------------------------------------------------

venv: $(VENV)/.installed ## Python venv with the pinned tools and the app

$(VENV)/.installed: requirements.txt app/pyproject.toml
	@if ! $(PYTHON) -m venv --help >/dev/null 2>&1 || ! $(PYTHON) -c 'import ensurepip' 2>/dev/null; then \
	  echo "installing python3-venv"; apt-get update -qq && apt-get install -y -qq python3-venv; fi
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.txt -e 'app[test]'
	touch $@

controller: venv ## Prepare this machine: podman, runc, debootstrap, test servers
	$(LAB_PLAY) --tags lab_host

images: controller ## Build the lab's base images (only when missing or changed)
	$(LAB_PLAY) --tags lab_images

setup: images ## Everything the lab and the tests need

# --- the lab ---------------------------------------------------------------

lab: setup ## Build the full lab, deploy the topology into it, verify it
	$(LAB_PLAY)
	$(PLAYBOOK) -i $(INVENTORY) playbooks/site.yml
	$(PLAYBOOK) -i $(INVENTORY) playbooks/verify.yml

lab-up: setup ## Build the lab's containers only (fresh, stale ones removed)
	$(LAB_PLAY)

converge: venv ## Deploy the topology into the running lab again
	$(PLAYBOOK) -i $(INVENTORY) playbooks/site.yml

.PHONY: verify
verify: venv ## Is the deployment healthy? Checks tier by tier, changes nothing (INVENTORY=...)
	$(PLAYBOOK) -i $(INVENTORY) playbooks/verify.yml

lab-down: venv ## Remove the lab's containers and network
	$(LAB_PLAY) -e lab_state=absent

# --- checks ----------------------------------------------------------------

lint: venv ## yamllint, ansible-lint (production profile), ruff
	$(BIN)/yamllint --strict .
	$(BIN)/ansible-lint
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

clean-stale: venv ## Remove Molecule containers and networks left by a killed run
	$(LAB_PLAY) -e lab_state=absent -e lab_label_value=molecule

test-unit: venv ## Unit tests of the toolkit's own plugins (topology and verify filters, podman connection)
	$(BIN)/pytest -q tests

test-app: venv ## The app's tests, against real servers they start themselves
	cd app && $(BIN)/pytest -q

test-molecule: setup clean-stale ## Every Molecule scenario
	@for s in $(SCENARIOS); do \
	  echo "=== molecule test -s $$s (debian13)"; \
	  MOLECULE_DISTRO=debian13 $(BIN)/molecule test -s $$s; \
	done
	@for s in $(SCENARIOS_DEBIAN12); do \
	  echo "=== molecule test -s $$s (debian12)"; \
	  MOLECULE_DISTRO=debian12 $(BIN)/molecule test -s $$s; \
	done

test-scenario: setup clean-stale ## One scenario: make test-scenario S=common DISTRO=debian12
	MOLECULE_DISTRO=$(DISTRO) $(BIN)/molecule test -s $(S)

test: setup lint test-unit test-app test-molecule ## Lint, unit tests, the app's tests, every Molecule scenario

# --- load test -------------------------------------------------------------

# `make loadtest` runs the Locust stages against the lab's HAProxy (lb1,
# HTTPS, the three app servers behind it), then the dedup audit
# (docs/loadtest.md). Another target: LOADTEST_HOST=http://...
# (loopback and the lab network only, unless LOADTEST_ARGS=--allow-any-host)
# and an audit command that reaches it (LOADTEST_AUDIT=, empty: no audit).
LOADTEST_HOST     ?= https://10.231.0.10
LOADTEST_STAGES   ?= 10,50,100,200
LOADTEST_DURATION ?= 60
LOADTEST_GATE     ?= phase1
# The gateway secret and the Telegram webhooks' master secret:
# GRIMBOTS_GATEWAY_SECRET and GRIMBOTS_TELEGRAM_WEBHOOK_SECRET from the environment, else this file.
LOADTEST_SECRETS  ?= inventories/lab/group_vars/lab/secrets.yml
LOADTEST_AUDIT    ?= podman exec grimbots-app1 grimbots-app audit --json --fail-on-stale
LOADTEST_ARGS     ?=

.PHONY: loadtest
loadtest: venv ## Locust stages against the lab app, gates + dedup audit (LOADTEST_HOST=...)
	$(BIN)/python loadtest/run.py --host '$(LOADTEST_HOST)' --stages '$(LOADTEST_STAGES)' \
	  --duration '$(LOADTEST_DURATION)' --gate '$(LOADTEST_GATE)' --secret-file '$(LOADTEST_SECRETS)' \
	  --audit-cmd '$(LOADTEST_AUDIT)' -- $(LOADTEST_ARGS)

clean: lab-down clean-stale ## Remove the lab, stale containers and the venv
	rm -rf $(VENV) .cache

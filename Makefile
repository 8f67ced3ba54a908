# football-prediction: every command a developer or CI runs. `make help` lists them.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

STACK := infra/local/stack.sh
ENV_FILE := .local/stack.env
VENV := .venv
WATCH_ADDR ?= 127.0.0.1
WATCH_PORT ?= 9000
FUNCTIONS := $(notdir $(wildcard functions/*))
# Every recipe that needs the local stack reads its environment from here.
LOAD_ENV = set -a; . ./$(ENV_FILE); set +a

.PHONY: help dev up stop services db test lint fmt clippy unit cfn-lint sqlx-prepare router-check coldstart clean-test-dbs

help: ## this list
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

services: ## start PostgreSQL, Redis and the AWS emulator (or reuse DATABASE_URL / REDIS_URL) and create the AWS resources
	@$(STACK) services

db: services ## apply migrations and load the demo data (demo league, test_user, test_admin) into the local database
	@cargo build --quiet -p fp-cli
	@$(LOAD_ENV); ./target/debug/fp db migrate && ./target/debug/fp db seed-demo

up: db ## run every function under `cargo lambda watch` on 127.0.0.1:9000, in the background; wait until /health answers
	@cargo build --quiet $(addprefix -p ,$(FUNCTIONS))
	@if [[ -f .local/watch.pid ]] && kill -0 "$$(cat .local/watch.pid)" 2>/dev/null; then echo "[dev] cargo lambda watch already running"; else \
	  $(LOAD_ENV); setsid $(VENV)/bin/cargo-lambda lambda watch --invoke-address $(WATCH_ADDR) --invoke-port $(WATCH_PORT) --env-file $(ENV_FILE) \
	    > .local/watch.log 2>&1 < /dev/null & echo $$! > .local/watch.pid; fi
	@for i in $$(seq 120); do curl -fsS -o /dev/null http://$(WATCH_ADDR):$(WATCH_PORT)/health/live && break; sleep 1; done
	@curl -sS http://$(WATCH_ADDR):$(WATCH_PORT)/health && echo && echo "[dev] up on http://$(WATCH_ADDR):$(WATCH_PORT) (logs: .local/watch.log; stop: make stop)"

dev: db ## set up everything and run the service in the foreground on 127.0.0.1:9000 (Ctrl-C to stop the functions)
	@cargo build --quiet $(addprefix -p ,$(FUNCTIONS))
	@$(LOAD_ENV); exec $(VENV)/bin/cargo-lambda lambda watch --invoke-address $(WATCH_ADDR) --invoke-port $(WATCH_PORT) --env-file $(ENV_FILE)

stop: ## stop what `make dev` / `make up` started
	@$(STACK) stop

test: services clean-test-dbs lint unit cfn-lint ## everything CI checks: fmt, clippy, unit and integration tests, cfn-lint

lint: fmt clippy

fmt:
	cargo fmt --all -- --check

clippy:
	cargo clippy --workspace --all-targets -- -D warnings

unit:
	@$(LOAD_ENV); cargo test --workspace --no-fail-fast

cfn-lint:
	$(VENV)/bin/cfn-lint template.yaml

clean-test-dbs: # databases left by earlier test runs
	@$(LOAD_ENV); psql "$$TEST_DATABASE_URL" -tAc "select datname from pg_database where datname like 'fp\_test\_%'" \
	  | while read -r d; do [[ -n "$$d" ]] && psql "$$TEST_DATABASE_URL" -qc "drop database if exists \"$$d\" with (force)"; done; true

sqlx-prepare: services ## regenerate .sqlx/ (the offline query data) after changing a query!
	@$(LOAD_ENV); cargo build --quiet -p fp-cli && ./target/debug/fp db migrate
	@rm -rf .sqlx && mkdir -p .sqlx
	@$(LOAD_ENV); touch shared/src/lib.rs functions/*/src/*.rs; SQLX_OFFLINE=false SQLX_OFFLINE_DIR=$(CURDIR)/.sqlx cargo check --workspace --all-targets --quiet
	@ls .sqlx | wc -l | xargs echo "[sqlx] queries prepared:"

coldstart: ## cold start of each function's release binary against a hello-world lambda_http binary (same profile)
	@infra/coldstart/run.sh

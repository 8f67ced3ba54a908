# football-prediction: every command a developer or CI runs. `make help` lists them.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

STACK := infra/local/stack.sh
ENV_FILE := .local/stack.env
VENV := .venv
WATCH_ADDR ?= 127.0.0.1
WATCH_PORT ?= 9000
# Instances per function that `cargo lambda watch` may run at once (Lambda scales out; one instance
# serialises every request of a function behind the previous one).
WATCH_CONCURRENCY ?= 4
# Rounds of each token race of `make attack`.
ATTACK_ROUNDS ?= 100
FUNCTIONS := $(notdir $(wildcard functions/*))
# Every recipe that needs the local stack reads its environment from here.
LOAD_ENV = set -a; . ./$(ENV_FILE); set +a

.PHONY: help dev up stop docs-assets services bins db test lint fmt clippy unit deny cfn-lint sqlx-prepare sqlx-check router-check coldstart coverage clean-test-dbs attack

help: ## this list
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

docs-assets: ## install the /docs page's pinned Swagger UI assets (npm ci; `make services` does it too)
	@$(STACK) docs

services: ## start PostgreSQL, Redis and the AWS emulator (or reuse DATABASE_URL / REDIS_URL) and create the AWS resources
	@$(STACK) services

# Every binary a developer runs (fp and the functions), built by one `cargo build`: one feature
# resolution, so `make db`, `make up`, `make dev` and `fp` share one compiled copy of each crate.
BINS := -p fp-cli $(addprefix -p ,$(FUNCTIONS))

bins: docs-assets ## build fp and every function (debug) in one cargo call
	@cargo build --quiet $(BINS)

db: services bins ## apply migrations and load the demo data (demo league, test_user, test_admin), and the football-data.co.uk history of HISTORY_DIR when set
	@$(LOAD_ENV); ./target/debug/fp db migrate && ./target/debug/fp db seed-demo
	@# HISTORY_DIR=<folder of football-data.co.uk CSVs>: real history too (competition from the files' Div)
	@if [[ -n "$${HISTORY_DIR:-}" ]]; then $(LOAD_ENV); ./target/debug/fp import "$$HISTORY_DIR"; fi

up: db ## run every function under `cargo lambda watch` on 127.0.0.1:9000, in the background; wait until /health answers (RELEASE=1: the binaries of `cargo lambda build --release`)
ifeq ($(RELEASE),1)
	@infra/local/serve-release.sh build $(FUNCTIONS)
	@infra/local/serve-release.sh start .local $(ENV_FILE) $(WATCH_PORT) $(WATCH_CONCURRENCY) $(FUNCTIONS)
endif
	@if [[ "$(RELEASE)" == 1 ]]; then true; elif [[ -f .local/watch.pid ]] && kill -0 "$$(cat .local/watch.pid)" 2>/dev/null; then echo "[dev] cargo lambda watch already running"; else \
	  $(LOAD_ENV); setsid $(VENV)/bin/cargo-lambda lambda watch --invoke-address $(WATCH_ADDR) --invoke-port $(WATCH_PORT) --concurrency $(WATCH_CONCURRENCY) --env-file $(ENV_FILE) \
	    > .local/watch.log 2>&1 < /dev/null & echo $$! > .local/watch.pid; fi
	@for i in $$(seq 120); do curl -fsS -o /dev/null http://$(WATCH_ADDR):$(WATCH_PORT)/health/live && break; sleep 1; done
	@curl -sS http://$(WATCH_ADDR):$(WATCH_PORT)/health && echo && echo "[dev] up on http://$(WATCH_ADDR):$(WATCH_PORT) (logs: .local/watch.log; stop: make stop)"

dev: ## set up everything and run the service in the foreground on 127.0.0.1:9000 (Ctrl-C to stop the functions); prints the time of each phase
	@infra/local/dev.sh $(WATCH_ADDR) $(WATCH_PORT) $(WATCH_CONCURRENCY)

attack: ## the hostile-client suite against the stack of `make up` (one line per attack; non-zero exit when one succeeds)
	@python3 infra/attack/attack.py --base http://$(WATCH_ADDR):$(WATCH_PORT) --rounds $(ATTACK_ROUNDS)

stop: ## stop what `make dev` / `make up` started
	@$(STACK) stop

test: services clean-test-dbs lint deny unit cfn-lint lint-infra ## everything CI checks: fmt, clippy, supply chain, unit and integration tests, cfn-lint, actionlint, sam validate

lint: fmt clippy

fmt:
	cargo fmt --all -- --check

clippy:
	cargo clippy --workspace --all-targets -- -D warnings

unit:
	@$(LOAD_ENV); cargo test --workspace --no-fail-fast

# Supply chain, offline: RustSec advisories from ../shared/advisory-db (ADVISORY_DB=... to use another
# copy), licences, bans and sources (deny.toml). `cargo fetch` first: cargo-deny reads the metadata of
# every platform's dependencies, which a host-only build has not downloaded.
deny: services
	@infra/local/advisory-db.sh
	@cargo fetch --quiet
	$(VENV)/bin/cargo-deny --offline check advisories licenses bans sources

cfn-lint:
	$(VENV)/bin/cfn-lint template.yaml

clean-test-dbs: # databases left by earlier test runs
	@$(LOAD_ENV); psql "$$TEST_DATABASE_URL" -tAc "select datname from pg_database where datname like 'fp\_test\_%'" \
	  | while read -r d; do [[ -n "$$d" ]] && psql "$$TEST_DATABASE_URL" -qc "drop database if exists \"$$d\" with (force)"; done; true

# Compile-time checked queries: every query of shared/, functions/ and cli/ is a sqlx macro, checked
# against .sqlx/ when SQLX_OFFLINE=true (.cargo/config.toml: every build, no database needed) or
# against a live database. Both targets below migrate the local database (LOCAL_DB_NAME lets a
# second checkout use its own) with fp-sqlx-migrate, which has no checked query and so builds
# whatever the state of .sqlx/ (fp needs .sqlx/ or a migrated database to build), then check the
# workspace against it with SQLX_OFFLINE_DIR set: the macros write one query-<hash>.json per query.
# Touching the crates' sources makes cargo expand the macros again (it does not see the database).
SQLX_SOURCES = $(wildcard shared/src/lib.rs cli/src/*.rs functions/*/src/*.rs api-gateway/src/*.rs)
define sqlx_generate
	@rm -rf "$(1)" && mkdir -p "$(1)"
	@$(LOAD_ENV); cargo run --quiet -p fp-sqlx-migrate
	@touch $(SQLX_SOURCES)
	@$(LOAD_ENV); SQLX_OFFLINE=false SQLX_OFFLINE_DIR="$(1)" cargo check --workspace --all-targets --quiet
endef

sqlx-prepare: services ## regenerate .sqlx/ (the offline query data) after changing a query or a migration!
	$(call sqlx_generate,$(CURDIR)/target/sqlx-prepare)
	@rm -rf .sqlx && mv target/sqlx-prepare .sqlx
	@ls .sqlx | wc -l | xargs echo "[sqlx] queries prepared:"

sqlx-check: services ## fail when .sqlx/ is not what `make sqlx-prepare` would write (no sqlx-cli needed)
	$(call sqlx_generate,$(CURDIR)/target/sqlx-check)
	@diff -r .sqlx target/sqlx-check >/dev/null || { diff -rq .sqlx target/sqlx-check | sed 's/^/[sqlx] /'; \
	  echo "[sqlx] .sqlx/ is stale: run make sqlx-prepare and commit .sqlx/"; exit 1; }
	@ls .sqlx | wc -l | xargs echo "[sqlx] .sqlx/ is current; queries:"

coverage: services ## line coverage per crate of the tests (cargo-llvm-cov), report in target/coverage; fails under the floor (COVERAGE_FLOORS)
	@infra/local/coverage.sh

coldstart: docs-assets ## cold start of each function's release binary against a hello-world lambda_http binary (same profile)
	@infra/coldstart/run.sh

# ============================================================================ infrastructure and operations
# Deploy tools (SAM CLI, actionlint) live in their own virtualenv: the SAM CLI pins boto3/botocore
# versions that must not move under the AWS emulator of .venv. Operations on a deployed
# environment need AWS credentials and the AWS CLI v2; none of them runs in `make test`.
DEPLOY_VENV := .local/venv-deploy
SAM := $(DEPLOY_VENV)/bin/sam
ACTIONLINT := $(DEPLOY_VENV)/bin/actionlint
ENV ?= dev
OPS := infra/ops/ops.sh
export SAM_CLI_TELEMETRY := 0

.PHONY: deploy-tools lint-infra actionlint sam-validate sam-build function-sizes deploy rollback backup-now restore restore-drill migrate check-health backups

$(DEPLOY_VENV)/.installed: infra/requirements-deploy.txt
	@[[ -x $(DEPLOY_VENV)/bin/python ]] || python3 -m venv $(DEPLOY_VENV)
	@$(DEPLOY_VENV)/bin/pip install --quiet --disable-pip-version-check -r infra/requirements-deploy.txt
	@touch $@

deploy-tools: $(DEPLOY_VENV)/.installed ## install the pinned SAM CLI and actionlint into .local/venv-deploy

lint-infra: actionlint cfn-lint sam-validate ## actionlint on the workflows, cfn-lint and `sam validate --lint` on the template

actionlint: $(DEPLOY_VENV)/.installed
	$(ACTIONLINT) -no-color

sam-validate: $(DEPLOY_VENV)/.installed
	AWS_DEFAULT_REGION=$${AWS_DEFAULT_REGION:-eu-west-1} $(SAM) validate --lint

sam-build: $(DEPLOY_VENV)/.installed docs-assets ## build every function of template.yaml for arm64 with cargo-lambda (sam build)
	PATH="$(CURDIR)/$(VENV)/bin:$(CURDIR)/$(DEPLOY_VENV)/bin:$$PATH" $(SAM) build

function-sizes: docs-assets ## release arm64 zip of every function (cargo lambda build) and its size; fails over 10 MB
	@infra/ops/function-sizes.sh

deploy: sam-build ## deploy an environment: make deploy ENV=dev|staging|prod (AWS credentials needed)
	$(SAM) deploy --config-env $(ENV)
	@$(OPS) $(ENV) check-health

rollback: ## point every API function's alias `live` back at its previous version: make rollback ENV=prod [FUNCTION=auth]
	@$(OPS) $(ENV) rollback $(FUNCTION)

backup-now: ## run the backup job now: make backup-now ENV=prod
	@$(OPS) $(ENV) backup-now

backups: ## list the latest backups of an environment
	@$(OPS) $(ENV) backups

restore: ## restore a backup: make restore ENV=prod BACKUP=<backup id> [TARGET=<database>] (see docs/operations.md)
	@$(OPS) $(ENV) restore $(BACKUP) $(TARGET)

restore-drill: ## restore the latest backup into a scratch database and compare it with the live one
	@$(OPS) $(ENV) restore-drill

migrate: ## apply the database migrations of the deployed migrate function now
	@$(OPS) $(ENV) migrate

check-health: ## GET /health/live and /health of a deployed environment: make check-health ENV=staging
	@$(OPS) $(ENV) check-health

# Failure drills (issue 11): a stack of their own under .local/drills (PostgreSQL with SCRAM,
# Redis, the emulator: never the machine's shared servers), the release build, a steady load, one
# failure at a time. Not part of `make test`: it builds every API function with fat LTO.
.PHONY: drills
drills: ## failure drills against the release build (own PostgreSQL/Redis/emulator); prints the table, fails on any other 5xx
	@infra/drills/run.sh

# Load test (infra/load: a small tokio + reqwest generator). Needs the stack of `make up`.
LOAD_USERS ?= 50
LOAD_SECONDS ?= 60
.PHONY: load
load: ## load test the local stack (run `make up` first): LOAD_USERS=50 LOAD_SECONDS=60; report in .local/load.json
	@cargo build --quiet --release -p fp-load
	@mkdir -p .local && ./target/release/fp-load --base-url http://$(WATCH_ADDR):$(WATCH_PORT) \
	  --users $(LOAD_USERS) --duration $(LOAD_SECONDS) --json .local/load.json

# Benchmark (issue 13): the guide's Locust mix closed loop against the release functions on a stack
# of their own (.local/bench), requests per server CPU-second and CPU ms per request per route, and
# the same for ../shared/tools/seedstack (the FastAPI design) with the ratio. Not part of `make test`.
# USERS=20 SECONDS=60 ROUTE_SECONDS=20 BENCH_NO_BUILD=1 BENCH_PROFILE=profiling BENCH_SEEDSTACK=start
.PHONY: bench-api
bench-api: docs-assets ## requests per server CPU-second on the Locust mix and CPU ms per route, vs seedstack (infra/bench/api.sh)
	@infra/bench/api.sh

# The API contract (issue 16): schemathesis, pinned, in its own virtualenv, with every check against
# the stack of `make up` as test_admin; exit status non-zero on any finding. Not part of `make test`.
CONTRACT_VENV := .local/venv-contract
$(CONTRACT_VENV)/.installed: infra/contract/requirements.txt
	@[[ -x $(CONTRACT_VENV)/bin/python ]] || python3 -m venv $(CONTRACT_VENV)
	@$(CONTRACT_VENV)/bin/pip install --quiet --disable-pip-version-check -r infra/contract/requirements.txt
	@touch $@

.PHONY: contract docs-check
contract: $(CONTRACT_VENV)/.installed ## schemathesis with all checks against `make up` (run it first); fails on any finding
	@WATCH_PORT=$(WATCH_PORT) infra/contract/run.sh

# The /docs page in a real headless browser: Debian's chromium driven by playwright-core (pinned in
# tests/browser/package-lock.json, no browser download). Against `make up`; saves docs/api-docs.png.
docs-check: ## the /docs page in headless Chromium against `make up`: every operation listed, login then GET /api/matches
	@command -v chromium >/dev/null || { apt-get install -y --no-install-recommends chromium >/dev/null || { echo "[docs-check] chromium is required (Debian: chromium)"; exit 1; }; }
	@cd tests/browser && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error >/dev/null
	@BASE_URL=http://$(WATCH_ADDR):$(WATCH_PORT) node tests/browser/docs-check.mjs

#!/usr/bin/env bash
# make contract: schemathesis (pinned in infra/contract/requirements.txt, its own venv under
# .local/) with every check against the stack of `make up`, as an admin. Exit status non-zero on
# any finding.
#
# Two passes. The feature flags change what the other operations answer (maintenance mode turns
# every write into a 503, closed registration into a 403): the first pass tests every operation
# but `PATCH /api/admin/flags`, the second that one alone; then the flags are put back to their
# defaults.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
BASE="${CONTRACT_BASE_URL:-http://127.0.0.1:${WATCH_PORT:-9000}}"
ST="$ROOT/.local/venv-contract/bin/schemathesis"
OUT="$ROOT/.local/contract"
mkdir -p "$OUT"
log() { printf '[contract] %s\n' "$*" >&2; }

curl -fsS -o /dev/null "$BASE/health/live" || { log "nothing answers on $BASE: run \`make up\` first"; exit 2; }
token() {
  curl -fsS -X POST "$BASE/api/auth/login" -H 'content-type: application/json' \
    -d '{"username":"test_admin","password":"test_password"}' \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])'
}
reset_flags() {
  curl -fsS -o /dev/null -X PATCH "$BASE/api/admin/flags" -H "authorization: Bearer $(token)" \
    -H 'content-type: application/json' \
    -d '{"registration_open":true,"maintenance_mode":false,"market_comparison":true,"strategies":{"statistical":true,"historical":true,"ml_model":true,"market":true}}'
}
reset_flags
# A flag change reaches every instance within the flags' cache TTL (at most 30 s).
sleep "${CONTRACT_FLAGS_SETTLE_SECS:-31}"

common=(--checks all --header "Authorization: Bearer $(token)" --seed "${CONTRACT_SEED:-1}"
        --max-examples "${CONTRACT_MAX_EXAMPLES:-30}" --workers "${CONTRACT_WORKERS:-2}"
        --request-timeout 30 --suppress-health-check too_slow,filter_too_much --generation-database none --no-color)
status=0
log "pass 1: every operation but PATCH /api/admin/flags ($BASE)"
PYTHONPATH="$ROOT/infra/contract" SCHEMATHESIS_HOOKS=contract_hooks "$ST" --config-file "$ROOT/infra/contract/schemathesis.toml" run "$BASE/openapi.json" "${common[@]}" --exclude-path /api/admin/flags \
  --report junit --report-junit-path "$OUT/pass1.xml" 2>&1 | tee "$OUT/pass1.log" || status=1
log "pass 2: PATCH /api/admin/flags"
PYTHONPATH="$ROOT/infra/contract" SCHEMATHESIS_HOOKS=contract_hooks "$ST" --config-file "$ROOT/infra/contract/schemathesis.toml" run "$BASE/openapi.json" "${common[@]}" --include-path /api/admin/flags \
  --report junit --report-junit-path "$OUT/pass2.xml" 2>&1 | tee "$OUT/pass2.log" || status=1
reset_flags || true
# The run changes accounts through the admin API (test_user demoted, promoted or deactivated):
# put the demo user back as `make db` left it, so the stack stays usable (make docs-check).
restore_demo_user() {
  local t id
  t="$(token)"
  id="$(curl -fsS "$BASE/api/admin/users?limit=100" -H "authorization: Bearer $t" \
    | python3 -c 'import json,sys; print(next(u["id"] for u in json.load(sys.stdin)["items"] if u["username"] == "test_user"))')"
  curl -fsS -o /dev/null -X PATCH "$BASE/api/admin/users/$id" -H "authorization: Bearer $t" \
    -H 'content-type: application/json' -d '{"role":"user","is_active":true}'
}
restore_demo_user || log "could not restore test_user (role user, active)"
if [[ $status -ne 0 ]]; then log "findings: see above and .local/contract/"; else log "clean"; fi
exit $status

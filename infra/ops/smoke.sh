#!/usr/bin/env bash
# Smoke tests against a deployed API (staging after each deploy; any URL):
#   infra/ops/smoke.sh https://abc123.execute-api.eu-west-1.amazonaws.com
# Checks what a user would notice first: liveness, readiness with the database and cache, the
# JSON 404, the OpenAPI document, the security headers, and a register -> login -> me round trip
# with a throwaway user. Exits non-zero at the first failure, saying which.
set -euo pipefail
URL="${1:?usage: smoke.sh <api base url>}"
URL="${URL%/}"
fail() { echo "[smoke] FAIL: $*" >&2; exit 1; }
ok() { echo "[smoke] ok: $*"; }
req() { # method path [body] [token] -> sets STATUS, BODY, HEADERS
  local method="$1" path="$2" body="${3:-}" token="${4:-}" hdr out
  hdr="$(mktemp)"; out="$(mktemp)"
  local args=(-sS --max-time 15 -X "$method" -D "$hdr" -o "$out" -w '%{http_code}' -H 'content-type: application/json')
  [[ -n "$body" ]] && args+=(--data "$body")
  [[ -n "$token" ]] && args+=(-H "authorization: Bearer $token")
  STATUS="$(curl "${args[@]}" "$URL$path")" || fail "$method $path: no answer"
  BODY="$(cat "$out")"; HEADERS="$(tr -d '\r' < "$hdr")"; rm -f "$hdr" "$out"
}
json() { python3 -c "import json,sys; print(json.loads(sys.argv[1])$2)" "$1"; }

req GET /health/live;  [[ "$STATUS" == 200 ]] || fail "/health/live answered $STATUS"; ok "/health/live 200"
req GET /health;       [[ "$STATUS" == 200 ]] || fail "/health answered $STATUS: $BODY"
[[ "$(json "$BODY" "['checks']['database']['status']")" == ok ]] || fail "database not ok: $BODY"
ok "/health $(json "$BODY" "['status']") (database ok, cache $(json "$BODY" "['checks']['cache']['status']"))"
for header in x-content-type-options x-frame-options strict-transport-security x-request-id; do
  grep -qi "^$header:" <<<"$HEADERS" || fail "missing header $header"
done
ok "security headers and request id"
req GET /no/such/path; [[ "$STATUS" == 404 ]] || fail "unknown path answered $STATUS"
[[ "$(json "$BODY" "['error']['code']")" == not_found ]] || fail "404 is not the JSON error: $BODY"
ok "JSON 404"
req GET /openapi.json; [[ "$STATUS" == 200 ]] || fail "/openapi.json answered $STATUS"; ok "/openapi.json"
req GET /api/matches;  [[ "$STATUS" == 401 ]] || fail "/api/matches without a token answered $STATUS"; ok "auth required"

user="smoke_$(date +%s)_$RANDOM"; password="Smoke-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
req POST /api/auth/register "{\"username\":\"$user\",\"password\":\"$password\"}"
[[ "$STATUS" == 201 ]] || fail "register answered $STATUS: $BODY"
req POST /api/auth/login "{\"username\":\"$user\",\"password\":\"$password\"}"
[[ "$STATUS" == 200 ]] || fail "login answered $STATUS: $BODY"
token="$(json "$BODY" "['access_token']")"
req GET /api/auth/me "" "$token"; [[ "$STATUS" == 200 ]] || fail "me answered $STATUS"
req GET /api/competitions "" "$token"; [[ "$STATUS" == 200 ]] || fail "competitions answered $STATUS"
ok "register -> login -> me -> competitions ($user)"
echo "[smoke] passed against $URL"

#!/usr/bin/env bash
# Operations on a deployed environment, with the AWS CLI (credentials from the caller's
# environment: a profile, SSO or the CI's OIDC role). Called by the Makefile:
#   infra/ops/ops.sh <env> rollback [function]   point the alias `live` back at the previous version
#   infra/ops/ops.sh <env> backup-now            run the backup job now, wait for its answer
#   infra/ops/ops.sh <env> restore <id> [db]     restore backup <id> into database [db] (created when
#                                                missing; default: the configured, empty, database)
#   infra/ops/ops.sh <env> restore-drill         restore the latest backup into a scratch database and compare
#   infra/ops/ops.sh <env> migrate               apply the migrations now
#   infra/ops/ops.sh <env> check-health          GET /health and /health/live of the deployed API
#   infra/ops/ops.sh <env> backups               list the backups (ids) in the bucket
set -euo pipefail

ENV="${1:?usage: ops.sh <dev|staging|prod> <command> [arg]}"
CMD="${2:?command}"
ARG="${3:-}"
ARG2="${4:-}"
case "$ENV" in dev|staging|prod) ;; *) echo "unknown environment: $ENV" >&2; exit 2 ;; esac
STACK="football-prediction-$ENV"
PREFIX="football-prediction-$ENV"
API_FUNCTIONS=(health auth matches predictions admin)
log() { printf '[ops %s] %s\n' "$ENV" "$*" >&2; }

output() { # a stack output by key
  aws cloudformation describe-stacks --stack-name "$STACK" \
    --query "Stacks[0].Outputs[?OutputKey=='$1'].OutputValue" --output text
}

invoke() { # invoke a function's live alias synchronously, print the answer, fail on a function error
  local function="$1" payload="$2" out
  out="$(mktemp)"
  log "invoking $function:live with $payload"
  local err
  err="$(aws lambda invoke --function-name "$function" --qualifier live --cli-binary-format raw-in-base64-out \
    --cli-read-timeout 900 --payload "$payload" --query FunctionError --output text "$out")"
  cat "$out"; echo
  rm -f "$out"
  if [[ "$err" != "None" && -n "$err" ]]; then log "FAILED ($err)"; return 1; fi
}

rollback_one() { # alias live -> the published version before the one it points at now
  local function="$PREFIX-$1" current previous
  # A CodeDeploy deployment still shifting traffic is stopped and rolled back by CodeDeploy itself.
  current="$(aws lambda get-alias --function-name "$function" --name live --query FunctionVersion --output text)"
  previous="$(aws lambda list-versions-by-function --function-name "$function" \
    --query "Versions[?Version!='\$LATEST'].Version" --output text | tr '\t' '\n' | sort -n | awk -v c="$current" '$1 < c' | tail -1)"
  if [[ -z "$previous" ]]; then log "$function: no version before $current"; return 1; fi
  log "$function: live $current -> $previous"
  aws lambda update-alias --function-name "$function" --name live --function-version "$previous" \
    --routing-config '{"AdditionalVersionWeights":{}}' >/dev/null
}

case "$CMD" in
  rollback)
    for id in $(aws deploy list-deployments --application-name "$(aws cloudformation describe-stack-resource \
        --stack-name "$STACK" --logical-resource-id ServerlessDeploymentApplication \
        --query StackResourceDetail.PhysicalResourceId --output text)" \
        --include-only-statuses InProgress Ready --query deployments --output text 2>/dev/null); do
      log "stopping CodeDeploy deployment $id (auto rollback)"
      aws deploy stop-deployment --deployment-id "$id" --auto-rollback-enabled >/dev/null
    done
    if [[ -n "$ARG" ]]; then rollback_one "$ARG"; else for f in "${API_FUNCTIONS[@]}"; do rollback_one "$f"; done; fi
    log "rolled back; the stack still describes the new code: fix forward or redeploy the previous tag"
    ;;
  backup-now) invoke "$PREFIX-backup" '{"mode":"backup"}' ;;
  restore)
    [[ "$ARG" =~ ^[A-Za-z0-9_.-]+$ ]] || { echo "usage: make restore ENV=$ENV BACKUP=<backup id> [TARGET=<database>]" >&2; exit 2; }
    if [[ -n "$ARG2" ]]; then
      [[ "$ARG2" =~ ^[a-z_][a-z0-9_]*$ ]] || { echo "TARGET must be a plain database name" >&2; exit 2; }
      invoke "$PREFIX-backup" "{\"mode\":\"restore\",\"backup_id\":\"$ARG\",\"target_database\":\"$ARG2\"}"
    else
      invoke "$PREFIX-backup" "{\"mode\":\"restore\",\"backup_id\":\"$ARG\"}"
    fi ;;
  restore-drill) invoke "$PREFIX-backup" '{"mode":"verify"}' ;;
  migrate) invoke "CodeDeployHook_$PREFIX-migrate" '{}' ;;
  backups) # backups/<id>/manifest.json marks a complete backup
    aws s3 ls "s3://$(output BackupBucketName)/backups/" --recursive | awk '$4 ~ /manifest\.json$/ {split($4, p, "/"); print $1, $2, p[2]}' | sort | tail -40 ;;
  check-health)
    url="$(output ApiUrl)"
    log "$url"
    curl -fsS --max-time 10 "$url/health/live" >/dev/null && log "live: ok"
    body="$(curl -sS --max-time 10 -w '\n%{http_code}' "$url/health")"
    code="${body##*$'\n'}"; echo "${body%$'\n'*}"
    [[ "$code" == 200 ]] || { log "/health answered $code"; exit 1; }
    ;;
  *) echo "unknown command: $CMD" >&2; exit 2 ;;
esac

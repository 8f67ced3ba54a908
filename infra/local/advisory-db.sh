#!/usr/bin/env bash
# Mirrors the RustSec advisory database of ../shared/advisory-db (or $ADVISORY_DB) to where
# cargo-deny looks for it offline: <db-path>/advisory-db-3157b0e258782691, the directory cargo-deny
# names after https://github.com/rustsec/advisory-db. cargo-deny reads the HEAD commit's date of
# that directory (to refuse a stale database), so the mirror is a git repository with one commit
# dated like the newest advisory's file. The data stays outside the project's repository
# (.local/ is git-ignored). Idempotent: a mirror whose files match is left as it is.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
SRC="${ADVISORY_DB:-$ROOT/../shared/advisory-db}"
DEST="$ROOT/.local/advisory-dbs/advisory-db-3157b0e258782691"
[[ -d "$SRC/crates" ]] || { echo "[advisories] no advisory database at $SRC (set ADVISORY_DB)" >&2; exit 1; }
mkdir -p "$DEST"
rsync -a --delete --exclude .git "$SRC/" "$DEST/"
cd "$DEST"
[[ -d .git ]] || git init -q
git add -A
if ! git diff --cached --quiet || ! git rev-parse -q --verify HEAD >/dev/null; then
  newest="$(find "$SRC/crates" -name '*.md' -printf '%T@\n' | sort -n | tail -1 | cut -d. -f1)"
  date="@${newest:-$(date +%s)}"
  GIT_AUTHOR_DATE="$date" GIT_COMMITTER_DATE="$date" git -c user.name=advisory-db -c user.email=advisory-db@localhost \
    commit -q --allow-empty -m "mirror of $SRC"
fi
echo "[advisories] $(find crates -name 'RUSTSEC-*.md' | wc -l) advisories, as of $(git show -s --format=%cI HEAD)"

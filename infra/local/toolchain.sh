#!/usr/bin/env bash
# Makes the toolchain named by rust-toolchain.toml available without a download when this machine's
# rustup has the same release under another name (`stable`): rustup cannot reach its servers on a
# machine whose only network is the package registries. Idempotent; does nothing when the named
# toolchain is installed, or when it is not the installed stable (rustup then reports the mismatch).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
want="$(sed -n 's/^channel *= *"\(.*\)"/\1/p' "$ROOT/rust-toolchain.toml")"
command -v rustup >/dev/null || exit 0
if rustup toolchain list | grep -q "^$want"; then exit 0; fi
stable_version="$(RUSTUP_TOOLCHAIN=stable rustc --version 2>/dev/null | awk '{print $2}')"
if [[ "$stable_version" == "$want" ]]; then
  # `rustup toolchain link` refuses official names like 1.95.0; a toolchain directory under that
  # name is what rustup itself would have installed, so point one at the same release.
  sysroot="$(RUSTUP_TOOLCHAIN=stable rustc --print sysroot)"
  host="$(RUSTUP_TOOLCHAIN=stable rustc -vV | sed -n 's/^host: //p')"
  echo "[toolchain] the installed stable is $want: making it available under that name"
  ln -sfn "$sysroot" "${RUSTUP_HOME:-$HOME/.rustup}/toolchains/$want-$host"
else
  echo "[toolchain] rust-toolchain.toml wants $want; installed stable is ${stable_version:-none}" >&2
fi

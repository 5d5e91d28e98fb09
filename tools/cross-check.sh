#!/usr/bin/env bash
# Build and run tests/arch/coro_selftest.c natively and for aarch64 (under
# qemu-user), so the hand-written context switch of both architectures is
# exercised on an x86_64 host. Needs gcc-aarch64-linux-gnu and qemu-user
# (installed with apt-get if missing). Exits non-zero if any run fails.
#
# Usage: tools/cross-check.sh        (from any directory)
# Environment: CC (native compiler, default gcc),
#              CROSS_CC (default aarch64-linux-gnu-gcc), OPTS (default "-O2 -O0").
set -u

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CC="${CC:-gcc}"
CROSS_CC="${CROSS_CC:-aarch64-linux-gnu-gcc}"
OPTS="${OPTS:--O2 -O0}"
CFLAGS=(-std=gnu11 -g -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes
	-Wno-unused-parameter -D_GNU_SOURCE -I"$ROOT")
SRC=("$ROOT/tests/arch/coro_selftest.c" "$ROOT/runtime/coro.c")

say() { printf 'cross-check: %s\n' "$*"; }

as_root() {
	if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

install_pkgs() {
	say "installing $*"
	export DEBIAN_FRONTEND=noninteractive
	as_root apt-get install -y -q "$@" >/dev/null ||
		{ as_root apt-get update -q >/dev/null && as_root apt-get install -y -q "$@" >/dev/null; }
}

find_qemu() {
	command -v qemu-aarch64 || command -v qemu-aarch64-static || true
}

# ctx_<arch>.S for the machine a compiler targets.
ctx_for() {
	case "$("$1" -dumpmachine)" in
	x86_64-*) echo "$ROOT/runtime/ctx_x86_64.S" ;;
	aarch64-*) echo "$ROOT/runtime/ctx_aarch64.S" ;;
	*) return 1 ;;
	esac
}

HOST="$(uname -m)"
missing=()
command -v "$CROSS_CC" >/dev/null || missing+=(gcc-aarch64-linux-gnu)
[ "$HOST" = aarch64 ] || [ -n "$(find_qemu)" ] || missing+=(qemu-user)
if [ ${#missing[@]} -gt 0 ]; then
	install_pkgs "${missing[@]}" || { say "FAILED to install ${missing[*]}"; exit 1; }
fi
QEMU="$(find_qemu)"

TMP="$(mktemp -d "${TMPDIR:-/tmp}/ringlet-cross.XXXXXX")"
trap 'rm -rf "$TMP"' EXIT

failures=0
# build_and_run <label> <compiler> <extra flags> <runner...>
build_and_run() {
	local label="$1" cc="$2" extra="$3"
	shift 3
	local ctx bin="$TMP/coro_selftest-$label"
	ctx="$(ctx_for "$cc")" || { say "$label: no context switch for $("$cc" -dumpmachine)"; failures=$((failures + 1)); return; }
	# shellcheck disable=SC2206 # $extra is a list of flags
	local cmd=("$cc" "${CFLAGS[@]}" $extra "${SRC[@]}" "$ctx" -lpthread -o "$bin")
	say "$label: build: ${cmd[*]#"$ROOT/"}"
	if ! "${cmd[@]}"; then
		say "$label: BUILD FAILED"
		failures=$((failures + 1))
		return
	fi
	say "$label: run: ${*:+$* }$bin"
	local out rc
	out="$("$@" "$bin" 2>&1)"
	rc=$?
	printf '%s\n' "$out" | sed 's/^/    /'
	if [ $rc -ne 0 ]; then
		say "$label: RUN FAILED (exit $rc)"
		failures=$((failures + 1))
	else
		say "$label: ok"
	fi
}

say "source tree: $ROOT"
say "native: $("$CC" --version | head -n1) ($("$CC" -dumpmachine))"
say "cross:  $("$CROSS_CC" --version | head -n1)"
if [ "$HOST" != aarch64 ]; then
	say "qemu:   ${QEMU:-none} ($("$QEMU" --version 2>/dev/null | head -n1))"
fi

for opt in $OPTS; do
	build_and_run "native$opt" "$CC" "$opt"
done
for opt in $OPTS; do
	if [ "$HOST" = aarch64 ]; then
		build_and_run "aarch64$opt" "$CROSS_CC" "$opt -static"
	else
		build_and_run "aarch64$opt" "$CROSS_CC" "$opt -static" "$QEMU"
	fi
done

if [ $failures -ne 0 ]; then
	say "$failures build/run(s) FAILED"
	exit 1
fi
say "all runs passed"

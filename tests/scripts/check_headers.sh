#!/usr/bin/env bash
# Every public header compiles alone, as a user's first #include, under
# strict C11 (gcc and clang: -std=c11 -Wall -Wextra -Werror -pedantic) and
# C++17 (g++, and clang++ where installed); every header that declares
# functions wraps them in extern "C" (RLT_EXTERN_C_BEGIN); and a C++
# program that includes <ringlet.h> links against the library and runs a
# task (what a wrong linkage would break).
#
#   check_headers.sh INCLUDE_DIR LIB_DIR [SANITIZER_FLAGS]
# (the sanitizer builds' library needs their flags to link)
set -u
inc=$1 lib=$2 san=${3:-}
san=${san//;/ }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0 n=0

compilers=()
for c in "gcc -std=c11 -x c" "gcc -std=c17 -x c" "clang -std=c11 -x c" "g++ -std=c++17 -x c++" "clang++ -std=c++17 -x c++"; do
	if command -v "${c%% *}" >/dev/null; then
		compilers+=("$c")
	elif [ "${c%% *}" = gcc ] || [ "${c%% *}" = g++ ]; then
		echo "FAIL: ${c%% *} is not installed" >&2
		fail=1
	else
		echo "note: ${c%% *} is not installed: not checked with it" >&2
	fi
done

cd "$inc" || exit 1
for h in ringlet.h ringlet/*.h; do
	for c in "${compilers[@]}"; do
		n=$((n + 1))
		# shellcheck disable=SC2086
		if ! printf '#include <%s>\nint rlt_header_check_dummy;\n' "$h" |
			$c -Wall -Wextra -Werror -pedantic -I"$inc" -fsyntax-only - 2>"$tmp/err"; then
			echo "FAIL: <$h> alone under ${c% -x*}:" >&2
			head -5 "$tmp/err" >&2
			fail=1
		fi
	done
	if grep -q 'RLT_API' "$h" && ! grep -q 'RLT_EXTERN_C_BEGIN' "$h"; then
		echo "FAIL: <$h> declares functions without RLT_EXTERN_C_BEGIN/END (extern \"C\")" >&2
		fail=1
	fi
done

cat >"$tmp/link.cpp" <<'CPP'
#include <ringlet.h>
#include <cstdio>

static void *child(void *arg) { return arg; }

static void *root(void *)
{
	static int x = 42;
	rlt_task *t = rlt_spawn(child, &x, nullptr);
	void *r = nullptr;
	if (!t || rlt_join(t, &r) != 0 || r != &x)
		return rlt_fail(-EIO);
	return &x;
}

int main()
{
	void *res = nullptr;
	int rc = rlt_run(root, nullptr, nullptr, &res);
	std::printf("rc=%d %s\n", rc, res ? "result" : "no result");
	return rc == 0 && res ? 0 : 1;
}
CPP
n=$((n + 1))
# shellcheck disable=SC2086
if ! g++ -std=c++17 -Wall -Wextra -Werror $san -I"$inc" "$tmp/link.cpp" -o "$tmp/link" \
	-L"$lib" -Wl,-rpath,"$lib" -lringlet 2>"$tmp/err"; then
	echo "FAIL: a C++ program using <ringlet.h> does not link against $lib/libringlet.so:" >&2
	head -5 "$tmp/err" >&2
	fail=1
elif ! out=$("$tmp/link" 2>&1) || [ "$out" != "rc=0 result" ]; then
	echo "FAIL: the C++ program ran: $out" >&2
	fail=1
fi

[ $fail -eq 0 ] && echo "ok: $n header compilations and a C++ program"
exit $fail

#!/usr/bin/env bash
# `cmake --install` into a temporary prefix, then use the result the way a
# user would (issue 14: missing piece 6 and defect 1):
#   - headers, libraries, ringlet.pc, the CMake package, and the manual
#     (README.md, docs/, examples/) under share/doc/ringlet/;
#   - an installed example built with `pkg-config --cflags --libs ringlet`
#     and with find_package(ringlet) + ringlet::ringlet_shared, each run;
#   - both builds compile the user's code with -fstack-clash-protection.
#
#   check_install.sh BUILD_DIR SOURCE_DIR
set -u
build=$1 src=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
prefix=$tmp/prefix
fail=0
bad() { echo "FAIL: $*" >&2; fail=1; }

cmake --install "$build" --prefix "$prefix" >"$tmp/install.log" 2>&1 || {
	cat "$tmp/install.log" >&2
	bad "cmake --install failed"
	exit 1
}
libdir=$(dirname "$(find "$prefix" -name 'libringlet.so' | head -1)")
[ -n "$libdir" ] && [ -d "$libdir" ] || { bad "no libringlet.so installed"; exit 1; }
doc=$prefix/share/doc/ringlet
for f in include/ringlet.h include/ringlet/task.h "${libdir#"$prefix"/}/libringlet.a" \
	"${libdir#"$prefix"/}/pkgconfig/ringlet.pc" "${libdir#"$prefix"/}/cmake/ringlet/ringletConfig.cmake" \
	share/doc/ringlet/README.md; do
	[ -e "$prefix/$f" ] || bad "not installed: $f"
done
for f in "$src"/docs/*.md; do
	[ -e "$doc/docs/$(basename "$f")" ] || bad "not installed: share/doc/ringlet/docs/$(basename "$f")"
done
for f in "$src"/examples/*.c; do
	[ -e "$doc/examples/$(basename "$f")" ] || bad "not installed: share/doc/ringlet/examples/$(basename "$f")"
done

# An installed example, built as a user would. gather_values prints "9 16".
example=$doc/examples/gather_values.c
want="9 16"

export PKG_CONFIG_PATH=$libdir/pkgconfig
cflags=$(pkg-config --cflags ringlet) || bad "pkg-config --cflags ringlet"
libs=$(pkg-config --libs ringlet) || bad "pkg-config --libs ringlet"
case " $cflags " in *" -fstack-clash-protection "*) ;; *) bad "ringlet.pc's Cflags lack -fstack-clash-protection: $cflags" ;; esac
# shellcheck disable=SC2086
if cc -std=c11 -D_POSIX_C_SOURCE=200809L -Wall -Werror $cflags "$example" -o "$tmp/ex-pc" $libs \
	-Wl,-rpath,"$libdir" 2>"$tmp/err"; then
	out=$("$tmp/ex-pc" 2>&1) && [ "$out" = "$want" ] || bad "the pkg-config build printed: $out"
else
	bad "building an installed example with pkg-config:"
	head -10 "$tmp/err" >&2
fi

mkdir -p "$tmp/app"
cat >"$tmp/app/CMakeLists.txt" <<CMAKE
cmake_minimum_required(VERSION 3.18)
project(app C)
find_package(ringlet REQUIRED)
add_executable(app $example)
target_link_libraries(app PRIVATE ringlet::ringlet_shared)
CMAKE
if cmake -S "$tmp/app" -B "$tmp/app/build" -DCMAKE_PREFIX_PATH="$prefix" \
	-DCMAKE_EXPORT_COMPILE_COMMANDS=ON >"$tmp/cmake.log" 2>&1 &&
	cmake --build "$tmp/app/build" >>"$tmp/cmake.log" 2>&1; then
	grep -q -- -fstack-clash-protection "$tmp/app/build/compile_commands.json" ||
		bad "find_package(ringlet) does not give users -fstack-clash-protection"
	out=$(LD_LIBRARY_PATH=$libdir "$tmp/app/build/app" 2>&1) && [ "$out" = "$want" ] ||
		bad "the find_package build printed: $out"
else
	bad "building an installed example with find_package(ringlet):"
	tail -15 "$tmp/cmake.log" >&2
fi

[ $fail -eq 0 ] && echo "ok: installed into a temporary prefix; the manual under share/doc/ringlet; an example built with pkg-config and with find_package, both with -fstack-clash-protection"
exit $fail

#!/bin/sh
# SPDX-License-Identifier: MIT
#
# Builds a plugin out of tree, as docs/plugins.md tells a plugin author to:
# install walcast into a temporary prefix, compile the tutorial's example.c
# with nothing but `pkg-config --cflags walcast`, and check the result the
# way walcastd would load it.
#
# usage: run.sh BUILD_DIR SOURCE_DIR LIBDIR
# environment (ctest sets it; defaults for a manual run): CMAKE, PKG_CONFIG,
# CC, NM, LOADER_CFLAGS (e.g. the sanitizer flags the build used),
# LOAD_INSTALLED (0: only inspect the installed plugins, do not dlopen them)
set -eu

build=$1
src=$2
libdir=$3
CMAKE=${CMAKE:-cmake}
PKG_CONFIG=${PKG_CONFIG:-pkg-config}
CC=${CC:-cc}
NM=${NM:-nm}
LOADER_CFLAGS=${LOADER_CFLAGS:-}
LOAD_INSTALLED=${LOAD_INSTALLED:-1}

fail() {
        echo "plugin-oot: $*" >&2
        exit 1
}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/walcast-plugin-oot.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
trap 'exit 1' HUP INT TERM

# 1. install, as a user would (quietly: only failures matter here)
"$CMAKE" --install "$build" --prefix "$tmp/prefix" >"$tmp/install.log" 2>&1 ||
        { cat "$tmp/install.log" >&2; fail "cmake --install failed"; }
cmp -s "$src/lib/include/walcast/plugin.h" \
        "$tmp/prefix/include/walcast/plugin.h" ||
        fail "installed plugin.h differs from lib/include/walcast/plugin.h"

# PKG_CONFIG_LIBDIR, not only PKG_CONFIG_PATH: the search must not fall back
# to a walcast.pc of some earlier system-wide install
pcdir=$tmp/prefix/$libdir/pkgconfig
[ -f "$pcdir/walcast.pc" ] || fail "no walcast.pc in $pcdir"
pc() {
        PKG_CONFIG_LIBDIR=$pcdir PKG_CONFIG_PATH='' "$PKG_CONFIG" "$@"
}
cflags=$(pc --cflags walcast)
case $cflags in
*"$tmp/prefix/include"*) ;;
*) fail "pkg-config --cflags walcast gives \"$cflags\", not the install prefix" ;;
esac
plugindir=$(pc --variable=plugindir walcast)
[ "$plugindir" = "$tmp/prefix/$libdir/walcast/plugins" ] ||
        fail "plugindir is \"$plugindir\""

# 2. the tutorial's listing is the shipped example, word for word
sed -n '/^<!-- begin example.c -->$/,/^<!-- end example.c -->$/p' \
        "$src/docs/plugins.md" | sed '1,2d;$d' | sed '$d' >"$tmp/example.c"
[ -s "$tmp/example.c" ] || fail "no example.c listing in docs/plugins.md"
cmp -s "$tmp/example.c" "$src/plugins/example/example.c" ||
        fail "docs/plugins.md's example.c differs from plugins/example/example.c"

# 3. build it out of tree: strict C99, the tutorial's command otherwise
# (word splitting of $cflags is intended)
# shellcheck disable=SC2086
"$CC" -std=c99 -pedantic -Wall -Wextra -Werror -shared -fPIC $cflags \
        -o "$tmp/example.so" "$tmp/example.c" ||
        fail "the tutorial's example.c does not build out of tree"
# shellcheck disable=SC2086
"$CC" -std=c99 -pedantic -Wall -Wextra -Werror $LOADER_CFLAGS $cflags \
        -o "$tmp/loader" "$src/tests/plugin-oot/loader.c" -ldl ||
        fail "the loader does not build against the installed header"

# 4. exports: the entry symbol and nothing of ours besides (names with a
# leading underscore belong to the toolchain: _init, __bss_start, ...)
check_exports() {
        exports=$("$NM" -D --defined-only "$1" | awk '$NF !~ /^_/ { print $NF }' |
                tr '\n' ' ')
        [ "$exports" = "walcast_plugin_entry " ] ||
                fail "$1 exports \"$exports\", not walcast_plugin_entry alone"
        "$NM" -D --defined-only "$1" | grep -q ' T walcast_plugin_entry$' ||
                fail "$1: walcast_plugin_entry is not a function"
}
check_exports "$tmp/example.so"
for so in jsonl.so example.so; do
        [ -f "$plugindir/$so" ] || fail "$so not installed in $plugindir"
        check_exports "$plugindir/$so"
done

# 5. load them as walcastd would
if [ "$LOAD_INSTALLED" = 1 ]; then
        "$tmp/loader" "$tmp/example.so" "$plugindir/jsonl.so" \
                "$plugindir/example.so" || fail "loading failed"
else
        "$tmp/loader" "$tmp/example.so" || fail "loading failed"
fi
echo "plugin-oot: ok"

#!/bin/sh
# bootstrap.sh - set up cebox on a Debian 12 machine: install what the build
# and the tests need (when run as root; otherwise print the apt-get line),
# generate the build system, configure, build, and run the bundled example
# under `cebox run`.
#
#   ./bootstrap.sh [CONFIGURE-OPTIONS...]
#
# Environment: CEBOX_SKIP_DEMO=1 builds without running the example.
set -eu
cd "$(dirname "$0")"

# Debian packages: the toolchain (g++ for the C++ test program), autotools, and the three libraries
# (libunwind for stacks, uthash for tables, cmocka for the tests) and libdw
# (elfutils: `cebox report` symbolizes stacks with it).
PACKAGES="gcc g++ make autoconf automake libtool pkg-config libunwind-dev uthash-dev libcmocka-dev libdw-dev"
# The real programs `make check` runs under cebox (tests/real_programs.sh).
PACKAGES="$PACKAGES sqlite3 lua5.4 python3 perl gawk jq gzip git coreutils bash"

missing=""
for p in $PACKAGES; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed"; then
        missing="$missing $p"
    fi
done

if [ -n "$missing" ]; then
    if [ "$(id -u)" -eq 0 ]; then
        echo "bootstrap: installing:$missing"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        # shellcheck disable=SC2086
        apt-get install -y -qq $missing
    else
        echo "bootstrap: missing packages:$missing" >&2
        echo "bootstrap: install them with: sudo apt-get install -y$missing" >&2
        exit 1
    fi
fi

autoreconf -fi
./configure "$@"
make -j"$(nproc)"

# The main job on the bundled example: a Lua program that outgrows the
# 32 MB slot, gets NULL from malloc, and handles it.
if [ "${CEBOX_SKIP_DEMO:-0}" != 1 ]; then
    echo
    echo "\$ ./cebox run lua5.4 examples/grow.lua"
    ./cebox run lua5.4 examples/grow.lua
fi

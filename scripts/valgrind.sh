#!/usr/bin/env bash
# valgrind memcheck of a representative run: scripts/valgrind-workload.js (sockets on
# loopback, a few hundred datagrams with control data, error paths, a worker thread, exit
# with a socket open) against a Debug build of the addon (cmake-js, build-cmake/), so that
# every frame has a file and line.
#
#   scripts/valgrind.sh        # needs dist/ (npm run valgrind builds it first) and valgrind
#
# Fails on any memcheck error (invalid read/write, use of uninitialised memory, a jump into
# unmapped code) and on any definitely lost block, whoever's frames they are: Node 20 itself
# runs clean under memcheck, so no suppression file is needed. If a Node update brings V8
# noise, add a suppression file for exactly that (--suppressions=), never a filter on the
# output. Also fails if a socket is still open at exit: environment teardown must close it.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

out=$root/build-cmake
addon=$out/build/Debug/ip6sock.node
log=$out/valgrind.log

command -v valgrind >/dev/null || { echo "valgrind.sh: valgrind is missing (apt-get install valgrind)" >&2; exit 1; }
[ -f dist/lib/index.js ] || { echo "valgrind.sh: dist/ is missing: run npx tsc -p tsconfig.build.json" >&2; exit 1; }

echo "valgrind.sh: building $addon"
node_modules/.bin/cmake-js compile --out "$out/build" --debug --parallel "$(nproc)" --log-level warn

# node-gyp-build's own override (see scripts/test-asan.sh): load the Debug build.
export IP6SOCK_PREBUILD=$out
loaded=$(node -p "require('node-gyp-build').resolve(process.argv[1])" "$root")
if [ "$loaded" != "$addon" ]; then
  echo "valgrind.sh: node-gyp-build loads $loaded, not $addon" >&2
  exit 1
fi

echo "valgrind.sh: memcheck, log in $log"
status=0
valgrind --tool=memcheck --error-exitcode=99 \
  --leak-check=full --show-leak-kinds=definite --errors-for-leak-kinds=definite \
  --track-fds=yes --num-callers=40 --log-file="$log" \
  node scripts/valgrind-workload.js || status=$?

grep -E 'ERROR SUMMARY|definitely lost' "$log" || true
if [ "$status" -ne 0 ]; then
  cat "$log" >&2
  echo "valgrind.sh: failed (exit $status), see above" >&2
  exit 1
fi
if grep -E 'Open AF_INET6? socket' "$log" >&2; then
  echo "valgrind.sh: sockets left open at exit" >&2
  exit 1
fi
echo "valgrind.sh: clean"

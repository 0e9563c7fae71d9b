#!/usr/bin/env bash
# Builds the addon with AddressSanitizer + UndefinedBehaviorSanitizer (cmake-js, into
# build-asan/) and runs the native-facing jest tests against it:
#
#   scripts/test-asan.sh                      # every test whose imports reach lib/core/native.ts
#   scripts/test-asan.sh test/ns/udp.test.ts     # or the jest arguments you give
#   scripts/test-asan.sh --script scripts/fuzz-native.js --seconds 60
#                                             # or a node script (the native fuzz harness)
#
# Needs dist/ (some tests run the compiled library in child processes: npm run test:asan
# builds it first), cmake, a C++ compiler and patchelf.
#
# How the sanitized addon gets loaded, and why this way:
# - node is not instrumented, so the ASan runtime must be in the process before anything
#   else. LD_PRELOAD would do that, but it is inherited by every child the tests start
#   (ip, tcpdump, python3, socat), and ASan then reports those programs' own bugs (iproute2's
#   `ip route get` trips strncpy-param-overlap). Instead build-asan/bin/node is a copy of
#   node with the runtime added as its first DT_NEEDED: jest, its workers and every node
#   child the tests spawn (they use process.execPath) carry ASan; nothing else does.
# - IP6SOCK_PREBUILD=<dir> is node-gyp-build's own override (<PACKAGE_NAME>_PREBUILD): it
#   then loads <dir>/build/{Release,Debug}/*.node instead of the package's build/Release.
#   lib/core/native.ts needs no change and node-gyp's build stays untouched. The script checks
#   the override took effect before running anything.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

out=$root/build-asan
addon=$out/build/Debug/ip6sock.node
asan_node=$out/bin/node
logs=$out/logs

echo "test-asan: building $addon"
node_modules/.bin/cmake-js compile --out "$out/build" --debug --parallel "$(nproc)" \
  --CDIP6SOCK_SANITIZE=ON --log-level warn

# The sanitizer runtime the addon was linked against (libasan.so.N for GCC).
runtime=$(readelf -d "$addon" | sed -n 's/.*NEEDED.*\[\(lib[a-z_]*asan[^]]*\)\].*/\1/p' | head -n1)
if [ -z "$runtime" ]; then
  echo "test-asan: $addon links no ASan runtime; build it with GCC (CMAKE_CXX_COMPILER=g++)" >&2
  exit 1
fi
command -v patchelf >/dev/null || { echo "test-asan: patchelf is missing (apt-get install patchelf)" >&2; exit 1; }
mkdir -p "$out/bin"
cp "$(readlink -f "$(command -v node)")" "$asan_node.tmp"
patchelf --add-needed "$runtime" "$asan_node.tmp"
mv "$asan_node.tmp" "$asan_node"

unset LD_PRELOAD
export PATH="$out/bin:$PATH"
export IP6SOCK_PREBUILD=$out
# ASan reports go to files, one per process, so that none is lost in a child's captured
# stderr. (GCC's separate UBSan runtime ignores log_path: its reports go to stderr, which
# jest shows, and end the process, which fails the test.)
# detect_leaks=0: Node and V8 do not free everything at exit, and LeakSanitizer cannot tell
# their blocks from ours; leaks are valgrind's part (scripts/valgrind.sh).
# allow_user_segv_handler=0: V8's WebAssembly trap handler would otherwise take SIGSEGV
# over and let the process die silently (a jump into an unloaded addon, for one).
rm -rf "$logs"
mkdir -p "$logs"
export ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:allow_user_segv_handler=0:detect_stack_use_after_return=1:check_initialization_order=1:strict_string_checks=1:log_path=$logs/asan"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"

loaded=$("$asan_node" -e "
  const load = require('node-gyp-build');
  const file = load.resolve(process.argv[1]);
  load(process.argv[1]);
  process.stdout.write(file);
" "$root")
if [ "$loaded" != "$addon" ]; then
  echo "test-asan: node-gyp-build loads $loaded, not $addon (does it still honour IP6SOCK_PREBUILD?)" >&2
  exit 1
fi

script=()
if [ "${1:-}" = "--script" ]; then
  shift
  script=("$@")
elif [ "$#" -eq 0 ]; then
  # Every test file whose module graph reaches lib/core/native.ts, so new socket tests are picked
  # up without a list to maintain. lib/ and examples/ must be roots for jest to see the graph.
  set -- --roots '<rootDir>/test' '<rootDir>/lib' '<rootDir>/examples' --findRelatedTests lib/core/native.ts
fi

status=0
# A hung run (an open handle) must fail inside the CI budget rather than eat it.
if [ "${#script[@]}" -gt 0 ]; then
  echo "test-asan: running ${script[*]} with $addon"
  timeout -k 10 "${IP6SOCK_ASAN_TIMEOUT:-600}" "$asan_node" "${script[@]}" || status=$?
else
  echo "test-asan: running jest with $addon"
  timeout -k 10 "${IP6SOCK_ASAN_TIMEOUT:-600}" "$asan_node" node_modules/jest/bin/jest.js "$@" || status=$?
fi

shopt -s nullglob
reports=("$logs"/*)
if [ "${#reports[@]}" -gt 0 ]; then
  for f in "${reports[@]}"; do
    echo "===== $f" >&2
    cat "$f" >&2
  done
  echo "test-asan: ${#reports[@]} sanitizer report(s), see above" >&2
  exit 1
fi
if [ "$status" -eq 124 ]; then echo "test-asan: jest did not finish within ${IP6SOCK_ASAN_TIMEOUT:-600} s" >&2; fi
exit "$status"

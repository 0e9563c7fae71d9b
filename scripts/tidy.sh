#!/usr/bin/env bash
# clang-tidy over native/ with the committed check list (.clang-tidy), using the
# compile_commands.json of the cmake-js development build (build-cmake/build/).
#
#   scripts/tidy.sh                        # every file of native/sources.txt
#   scripts/tidy.sh native/socket.cc       # or just these
#
# Every finding is an error (WarningsAsErrors in .clang-tidy). Set CLANG_TIDY to use
# another binary (clang-tidy-16, ...).
set -euo pipefail
cd "$(dirname "$0")/.."

tidy=${CLANG_TIDY:-clang-tidy}
command -v "$tidy" >/dev/null || { echo "tidy.sh: $tidy is missing (apt-get install clang-tidy)" >&2; exit 1; }

# Configuring is enough: CMake writes compile_commands.json then.
db=build-cmake/build
node_modules/.bin/cmake-js configure --out "$db" --debug --log-level warn >/dev/null

if [ "$#" -eq 0 ]; then
  mapfile -t files < <(grep -v -e '^#' -e '^[[:space:]]*$' native/sources.txt)
  set -- "${files[@]}"
fi
# One process per file, as many at once as there are CPUs: napi.h makes each one slow.
# ("N warnings generated" counts the headers' own, which the filter hides: not ours.)
printf '%s\n' "$@" | xargs -P "$(nproc)" -I{} "$tidy" -p "$db" --quiet {} 2> >(grep -v 'warnings generated\.$' >&2)
echo "tidy.sh: clean ($# files)"

#!/usr/bin/env bash
# Builds the stripped N-API prebuilds that ship in the npm package:
#   prebuilds/linux-x64/ip6sock.glibc.node     native compiler
#   prebuilds/linux-arm64/ip6sock.glibc.node   Debian's aarch64 cross compiler (g++-aarch64-linux-gnu)
# node-gyp-build loads them at install time, so users on these platforms need no compiler.
#
# Each architecture builds in its own staging copy under build/ (prebuildify runs
# `node-gyp rebuild` in its cwd), so the developer's build/Release/ip6sock.node, which
# node-gyp-build prefers over prebuilds/, is never replaced by a stripped or foreign binary.
#
# Usage: scripts/prebuild.sh [x64] [arm64]   (default: both)
# Environment: npm_config_nodedir (Node's headers; nothing is downloaded),
#   IP6SOCK_CROSS_PREFIX (default aarch64-linux-gnu-).
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"

archs=("$@")
[ "${#archs[@]}" -gt 0 ] || archs=(x64 arm64)
cross="${IP6SOCK_CROSS_PREFIX:-aarch64-linux-gnu-}"
prebuildify="$root/node_modules/.bin/prebuildify"
[ -x "$prebuildify" ] || { echo "prebuild: prebuildify is missing: run npm ci first" >&2; exit 1; }

# N-API headers are the same for every Node version: use the running Node's own (its
# prefix's include/node, /usr for Debian's nodejs) rather than letting node-gyp download them.
if [ -z "${npm_config_nodedir:-}" ]; then
  prefix="$(node -p 'require("path").resolve(process.execPath, "../..")')"
  if [ -f "$prefix/include/node/node_api.h" ]; then export npm_config_nodedir="$prefix"; fi
fi

# Both compilers take every core; node-gyp reads JOBS.
export JOBS="${JOBS:-max}"
# libstdc++ stays dynamic. Linked statically (-static-libstdc++) it would drop the need for
# GCC 11's libstdc++ (GLIBCXX_3.4.29, from std::vector in GCC 12's headers) but pull in
# glibc 2.32/2.36 symbols (__libc_single_threaded, arc4random) from Debian 12's
# libstdc++.a. glibc 2.28 (fcntl64) is the floor either way, as it is Node 20's own.

build_arch() {
  local arch="$1" stage="$root/build/prebuild-$1"
  rm -rf "$stage" "$root/prebuilds/linux-$arch"
  mkdir -p "$stage"
  # What node-gyp needs and nothing else; node-addon-api resolves from the repo's
  # node_modules by walking up from build/.
  cp -r "$root/binding.gyp" "$root/package.json" "$root/native" "$stage/"

  local args=(--napi --strip --tag-libc --arch "$arch" --platform linux --out "$root")
  local env=()
  if [ "$arch" != "$(node -p process.arch)" ]; then
    for tool in gcc g++ strip; do
      command -v "${cross}$tool" >/dev/null || {
        echo "prebuild: ${cross}$tool not found (Debian: apt-get install g++-aarch64-linux-gnu)" >&2
        exit 1
      }
    done
    # gyp's make generator takes the target toolchain from CC/CXX/LINK/AR.
    env=(CC="${cross}gcc" CXX="${cross}g++" LINK="${cross}g++" AR="${cross}ar")
    args+=(--strip-bin "${cross}strip")
  fi
  echo "prebuild: linux-$arch"
  (cd "$stage" && env "${env[@]}" "$prebuildify" "${args[@]}")
  rm -rf "$stage"
  ls -l "$root/prebuilds/linux-$arch/"
}

for arch in "${archs[@]}"; do
  case "$arch" in
    x64 | arm64) build_arch "$arch" ;;
    *) echo "prebuild: unsupported arch $arch (x64, arm64)" >&2; exit 1 ;;
  esac
done

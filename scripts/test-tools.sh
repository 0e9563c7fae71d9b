#!/usr/bin/env bash
# The system tools the test suite drives, checked before any test runs (npm test's pretest).
#
# Namespace tests build hosts with `ip`, look at sockets with `ss`, ping across links, watch
# the wire with tcpdump, talk to an independent peer written in Python (cbor2 for GRASP) and
# craft packets with an independent encoder (scapy), tune sysctls, drop capabilities with
# setpriv and, for the bench's smoke run, compile the C baseline and pin it with taskset. As root on a Debian-like machine the missing ones are
# installed with apt-get (set IP6SOCK_NO_INSTALL=1 to only report them); otherwise they are
# reported in one line and the tests go on (without root the namespace tests skip anyway).
set -uo pipefail

# command (or python module, as "python3:module") and the Debian package that brings it
tools=(
  ip:iproute2
  ss:iproute2
  ping:iputils-ping
  tcpdump:tcpdump
  sysctl:procps
  setpriv:util-linux
  taskset:util-linux
  mkfifo:coreutils
  cc:gcc
  make:make
  python3:python3
  python3:cbor2:python3-cbor2
  python3:scapy:python3-scapy
)

missing=()
packages=()
for entry in "${tools[@]}"; do
  IFS=: read -r what module package <<<"$entry"
  if [ -z "$package" ]; then
    package=$module
    module=
  fi
  if [ -n "$module" ]; then
    # Debian's python3 modules import only under the system interpreter, which the tests use.
    /usr/bin/python3 -c "import $module" 2>/dev/null && continue
    missing+=("python3 module $module ($package)")
  else
    command -v "$what" >/dev/null 2>&1 && continue
    missing+=("$what ($package)")
  fi
  case " ${packages[*]-} " in *" $package "*) ;; *) packages+=("$package") ;; esac
done

[ "${#missing[@]}" -eq 0 ] && exit 0

if [ "$(id -u)" -eq 0 ] && [ -z "${IP6SOCK_NO_INSTALL:-}" ] && command -v apt-get >/dev/null 2>&1; then
  echo "ip6sock tests: installing what they need: ${packages[*]}"
  export DEBIAN_FRONTEND=noninteractive
  if apt-get update -qq >/dev/null && apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null; then
    exit 0
  fi
  echo "ip6sock tests: apt-get could not install ${packages[*]}; the tests that need them will fail" >&2
  exit 0
fi

# One line, before any test: what is missing and how to get it.
list=$(printf '%s, ' "${missing[@]}")
echo "ip6sock tests: missing ${list%, }; the tests that need them fail (as root: apt-get install ${packages[*]})" >&2
exit 0

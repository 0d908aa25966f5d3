#!/usr/bin/env bash
# Builds a real OpenNebula oned 3.2 (+ mm_sched and the Ruby dummy/auth drivers) on Debian 12 as
# shared/perf/oned-3.2-baseline.md section 1 describes it, for side-by-side runs
# (bench/same-day.py --oned LABEL=DEST/one). Nothing of it enters stratusd or its tests.
#
#   bench/oned-3.2/build.sh [DEST]              # default DEST=/work/oned-3.2
#   ONED_OPT=-O2 bench/oned-3.2/build.sh /work/oned-3.2/O2
#
# Source: OpenNebula's one-3.2 tip 1e05957c from a local bare mirror ($ONE_GIT) plus StratusLab's 12
# patches (StratusLab/one, opennebula/tar/src/main/patches, applied in name order with -p1 as their
# maven-patch-plugin did) from $STRATUSLAB_GIT; then our Debian 12 fixes (debian12-build-fixes.patch:
# OpenSSL 3's opaque EVP_MD_CTX; Sequel 5 in the quota driver). Compiled with the SConstruct's own
# flags (-g -Wall, no -O: what StratusLab's `scons mysql=yes sqlite=no` produced) plus -std=gnu++11
# (libxml2's headers pull in ICU, which needs C++11) and -fpermissive; ONED_OPT adds e.g. -O2.
# SConstruct is Python 2: scons 3.1.2 from PyPI runs under pyenv's Python 2.7.
# Result: DEST/src (source + build), DEST/one (ONE_LOCATION: bin/oned, bin/mm_sched, etc/, var/),
# configured by configure.py (SQLite, dummy IM/VMM/TM, AUTH_MAD --authz quota --authn
# default,dummy,plain, DEBUG_LEVEL 3, mm_sched every 10 s, port $PORT).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
dest="$(realpath -m "${1:-/work/oned-3.2}")"
one_git="${ONE_GIT:-/work/.mirror/OpenNebula+one/repo}"
one_commit=1e05957cb2080cb76902df892f4e61e10d5f3b31
stratuslab_git="${STRATUSLAB_GIT:-/work/.mirror/StratusLab+one/repo}"
stratuslab_commit=4617ba2067ee254a2aa31e3290c77b02642d0751
python2="${PYTHON2:-$HOME/.pyenv/versions/2.7.18/bin/python}"
port="${PORT:-12633}"

for repo in "$one_git" "$stratuslab_git"; do
  git --git-dir="$repo" rev-parse -q --verify HEAD >/dev/null ||
    { echo "build.sh: no git repository at $repo (bring it with the fetch tool: github:OpenNebula/one, github:StratusLab/one)" >&2; exit 1; }
done
[ -x "$python2" ] || { echo "build.sh: Python 2.7 missing at $python2 (pyenv install 2.7.18, or set PYTHON2)" >&2; exit 1; }

packages=(g++ libxmlrpc-c++8-dev libsqlite3-dev libxml2-dev libssl-dev ruby ruby-sequel ruby-sqlite3)
missing=()
for p in "${packages[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  echo "build.sh: installing ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
fi

mkdir -p "$dest"
if [ ! -x "$dest/scons-py27/bin/scons" ]; then
  "$python2" -m pip install -q --target "$dest/scons-py27" scons==3.1.2
fi

rm -rf "$dest/src" "$dest/stratuslab-patches"
mkdir -p "$dest/src" "$dest/stratuslab-patches"
git --git-dir="$one_git" archive "$one_commit" | tar -x -C "$dest/src"
git --git-dir="$stratuslab_git" archive "$stratuslab_commit" opennebula/tar/src/main/patches |
  tar -x -C "$dest/stratuslab-patches" --strip-components=5
cd "$dest/src"
for p in $(ls "$dest"/stratuslab-patches/*.patch | LC_ALL=C sort); do
  echo "build.sh: StratusLab patch $(basename "$p")"
  patch -p1 -s --no-backup-if-mismatch < "$p"
done
echo "build.sh: our Debian 12 fixes"
patch -p1 -s --no-backup-if-mismatch < "$here/debian12-build-fixes.patch"

echo "build.sh: scons (log: $dest/build.log)"
CXXFLAGS="-std=gnu++11 -fpermissive ${ONED_OPT:-}" PYTHONPATH="$dest/scons-py27" \
  nice -n 10 "$python2" "$dest/scons-py27/bin/scons" -j2 sqlite=yes mysql=no > "$dest/build.log" 2>&1 ||
  { tail -30 "$dest/build.log" >&2; exit 1; }

rm -rf "$dest/one"
./install.sh -d "$dest/one" > "$dest/install.log" 2>&1 || { tail -30 "$dest/install.log" >&2; exit 1; }
python3 "$here/configure.py" "$dest/one" "$port"
echo "build.sh: oned 3.2 installed in $dest/one (ONE_LOCATION); port $port"
echo "build.sh: run it with: bench/same-day.py --oned oned=$dest/one --stratusd stratusd=target/release/stratusd"

#!/usr/bin/env bash
# Installs the real StratusLab command-line clients that `cargo test --test client` runs
# against stratusd (compat-tests/client/README.md), idempotently: virtualenvs already made
# with the same packages are reused.
#
#   <target dir>/py27/stratuslab-client-14.6.0/   stratuslab-client 14.6.0 and its dependencies
#   <target dir>/py27/stratuslab-client-13.5.1/   stratuslab-client 13.5.1 --no-deps + httplib2
#   <target dir>/py27/virtualenv-tool/            python3 venv holding virtualenv 20.15.1
#
# <target dir> is $CARGO_TARGET_DIR or ./target; STRATUSLAB_CLIENT_VENVS overrides the whole
# path. Needs CPython 2.7.18 (found under pyenv, or set PYTHON27) and PyPI.
set -euo pipefail
cd "$(dirname "$0")/.."

target_dir="${CARGO_TARGET_DIR:-$PWD/target}"
venvs="${STRATUSLAB_CLIENT_VENVS:-$target_dir/py27}"
# The recording's versions (fixtures/stratuslab-client/README.md §2). virtualenv releases
# before 20.22 can still create Python 2 environments; 20.15.1 is the one recorded.
virtualenv_version="20.15.1"
deps_14="requests==2.27.1 httplib2==0.22.0 urllib3==1.26.20 certifi==2021.10.8 chardet==4.0.0 idna==2.10 pyparsing==2.4.7"
deps_13="httplib2==0.22.0 pyparsing==2.4.7"

is_python_2_7_18() {
  [ -x "$1" ] && "$1" -c 'import sys, platform
sys.exit(0 if sys.version_info[:3] == (2, 7, 18) and platform.python_implementation() == "CPython" else 1)' 2>/dev/null
}

find_python27() {
  local candidates=()
  [ -n "${PYTHON27:-}" ] && candidates+=("$PYTHON27")
  candidates+=("$HOME/.pyenv/versions/2.7.18/bin/python")
  if command -v pyenv >/dev/null 2>&1; then
    candidates+=("$(pyenv root)/versions/2.7.18/bin/python")
  fi
  local name
  for name in python2.7 python2; do
    command -v "$name" >/dev/null 2>&1 && candidates+=("$(command -v "$name")")
  done
  local c
  for c in "${candidates[@]}"; do
    if is_python_2_7_18 "$c"; then
      echo "$c"
      return 0
    fi
  done
  return 1
}

if ! python27="$(find_python27)"; then
  cat >&2 <<'EOF'
setup: CPython 2.7.18 not found (looked at $PYTHON27, ~/.pyenv/versions/2.7.18, `pyenv root`,
python2.7 and python2 on PATH). The StratusLab client needs it: install it with pyenv
(`pyenv install 2.7.18`) or set PYTHON27=/path/to/python2.7.18.
EOF
  exit 1
fi

# Python 2's pip warns on every call that Python 2 is past its end of life.
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_PYTHON_VERSION_WARNING=1
mkdir -p "$venvs"

tool="$venvs/virtualenv-tool"
if [ ! -x "$tool/bin/virtualenv" ] || [ "$("$tool/bin/virtualenv" --version | awk '{print $2}')" != "$virtualenv_version" ]; then
  if ! python3 -c 'import venv' 2>/dev/null; then
    echo "setup: python3 with the venv module is needed to install virtualenv (apt-get install python3-venv)" >&2
    exit 1
  fi
  echo "setup: installing virtualenv $virtualenv_version into $tool"
  rm -rf "$tool"
  python3 -m venv "$tool"
  "$tool/bin/pip" install -q "virtualenv==$virtualenv_version"
fi

# install_client RELEASE PRINTED_VERSION "PIP ARGS" ["SECOND PIP ARGS"]: one virtualenv per
# release, reused when its marker says it was made from this interpreter with these arguments.
install_client() {
  local release="$1" printed="$2" first="$3" second="${4:-}"
  local env="$venvs/stratuslab-client-$release"
  local wanted="python=$python27 pip install $first; pip install $second"
  # A virtualenv copied from elsewhere (another checkout's target/) names that place's
  # interpreter in its scripts: it is made again here.
  if [ -f "$env/.stratusd-setup" ] && [ "$(cat "$env/.stratusd-setup")" = "$wanted" ] \
     && [ -x "$env/bin/stratus-run-instance" ] \
     && [ "$(head -1 "$env/bin/stratus-run-instance")" = "#!$env/bin/python" ]; then
    echo "setup: reusing $env"
    return 0
  fi
  echo "setup: installing stratuslab-client $release into $env"
  rm -rf "$env"
  "$tool/bin/virtualenv" -q -p "$python27" "$env"
  # shellcheck disable=SC2086
  "$env/bin/pip" install -q $first
  if [ -n "$second" ]; then
    # shellcheck disable=SC2086
    "$env/bin/pip" install -q $second
  fi
  local version
  version="$("$env/bin/stratus-run-instance" --version 2>&1)"
  if [ "$version" != "$printed" ]; then
    echo "setup: $env/bin/stratus-run-instance --version printed '$version', expected '$printed'" >&2
    exit 1
  fi
  echo "$wanted" > "$env/.stratusd-setup"
}

install_client 14.6.0 14.06.0 "stratuslab-client==14.6.0 $deps_14"
# 13.5.1 declares dependencies (dirq, stomp.py, pika, couchbase) that run/describe/kill/shutdown
# do not use; the recorded installation left them out the same way. (pip's second install
# therefore reports them as missing; that message is expected.)
install_client 13.5.1 13.05.1 "--no-deps stratuslab-client==13.5.1" "$deps_13"

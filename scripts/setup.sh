#!/bin/sh
# Installs what mobilize needs, skipping what is already there, then builds it.
#   scripts/setup.sh          for the main job: npm packages and the Fashion-MNIST dataset
#   scripts/setup.sh --test   also the test data: ONNX backend tests, the en_US.UTF-8 locale, and
#                             Chromium (the browser training test drives it with playwright-core)
# On Debian/Ubuntu it installs Debian packages with apt-get (as root, or through sudo).
# Elsewhere it says what to install; see README.md.
set -eu
cd "$(dirname "$0")/.."

debs="dataset-fashion-mnist"
if [ "${1:-}" = "--test" ]; then
  debs="$debs libonnx-testdata locales chromium"
fi

missing=""
if command -v dpkg-query >/dev/null 2>&1; then
  for p in $debs; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
  done
fi

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null 2>&1; then sudo "$@"; else return 1; fi
}

if [ -n "$missing" ]; then
  if command -v apt-get >/dev/null 2>&1; then
    echo "setup: installing Debian packages:$missing"
    as_root sh -c "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq$missing >/dev/null" ||
      echo "setup: could not install$missing (needs root); install them yourself" >&2
  else
    echo "setup: not a Debian system; get the equivalents of:$missing (see README.md)" >&2
  fi
fi

# onnxruntime's StringNormalizer tests need the en_US.UTF-8 locale.
if [ "${1:-}" = "--test" ] && command -v locale-gen >/dev/null 2>&1 && ! locale -a 2>/dev/null | grep -qi '^en_US\.utf-\?8$'; then
  as_root sh -c "sed -i 's/^# *en_US.UTF-8 UTF-8/en_US.UTF-8 UTF-8/' /etc/locale.gen && locale-gen >/dev/null" ||
    echo "setup: could not generate the en_US.UTF-8 locale" >&2
fi

# npm packages, when missing or older than the lockfile; installing builds mobilize (prepare).
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "setup: installing npm packages"
  npm ci --no-audit --no-fund --loglevel=error
else
  npm run --silent build
fi

#!/usr/bin/env bash
# Installs the Node.js tools of two tests into a cache directory, and Debian's Chromium:
#   - the official OpenAI Node SDK, for the SDK compatibility test (tests/integration/sdk_openai_node_test.cpp);
#   - puppeteer-core and Chromium, for the admin UI browser test (tests/integration/admin_ui_browser_test.cpp).
# Idempotent: an install of the pinned versions is kept. Node.js comes from the machine, or from Debian
# (nodejs + npm) when it has none. Nothing downloads a browser of its own: puppeteer-core drives /usr/bin/chromium.
#   LLMPROXY_NPM_PREFIX  where node_modules goes (default: ~/.cache/llm-proxy/npm)
set -euo pipefail

openai_version=4.104.0        # the last 4.x: runs on Debian's Node.js 18 as well as on newer ones
puppeteer_version=24.43.1     # the last line that runs on Node.js 18 (25.x needs 22)
prefix=${LLMPROXY_NPM_PREFIX:-${HOME}/.cache/llm-proxy/npm}

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
apt_packages=()
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then apt_packages+=(nodejs npm); fi
# Chromium only recommends fonts; without one, headless pages render no text (the screenshots would be blank).
for p in chromium fonts-dejavu-core fonts-liberation; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || apt_packages+=("$p")
done
if [ ${#apt_packages[@]} -gt 0 ]; then
  echo "setup-sdk: installing ${apt_packages[*]} from Debian"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -q
  $SUDO apt-get install -y -q --no-install-recommends "${apt_packages[@]}" >/dev/null
fi

version_of() { node -p "require('$prefix/node_modules/$1/package.json').version" 2>/dev/null || true; }
if [ "$(version_of openai)" = "$openai_version" ] && [ "$(version_of puppeteer-core)" = "$puppeteer_version" ]; then
  echo "setup-sdk: openai $openai_version and puppeteer-core $puppeteer_version present in $prefix"
  exit 0
fi
mkdir -p "$prefix"
echo "setup-sdk: installing openai@$openai_version and puppeteer-core@$puppeteer_version into $prefix"
# One command for both: npm removes from the prefix whatever the command does not name.
npm install --prefix "$prefix" --no-audit --no-fund --no-save --loglevel=error \
  "openai@$openai_version" "puppeteer-core@$puppeteer_version" >/dev/null
echo "setup-sdk: done"

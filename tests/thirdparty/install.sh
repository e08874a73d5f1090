#!/usr/bin/env bash
# Installs the third-party mock servers that tests/tests/thirdparty_mock.rs
# runs the plugin against (issue 5, item 8), into this folder only:
#   - PyPI llmock, pinned in requirements.txt, into ./.venv (gitignored);
#   - npm @copilotkit/aimock, from aimock/package-lock.json, into
#     aimock/node_modules (gitignored) with `npm ci`.
# Needs python3 and node/npm, and the PyPI and npm registries the first time;
# does nothing when what is installed already matches. .ci/run calls it.
set -euo pipefail
cd "$(dirname "$0")"

# --- llmock (PyPI) ----------------------------------------------------------
stamp=.venv/.installed-requirements.txt
if [ -x .venv/bin/llmock ] && .venv/bin/python -c 'import llmock' 2>/dev/null \
  && cmp -s requirements.txt "$stamp"; then
  echo "thirdparty: llmock already installed in tests/thirdparty/.venv"
else
  echo "thirdparty: installing llmock into tests/thirdparty/.venv"
  rm -rf .venv
  python3 -m venv .venv
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -r requirements.txt
  cp requirements.txt "$stamp"
fi

# --- @copilotkit/aimock (npm) -----------------------------------------------
want=$(node -p 'require("./aimock/package.json").dependencies["@copilotkit/aimock"]')
have=$(node -p 'try { require("./aimock/node_modules/@copilotkit/aimock/package.json").version } catch (e) { "" }')
if [ "$want" = "$have" ]; then
  echo "thirdparty: @copilotkit/aimock $have already installed"
else
  echo "thirdparty: installing @copilotkit/aimock $want (npm ci)"
  (cd aimock && npm ci --no-audit --no-fund --loglevel=error)
fi

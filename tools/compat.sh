#!/usr/bin/env bash
# `make compat`: for each of Python 3.11, 3.12 and 3.13 found on this machine, run the
# README's set-up (`make setup`) into .compat/pyX.Y, then the unit tests and the d2l
# import. Interpreters are found as pythonX.Y on PATH, else through pyenv if present.
set -uo pipefail
cd "$(dirname "$0")/.."

find_python() {  # print a working interpreter path for version $1, or fail
  local v=$1 cand
  if cand=$(command -v "python$v") && "$cand" -c 'import sys' >/dev/null 2>&1; then
    echo "$cand"; return 0
  fi
  if command -v pyenv >/dev/null 2>&1; then
    local full
    full=$(pyenv versions --bare 2>/dev/null | grep -E "^${v//./\\.}(\.[0-9]+)?$" | sort -V | tail -n 1)
    if [ -n "$full" ] && [ -x "$(pyenv root)/versions/$full/bin/python$v" ]; then
      echo "$(pyenv root)/versions/$full/bin/python$v"; return 0
    fi
  fi
  return 1
}

declare -a results
status=0
for v in 3.11 3.12 3.13; do
  if ! py=$(find_python "$v"); then
    results+=("Python $v: not found on this machine, skipped")
    continue
  fi
  venv=".compat/py$v"
  echo "=== Python $v ($py) -> $venv"
  if make --no-print-directory setup PYTHON="$py" VENV="$venv" \
     && "$venv/bin/python" -c "from d2l import torch as d2l; import attention_course; print('d2l', d2l.__name__, 'OK')" \
     && "$venv/bin/python" -m pytest tests -q -n 2 -p no:cacheprovider --ignore=tests/browser; then
    results+=("Python $v: PASS ($("$py" --version 2>&1))")
  else
    results+=("Python $v: FAIL")
    status=1
  fi
done
echo "=== make compat summary"
printf '%s\n' "${results[@]}"
if ! printf '%s\n' "${results[@]}" | grep -q PASS; then
  echo "no supported Python (3.11-3.13) found"; status=1
fi
exit $status

#!/usr/bin/env bash
# `make compat`: both ends of the versions pyproject.toml declares.
# - The pins: for each of Python 3.11, 3.12 and 3.13 found on this machine, the README's
#   set-up (`make setup`) into .compat/pyX.Y, the d2l import, the unit tests, and every
#   notebook executed to the end (on copies: the chapters are not touched).
# - The floor and Colab-style runs (tools/colab_check.sh): the oldest declared versions.
# Interpreters are found as pythonX.Y on PATH, else through pyenv if present. Each venv
# (about 6 GB: PyTorch's CUDA build) is deleted after its run unless COMPAT_KEEP=1;
# pip's download cache is shared. COMPAT_PYTHONS="3.12" runs fewer; COMPAT_FLOOR=0 skips
# the floor.
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

run_notebooks() {  # execute every chapter to the end with $1 (a venv's python), on copies
  local py=$1 dir status
  dir=$(mktemp -d)
  cp chapters/*.ipynb "$dir/"
  "$py" tools/notebooks.py execute "$dir"/*.ipynb
  status=$?
  rm -rf "$dir"
  return $status
}

declare -a results
status=0
for v in ${COMPAT_PYTHONS:-3.11 3.12 3.13}; do
  if ! py=$(find_python "$v"); then
    results+=("Python $v: not found on this machine, skipped")
    continue
  fi
  venv=".compat/py$v"
  echo "=== Python $v ($py) -> $venv"
  start=$SECONDS
  if make --no-print-directory setup PYTHON="$py" VENV="$venv" \
     && "$venv/bin/python" -c "from d2l import torch as d2l; import attention_course; print('d2l', d2l.__name__, 'OK')" \
     && "$venv/bin/python" -m pytest tests -q -n 2 -p no:cacheprovider --ignore=tests/browser \
     --ignore=tests/test_student_edition.py \
     && run_notebooks "$venv/bin/python"; then
    results+=("Python $v: PASS ($("$py" --version 2>&1), pins, $((SECONDS - start)) s)")
  else
    results+=("Python $v: FAIL")
    status=1
  fi
  if [ "${COMPAT_KEEP:-0}" != 1 ]; then rm -rf "$venv"; fi
done

if [ "${COMPAT_FLOOR:-1}" != 0 ]; then
  # the floor runs on the oldest supported Python
  if py=$(find_python 3.11); then
    start=$SECONDS
    if bash tools/colab_check.sh "$py"; then
      results+=("floor + Colab-style: PASS ($("$py" --version 2>&1), $((SECONDS - start)) s)")
    else
      results+=("floor + Colab-style: FAIL")
      status=1
    fi
  else
    results+=("floor + Colab-style: FAIL (no Python 3.11 found)")
    status=1
  fi
fi

echo "=== make compat summary"
printf '%s\n' "${results[@]}"
if ! printf '%s\n' "${results[@]}" | grep -q "^Python.*PASS"; then
  echo "no supported Python (3.11-3.13) found"; status=1
fi
exit $status

#!/usr/bin/env bash
# The floor run and the Colab-style run (part of `make compat`), in one fresh venv:
#
# 1. Colab-style: a fresh venv holds every runtime dependency at its oldest declared
#    version (`python tools/deps.py floor`: torch 2.6 with its torchvision, IPython 7.34
#    and ipywidgets 7.7.1 as on Colab, ...) plus the test tools, but neither this package
#    nor d2l: a runtime with a different torch already installed, as Colab's is. Every
#    chapter's Colab cell then runs as it would on Colab (google.colab is imported at
#    kernel start-up), with this repository's path in place of its URL, and every chapter
#    is executed to the end. The cell must add exactly attention-course and d2l.
# 2. Floor: in the same venv, the unit tests, then 00_setup again as anywhere else (no
#    Colab: it then checks JupyterLab too), from a folder with no requirements.txt beside
#    it. The other chapters do not depend on Colab and ran in step 1 at the same versions;
#    FLOOR_ALL=1 runs every chapter again.
#
# Usage: bash tools/colab_check.sh [python3.11]   (default: the oldest supported Python)
# The venv (.compat/floor) is deleted afterwards unless COMPAT_KEEP=1; with COMPAT_KEEP=1
# COMPAT_REUSE=1 reuses a kept one (this package and d2l are uninstalled first).
# Every chapter runs even when one fails; the failures are listed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PYTHON=${1:-python3.11}
VENV=${FLOOR_VENV:-.compat/floor}
work=$(mktemp -d)
cleanup() {
  rm -rf "$work"
  if [ "${COMPAT_KEEP:-0}" != 1 ]; then rm -rf "$VENV"; fi
}
trap cleanup EXIT
step() { echo "=== colab_check: $*"; }

PY=$ROOT/$VENV/bin/python
export PYDEVD_DISABLE_FILE_VALIDATION=1  # old ipykernel's debugger warnings at each start
reuse=0
if [ "${COMPAT_REUSE:-0}" = 1 ] && [ -x "$PY" ]; then reuse=1; fi
if [ $reuse = 0 ]; then
  step "fresh venv $VENV ($("$PYTHON" --version 2>&1)), the floor versions"
  rm -rf "$VENV"
  "$PYTHON" -m venv "$VENV"
  "$PY" -m pip install --quiet --upgrade pip
fi
# a copy of the working tree (tracked and unignored files): pip builds in its source
# folder, and a build inside the repository would leave metadata beside src/
mkdir "$work/repo"
git ls-files -z --cached --others --exclude-standard \
  | xargs -0 -n 50 sh -c 'for f; do if [ -e "$f" ]; then cp --parents -P "$f" "$0"; fi; done' "$work/repo"
"$PY" "$ROOT/tools/deps.py" floor > "$work/floor.txt"
start=$SECONDS
# Colab's preinstalled set: the package's dependencies at the floor, not the package
if [ $reuse = 0 ]; then
  "$PY" -m pip install --quiet -c "$work/floor.txt" "$work/repo[test]"
fi
"$PY" -m pip uninstall --quiet --yes attention-course d2l 2>/dev/null || true
echo "installed in $((SECONDS - start)) s:" \
  "$("$PY" -m pip list --format=freeze 2>/dev/null \
     | grep -iE '^(torch|torchvision|numpy|matplotlib|ipywidgets|ipython|ipykernel|pandas|jupyterlab)==' \
     | tr '\n' ' ')"
"$PY" -m pip list --format=freeze > "$work/before.txt"

step "Colab-style: every chapter's Colab cell as Colab runs it, then the chapter to the end"
mkdir -p "$work/fake/google/colab" "$work/ipython/profile_default/startup" "$work/colab"
echo '"""Stands in for Colab'"'"'s module: its presence in sys.modules marks Colab."""' \
  > "$work/fake/google/colab/__init__.py"
echo "import google.colab  # as a Colab kernel does at start-up" \
  > "$work/ipython/profile_default/startup/00-colab.py"
cp chapters/*.ipynb "$work/colab/"
url=$("$PY" -c "import sys; sys.path.insert(0, 'tools'); from colab import repository_url; print(repository_url())")
# the chapters as committed must carry the current cell (tests/test_colab.py too)
"$PY" tools/colab.py --check "$work"/colab/*.ipynb
for nb in "$work"/colab/*.ipynb; do
  grep -q "git+$url" "$nb" || { echo "no Colab cell installing git+$url in $nb" >&2; exit 1; }
  sed -i "s#git+$url#$work/repo#" "$nb"
done
failed=()
run_chapters() {  # execute each notebook given, recording failures under label $1
  local label=$1 nb
  shift
  for nb in "$@"; do
    "$PY" tools/notebooks.py execute "$nb" || failed+=("$label: $(basename "$nb")")
  done
}
start=$SECONDS
PYTHONPATH="$work/fake" IPYTHONDIR="$work/ipython" JUPYTER_DATA_DIR="$work/jupyter" \
  run_chapters Colab-style "$work"/colab/*.ipynb
echo "Colab-style chapters ran in $((SECONDS - start)) s"
"$PY" -m pip list --format=freeze > "$work/after.txt"
{ diff "$work/before.txt" "$work/after.txt" || true; } > "$work/cell.diff"
added=$(sed -n 's/^> //p' "$work/cell.diff" | sed 's/==.*//' | sort | tr '\n' ' ')
changed=$(sed -n 's/^< //p' "$work/cell.diff" | tr '\n' ' ')
echo "the Colab cells added: $added"
if [ "$added" != "attention-course d2l " ] || [ -n "$changed" ]; then
  echo "the Colab cell must add exactly attention-course and d2l, and change nothing;" \
    "added: $added; changed: $changed" >&2
  exit 1
fi

step "floor: the unit tests"
start=$SECONDS
"$PY" -m pytest tests -q -n 2 -p no:cacheprovider --ignore=tests/browser \
     --ignore=tests/test_student_edition.py \
  || failed+=("floor: unit tests")
echo "unit tests ran in $((SECONDS - start)) s"

step "floor: outside Colab, with no requirements.txt beside the notebooks"
mkdir "$work/floor"
if [ "${FLOOR_ALL:-0}" = 1 ]; then
  cp chapters/*.ipynb "$work/floor/"
else
  cp chapters/00_setup.ipynb "$work/floor/"
fi
start=$SECONDS
JUPYTER_DATA_DIR="$work/jupyter" run_chapters floor "$work"/floor/*.ipynb
echo "floor chapters ran in $((SECONDS - start)) s"
if [ ${#failed[@]} -gt 0 ]; then
  step "FAIL: these chapters raised an error:"
  printf '  %s\n' "${failed[@]}"
  exit 1
fi
step "PASS (floor and Colab-style)"

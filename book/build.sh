#!/usr/bin/env bash
# Build the course site into book/_build/html (`make book`), offline, warnings as errors.
#
# 1. MathJax, require.js and the widget manager from the npm registry (book/package.json +
#    package-lock.json, `npm ci`), copied into the site: no page loads anything from a CDN.
# 2. A build copy of the repository (book/site_copy.py): exercises as exercise boxes,
#    solutions as collapsed dropdowns, live widget outputs dropped (static twins stay).
# 3. Jupyter Book 1 on the copy, with the committed outputs (no execution), -W -n.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PY="${PY:-$ROOT/.venv/bin/python}"
SRC="$ROOT/build/site-src"
SITE="$ROOT/book/_build/html"
start=$SECONDS

# The Binder badge in README.md must point at the repository named in book/_config.yml.
url="$("$PY" -c 'import sys, yaml; print(yaml.safe_load(open(sys.argv[1]))["repository"]["url"])' book/_config.yml)"
slug="${url#https://github.com/}"
if grep -q "mybinder.org/v2/gh/" README.md && ! grep -q "mybinder.org/v2/gh/$slug/" README.md; then
  echo "README.md: the Binder badge does not point at $url (book/_config.yml)" >&2
  exit 1
fi

# 1. site assets from npm, reinstalled only when the lock file changed
if [ ! -f book/node_modules/.installed ] || [ book/package-lock.json -nt book/node_modules/.installed ]; then
  (cd book && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
  touch book/node_modules/.installed
fi

# 2. the build copy
"$PY" book/site_copy.py "$SRC"
VENDOR="$SRC/site-assets/vendor"
mkdir -p "$VENDOR/mathjax" "$VENDOR/requirejs" "$VENDOR/html-manager"
cp -r book/node_modules/mathjax/es5 "$VENDOR/mathjax/"
cp book/node_modules/requirejs/require.js "$VENDOR/requirejs/"
cp book/node_modules/@jupyter-widgets/html-manager/dist/*-amd.js \
   book/node_modules/@jupyter-widgets/html-manager/dist/*.{woff,woff2,ttf,eot,svg} "$VENDOR/html-manager/"

# 3. the site
rm -rf "$ROOT/book/_build"
"$(dirname "$PY")/jupyter-book" build "$SRC" \
  --config "$SRC/book/_config.yml" --toc "$SRC/book/_toc.yml" \
  --path-output "$ROOT/book" --builder html -W -n --keep-going

for page in index.html chapters/02_nadaraya_watson.html vendor/mathjax/es5/tex-mml-chtml.js; do
  [ -f "$SITE/$page" ] || { echo "missing from the site: $page" >&2; exit 1; }
done
echo "site built in $((SECONDS - start)) s: $SITE"

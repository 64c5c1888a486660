#!/usr/bin/env bash
# Build the course site into book/_build/html (`make book`), offline, warnings as errors.
#
# 1. MathJax from the npm registry (book/package.json + package-lock.json, `npm ci`); the
#    site ships only the files its pages load: the combined TeX/CHTML component, its
#    woff-v2 fonts and the TeX extensions it loads on demand. No page loads from a CDN.
# 2. A build copy of the repository (book/site_copy.py): exercises as exercise boxes,
#    solutions as collapsed dropdowns, live widget outputs replaced by static twins drawn
#    now from the view modules (a minute or so: some train a small model).
# 3. Jupyter Book 1 on the copy, with the committed outputs (no execution), -W -n.
# 4. Files no page loads are removed; the site must stay under 15 MB.
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
MATHJAX="$SRC/site-assets/vendor/mathjax/es5"
mkdir -p "$MATHJAX/output/chtml/fonts" "$MATHJAX/input/tex"
cp book/node_modules/mathjax/es5/tex-mml-chtml.js "$MATHJAX/"
cp -r book/node_modules/mathjax/es5/output/chtml/fonts/woff-v2 "$MATHJAX/output/chtml/fonts/"
cp -r book/node_modules/mathjax/es5/input/tex/extensions "$MATHJAX/input/tex/"

# 3. the site
rm -rf "$ROOT/book/_build"
"$(dirname "$PY")/jupyter-book" build "$SRC" \
  --config "$SRC/book/_config.yml" --toc "$SRC/book/_toc.yml" \
  --path-output "$ROOT/book" --builder html -W -n --keep-going

# 4. ship only what the pages load: no source maps (read by developer tools only), no theme
#    translations (the site is English), web fonts as woff2 only (what browsers take)
find "$SITE" -name '*.map' -delete
rm -rf "$SITE/_static/locales"
find "$SITE/_static" -name '*.ttf' -delete

for page in index.html chapters/02_nadaraya_watson.html vendor/mathjax/es5/tex-mml-chtml.js; do
  [ -f "$SITE/$page" ] || { echo "missing from the site: $page" >&2; exit 1; }
done
size_kb=$(du -sk "$SITE" | cut -f1)
if [ "$size_kb" -ge $((15 * 1024)) ]; then
  echo "the site is $((size_kb / 1024)) MB, over the 15 MB budget: du -sh $SITE/* shows where" >&2
  exit 1
fi
echo "site built in $((SECONDS - start)) s, $((size_kb / 1024)) MB: $SITE"

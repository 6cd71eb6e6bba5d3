#!/bin/sh
# readme_options.sh - the README's option table is the one the options
# table generates (`cebox settings --markdown`): they never drift apart.
set -u
B="${top_builddir:-.}"
S="${top_srcdir:-.}"
table=$("$B/cebox" settings --markdown) || exit 1
if grep -qF -- "$table" "$S/README.md" && [ "$(printf '%s\n' "$table" | while IFS= read -r line; do grep -qxF -- "$line" "$S/README.md" || echo missing; done)" = "" ]; then
    echo "ok 1 - README option table matches the options table"
    echo "1 passed, 0 failed"
    exit 0
fi
echo "not ok 1 - README.md lacks the current option table; replace it with the output of: cebox settings --markdown"
echo "0 passed, 1 failed"
exit 1

#!/usr/bin/env bash
# The README and docs/ stand alone: every relative Markdown link resolves to
# a file inside the repository, and nothing points outside it (a user of
# xdnat has only this repository).
set -euo pipefail
cd "$(dirname "$0")/.."
top=$(pwd)
bad=0 n=0
for doc in README.md docs/*.md ca/README.md; do
	[ -f "$doc" ] || continue
	dir=$(dirname "$doc")
	while IFS= read -r target; do
		n=$((n + 1))
		case "$target" in
		http://* | https://* | mailto:* | \#*) continue ;;
		esac
		path=${target%%#*}
		[ -n "$path" ] || continue
		full=$(realpath -m "$dir/$path")
		case "$full" in
		"$top"/*) [ -e "$full" ] || { echo "  $doc: link to missing $target" >&2; bad=$((bad + 1)); } ;;
		*) echo "  $doc: link leaves the repository: $target" >&2; bad=$((bad + 1)) ;;
		esac
	done < <(grep -oE '\]\([^)]+\)' "$doc" | sed -E 's/^\]\(([^) ]+).*\)$/\1/')
	if grep -nE '\.\./shared|shared/research|shared/DESIGN' "$doc" >&2; then
		echo "  $doc: mentions a folder users do not have" >&2
		bad=$((bad + 1))
	fi
done
[ "$n" -gt 10 ] || { echo "FAIL: only $n links found: is the README there?" >&2; exit 1; }
[ "$bad" -eq 0 ] || { echo "FAIL: $bad bad links or references" >&2; exit 1; }
echo "  ok  $n links in README.md and docs/ stay inside the repository and resolve"

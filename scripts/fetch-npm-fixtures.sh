#!/usr/bin/env bash
# Installs the npm packages that ghsim's conformance tests compare against
# (GitHub's published OpenAPI description and webhook examples) into the
# buildfleet cache, where internal/testenv.NPMPackage finds them.
# Idempotent: a package already present at the pinned version is skipped.
set -euo pipefail

cache="${BUILDFLEET_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/buildfleet}"
dir="${BUILDFLEET_NPM_DIR:-$cache/npm}"

# Pinned versions (checked with `npm view NAME version`).
packages=(
	"@octokit/openapi@23.0.2"
	"@octokit/webhooks-examples@7.6.1"
)

mkdir -p "$dir"
[ -f "$dir/package.json" ] || echo '{"name":"buildfleet-fixtures","private":true}' >"$dir/package.json"

want=()
for spec in "${packages[@]}"; do
	name="${spec%@*}"
	version="${spec##*@}"
	pj="$dir/node_modules/$name/package.json"
	have=""
	if [ -f "$pj" ]; then
		have="$(sed -n 's/^[[:space:]]*"version":[[:space:]]*"\([^"]*\)".*/\1/p' "$pj" | head -n1)"
	fi
	if [ "$have" = "$version" ]; then
		echo "fixtures: $name@$version already in $dir"
	else
		echo "fixtures: will install $name@$version (have: ${have:-none})"
		want+=("$spec")
	fi
done

if [ "${#want[@]}" -gt 0 ]; then
	echo "fixtures: npm install ${want[*]} into $dir"
	npm install --prefix "$dir" --no-audit --no-fund --ignore-scripts --save-exact "${want[@]}"
fi
echo "fixtures: done ($dir)"

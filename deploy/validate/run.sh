#!/usr/bin/env bash
# Renders every Kustomize tree under deploy/k8s (the base and each overlay) with `kubectl kustomize`
# and validates the result, then validates the KServe examples (the ServingRuntime alone, and with
# each InferenceService). Exits non-zero if anything fails to render or validate.
#
#   deploy/validate/run.sh              KUBECTL=/path/to/kubectl deploy/validate/run.sh
#
# Needs node (18 or newer) and npm (the npm registry, for `npm ci` of package-lock.json) and
# kubectl. The kustomizations stay within what kubectl 1.20's kustomize reads (Debian 12's
# kubernetes-client), so its deprecation notices from newer kubectl are expected and not shown.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
deploy="$(dirname "$here")"
KUBECTL="${KUBECTL:-kubectl}"
cd "$here"

for tool in node npm "$KUBECTL"; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "deploy/validate: $tool is not installed" >&2
    exit 2
  fi
done

# Installs exactly package-lock.json, quietly; its output is shown only if it fails.
if ! npm_log="$(npm ci --no-audit --no-fund --loglevel=error 2>&1)"; then
  echo "$npm_log" >&2
  echo "deploy/validate: npm ci failed" >&2
  exit 2
fi

status=0
stderr_file="$(mktemp)"
trap 'rm -f "$stderr_file"' EXIT

for dir in "$deploy"/k8s/base "$deploy"/k8s/overlays/*/; do
  dir="${dir%/}"
  name="k8s/${dir#"$deploy"/k8s/}"
  if ! rendered="$("$KUBECTL" kustomize "$dir" 2>"$stderr_file")"; then
    echo "deploy/validate: $name: kubectl kustomize failed:" >&2
    cat "$stderr_file" >&2
    status=1
    continue
  fi
  grep -v "^# Warning: '[A-Za-z]*' is deprecated" "$stderr_file" >&2 || true
  printf '%s\n' "$rendered" | node validate.mjs --name "$name" - || status=1
done

runtime="$deploy/kserve/servingruntime.yaml"
node validate.mjs --name "kserve/servingruntime.yaml" "$runtime" || status=1
for file in "$deploy"/kserve/*.yaml; do
  [ "$file" = "$runtime" ] && continue
  node validate.mjs --name "kserve/$(basename "$file") (with servingruntime.yaml)" "$runtime" "$file" \
    || status=1
done

if [ "$status" -ne 0 ]; then
  echo "deploy/validate: FAILED" >&2
fi
exit "$status"

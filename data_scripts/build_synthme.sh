#!/usr/bin/env bash
# Build SynthME in every preset a course run may need.
# Usage: data_scripts/build_synthme.sh [OUT_ROOT]   (default: data)
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-data}"
hmrm="${HMRM:-.venv/bin/hmrm}"
for preset in default hard; do
  "$hmrm" synthme --preset "$preset" --out "$out/synthme_$preset"
done

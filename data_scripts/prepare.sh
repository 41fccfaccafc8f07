#!/usr/bin/env bash
# Parse a licensed data set as it was distributed and cache aligned onset/apex crops.
# Usage: data_scripts/prepare.sh DATASET ROOT [OUT]
#   DATASET: casme2 | samm | smic | composite   (composite: ROOT holds casme2/, samm/, smic/)
#   OUT:     cache folder (default data/prepared)
# Prints the counts, the annotation fixes and the skipped clips first (also saved to OUT/DATASET_list.txt).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ $# -lt 2 ]; then sed -n 2,6p "$0"; exit 2; fi
dataset="$1"; root="$2"; out="${3:-data/prepared}"
hmrm="${HMRM:-.venv/bin/hmrm}"
mkdir -p "$out"
"$hmrm" prepare --dataset "$dataset" --root "$root" --out "$out" --list | tee "$out/${dataset}_list.txt"
"$hmrm" prepare --dataset "$dataset" --root "$root" --out "$out"

#!/usr/bin/env bash
# Preprocess wall time and peak RSS (GNU time) against the amount of data: fleets of 1x, 2x and
# 4x the default size, and single recordings of 4 minutes, 1 hour and 3 hours (all from the
# simulator, release build). Prints a Markdown table; the one in README comes from this script.
#
# usage: bash scripts/bench_memory.sh [work dir, default a temporary one]
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
work=${1:-$(mktemp -d)}
cargo build --release --locked -p avm-trainer >/dev/null
avm="$repo/target/release/avm"

# case name, aircraft, engines per aircraft, flights per aircraft, flight duration min/max (s)
cases=(
  "fleet 1x (default)|6|2|5|240|330"
  "fleet 2x|12|2|5|240|330"
  "fleet 4x|24|2|5|240|330"
  "one 4-minute recording|1|1|1|240|240"
  "one 1-hour recording|1|1|1|3600|3600"
  "one 3-hour recording|1|1|1|10800|10800"
)
echo "| data | recordings | hours of vibration | windows | preprocess wall | peak RSS |"
echo "|---|---|---|---|---|---|"
for c in "${cases[@]}"; do
  IFS='|' read -r name aircraft engines flights dmin dmax <<<"$c"
  dir="$work/$(echo "$name" | tr -c 'a-zA-Z0-9\n' '_')"
  mkdir -p "$dir"
  python3 - "$repo/configs/engine_vibration_config.yaml" "$dir/c.yaml" "$repo/configs/contracts/engine_vibration.yaml" \
    "$aircraft" "$engines" "$flights" "$dmin" "$dmax" <<'PY'
import sys, yaml
src, dst, contract, ac, en, fl, dmin, dmax = sys.argv[1:]
c = yaml.safe_load(open(src))
c["paths"] = {"data": "DATA", "models": "MODELS", "registry": "REGISTRY"}
c["contract"] = contract
c["simulate"].update(aircraft=int(ac), engines_per_aircraft=int(en), flights_per_aircraft=int(fl),
                     flight_duration_s=[float(dmin), float(dmax)])
yaml.safe_dump(c, open(dst, "w"))
PY
  sim=$("$avm" simulate --config "$dir/c.yaml" | head -1)
  hours=$(sed -n 's/.*(\([0-9.]*\) h of vibration).*/\1/p' <<<"$sim")
  n=$(sed -n 's/^simulated \([0-9]*\) recordings.*/\1/p' <<<"$sim")
  out=$( { /usr/bin/time -f "TIME %e %M" "$avm" preprocess --config "$dir/c.yaml"; } 2>&1 )
  windows=$(sed -n 's/.*recordings: \([0-9]*\) windows.*/\1/p' <<<"$out")
  read -r _ wall rss <<<"$(grep '^TIME' <<<"$out")"
  echo "| $name | $n | $hours | $windows | ${wall} s | $((rss / 1024)) MB |"
  rm -rf "$dir/DATA"
done

#!/usr/bin/env bash
# avm's data stages and whole pipeline against the Python peer (scripts/python_peer.py) on the
# same recordings, in one run, on this machine: wall time and peak memory of each, and the
# ratios. The default fleet must be present (`bash scripts/run.sh` once). Figures in README
# ("Performance against a Python peer") come from this script.
set -euo pipefail
cd "$(dirname "$0")/.."
config=configs/engine_vibration_config.yaml
cargo build -q --release --locked -p avm-trainer
test -n "$(ls DATA/raw/recordings/*.parquet 2>/dev/null)" || { echo "no DATA/raw: run bash scripts/run.sh first"; exit 2; }
out=$(mktemp -d)
for stage in preprocess featurize train evaluate; do
  /usr/bin/time -f "%e %M" -o "$out/$stage.time" target/release/avm -q "$stage" --config "$config"
done
epochs=$(python3 -c "import json; print(json.load(open('MODELS/engine_vibration/training/last.json'))['epoch'])" 2>/dev/null || echo 165)
/usr/bin/time -f "%e %M" -o "$out/peer.time" python3 scripts/python_peer.py DATA --epochs "$epochs" --json "$out/peer.json" > /dev/null
python3 - "$out" <<'PY'
import json, pathlib, sys
d = pathlib.Path(sys.argv[1])
t = {s: tuple(map(float, (d / f"{s}.time").read_text().split())) for s in ("preprocess", "featurize", "train", "evaluate", "peer")}
peer = json.loads((d / "peer.json").read_text())
ps = peer["seconds"]
avm_data = t["preprocess"][0] + t["featurize"][0]
avm_all = avm_data + t["train"][0] + t["evaluate"][0]
peer_data = ps["read"] + ps["features"]
peer_all = ps["total"]
mem = lambda kb: kb / 1024
print(f"{'':28} {'avm':>10} {'python peer':>12} {'peer / avm':>11}")
print(f"{'data stages (s)':28} {avm_data:10.2f} {peer_data:12.2f} {peer_data / avm_data:10.1f}x")
print(f"{'train + evaluate + 5-fold CV (s)':28} {t['train'][0] + t['evaluate'][0]:10.2f} {ps['train+evaluate'] + ps['cross-validation']:12.2f} {(ps['train+evaluate'] + ps['cross-validation']) / (t['train'][0] + t['evaluate'][0]):10.1f}x")
print(f"{'whole pipeline (s)':28} {avm_all:10.2f} {peer_all:12.2f} {peer_all / avm_all:10.1f}x")
print(f"{'peak RSS, data stages (MB)':28} {max(mem(t['preprocess'][1]), mem(t['featurize'][1])):10.0f} {peer['peak_rss_mb']:12.0f}  (peer: whole run)")
print(f"peer: {peer['windows']} windows, test AUC {peer['test_auc']:.3f}, CV AUC {peer['cv_auc_mean']:.3f} +- {peer['cv_auc_sd']:.3f}, {peer['epochs']} epochs")
print("feature check (relative difference to avm's window table, clean windows; median, p99 by family):")
for k, (a, b) in peer["feature_check_rel_diff_by_family_median_p99"].items():
    print(f"  {k:10} {a:.1e} {b:.1e}")
PY

#!/usr/bin/env bash
# Regenerates requirements/gpu-resolve-report.json: pip's resolver, installing nothing, on the full GPU install
# (`pip install -e '.[gpu,test,lab,serve,distributed]'`) from an empty throwaway venv. The committed report is
# the proof that the pins in pyproject.toml resolve together with vLLM and DeepSpeed; tests/test_environment.py
# checks the pins against it. Run it after changing any pin (issue 25):
#   bash scripts/resolve_gpu_pins.sh            # VENV=/tmp/pinvenv PY=python3.11 by default
# It must run on Linux x86-64 with Python 3.11 (the platform vLLM's wheels and the study target); it needs the
# package registry (metadata plus a few wheels without separate metadata, about 100 MB; 2-3 min).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-python3.11}
VENV=${VENV:-/tmp/pinvenv}
EXTRAS=gpu,test,lab,serve,distributed
OUT=requirements/gpu-resolve-report.json

[ "$(uname -s)-$(uname -m)" = "Linux-x86_64" ] || { echo "resolve_gpu_pins.sh: needs Linux x86-64, not $(uname -sm)" >&2; exit 1; }
"$PY" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' \
  || { echo "resolve_gpu_pins.sh: $PY is not Python 3.11 (set PY=...)" >&2; exit 1; }
test -x "$VENV/bin/python" || "$PY" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --upgrade pip

raw=$(mktemp --suffix=.json)
trap 'rm -f "$raw"' EXIT
# --ignore-installed: resolve as for an empty environment, whatever the venv holds
cmd=(pip install --dry-run --ignore-installed --report "$raw" -e ".[$EXTRAS]")
"$VENV/bin/python" -m "${cmd[@]}"

# The raw report is ~2.5 MB (every package's full metadata) and names download URLs; keep what the pins need:
# each package's name, version and whether it was asked for directly, the environment it was resolved for, and
# the requirements vLLM and DeepSpeed declare (why the pins are what they are).
"$VENV/bin/python" - "$raw" "$OUT" "${cmd[*]}" <<'PYEOF'
import json, sys
from datetime import datetime, timezone

raw, out, command = sys.argv[1], sys.argv[2], sys.argv[3]
report = json.load(open(raw))
install, why = [], {}
for item in report["install"]:
    meta = item["metadata"]
    name = meta["name"].lower().replace("_", "-")
    install.append({"name": name, "version": meta["version"], "requested": bool(item.get("requested"))})
    if name in ("vllm", "deepspeed"):
        why[name] = [r for r in meta.get("requires_dist", []) if "extra ==" not in r]
trimmed = {
    "command": command.replace(raw, "REPORT.json"),
    "extras": sys.argv[3].split("[", 1)[1].split("]", 1)[0].split(","),
    "created": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    "pip_version": report["pip_version"],
    "report_version": report["version"],
    "environment": report["environment"],
    "install": sorted(install, key=lambda d: d["name"]),
    "requires_dist": why,
}
with open(out, "w") as f:
    json.dump(trimmed, f, indent=1, sort_keys=False)
    f.write("\n")
print(f"{out}: {len(install)} packages")
PYEOF

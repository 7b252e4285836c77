#!/usr/bin/env bash
# Create or refresh this checkout's Python environment (default: .venv in the checkout;
# set ALPHAFREE_VENV to put it elsewhere). Idempotent: when nothing it depends on changed,
# a second run only checks the environment and says so.
#
#   tools/setup_env.sh            # then use .venv/bin/python
#
# Python: $PYTHON, else python3.11, else python3 (3.11 is what this project is tested on).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv=${ALPHAFREE_VENV:-$root/.venv}
stamp=$venv/.alphafree_setup
start=$SECONDS

# Everything the environment is made from; a change in any of these triggers a real install.
inputs_hash=$(cd "$root" && cat tools/setup_env.sh tools/install_detectron2.py setup.py | sha256sum | cut -d' ' -f1)

if [[ -f $stamp && $(sed -n 1p "$stamp") == "$inputs_hash" ]] \
    && "$venv/bin/python" -c "import alphafree_d2, detectron2" 2>/dev/null; then
  echo "environment $venv is up to date: nothing changed ($(sed -n 2p "$stamp"); checked in $((SECONDS - start)) s)"
  exit 0
fi

py=${PYTHON:-$(command -v python3.11 || command -v python3)}
if [[ ! -x $venv/bin/python ]]; then
  echo "creating $venv with $py"
  "$py" -m venv "$venv"
fi
pip=("$venv/bin/python" -m pip install --disable-pip-version-check --progress-bar off)

# torch and torchvision are pinned: these two builds lie on this machine's disk, any other
# version is a multi-GB download. setuptools<81 keeps pkg_resources for detectron2.model_zoo.
"${pip[@]}" "setuptools<81" wheel "torch==2.14.1" "torchvision==0.29.1"

d2_log=$(mktemp)
"$venv/bin/python" "$root/tools/install_detectron2.py" | tee "$d2_log"
route=$(grep '^detectron2 route:' "$d2_log" | tail -n 1)
rm -f "$d2_log"

"${pip[@]}" -e "$root[test,export,demo,hf]"

"$venv/bin/python" -c "import alphafree_d2, detectron2; print('alphafree_d2 and detectron2', detectron2.__version__, 'import')"
printf '%s\n%s\n' "$inputs_hash" "$route" > "$stamp"
echo "environment $venv ready in $((SECONDS - start)) s; $route"

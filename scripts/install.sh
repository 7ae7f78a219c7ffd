#!/usr/bin/env bash
# Install dualtalk with every extra into a virtual environment (default .venv), picking PyTorch wisely:
#   - a torch already importable in that environment is kept (GPU users keep their CUDA build);
#   - with an NVIDIA driver present, pip's default (CUDA) build is installed;
#   - otherwise the CPU-only build: first from a local wheel cache if pip has one (offline machines),
#     else from PyTorch's CPU index (a ~200 MB download instead of several GB of CUDA libraries).
# Usage: bash scripts/install.sh [VENV_DIR]      (VENV_DIR=- installs into the current Python)
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${1:-.venv}"
if [ "$venv" = "-" ]; then
  py="${PYTHON:-python3}"
else
  if [ ! -x "$venv/bin/python" ]; then
    "${PYTHON:-python3}" -m venv "$venv"
  fi
  py="$venv/bin/python"
fi
torch_version="2.13.0"
if "$py" -c "import torch" >/dev/null 2>&1; then
  echo "install: keeping installed torch $("$py" -c 'import torch; print(torch.__version__)')"
elif command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
  echo "install: NVIDIA GPU found: installing the CUDA build of torch"
  "$py" -m pip install "torch>=2.1"
else
  echo "install: no CUDA GPU: installing the CPU build of torch"
  # "+cpu" matches only a CPU wheel: one in pip's find-links / configured indexes (offline machines), else
  # PyTorch's CPU index (PyPI itself has none, so plain "torch==X" would fetch the CUDA build)
  "$py" -m pip install "torch==$torch_version+cpu" 2>/dev/null \
    || "$py" -m pip install "torch==$torch_version" --index-url https://download.pytorch.org/whl/cpu
fi
"$py" -m pip install -e ".[all,dev,docs]"

"""Benchmarks: scripts that measure the package and print what they measured; the package never
imports them. Run them from the repository root with the environment's Python, e.g.
``python -m benchmarks.loss_policies --help``; the single-file ones also run as
``python benchmarks/<name>.py``. They import ``alphafree_d2`` as installed (``pip install -e .``,
as ``tools/setup_env.sh`` does) and each other as ``benchmarks.<module>``.
"""

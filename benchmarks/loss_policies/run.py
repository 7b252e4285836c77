"""Running the plan: one subprocess per training / evaluation, its output in a log; a finished
run with the same settings is reused; the final training losses from detectron2's metrics.json."""

import json
import os
import shlex
import shutil
import subprocess
import time

from alphafree_d2.utils.file_io import write_json

from .plan import demo_csv, real_csv


def environment(threads):
    """This process's environment with ``threads`` OpenMP / MKL threads."""
    env = dict(os.environ)
    env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = str(threads)
    return env


def run_logged(cmd, log_path, env):
    """Run ``cmd`` (in this working directory, which sets the default datasets root, as for
    the tools) with its output in ``log_path``; seconds taken."""
    os.makedirs(os.path.dirname(log_path), exist_ok=True)
    start = time.perf_counter()
    with open(log_path, "w", encoding="utf-8") as log:
        log.write(shlex.join(cmd) + "\n\n")
        log.flush()
        done = subprocess.run(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        with open(log_path, encoding="utf-8", errors="replace") as f:
            tail = "".join(f.readlines()[-25:])
        raise RuntimeError(f"command failed ({done.returncode}), log {log_path}:\n{tail}")
    return seconds


def read_json(path):
    """The JSON value in ``path``, or None when there is no such file."""
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def _same_settings(spec, train_cmd):
    """Whether a stored ``spec`` (the command without the interpreter) trains what ``train_cmd``
    trains: all arguments after the entry script equal (the entry's path may have moved)."""
    return shlex.split(spec)[1:] == train_cmd[2:]


def _reusable_info(plan, run, info_path, train_cmd):
    """The stored info of a finished run trained with ``train_cmd``'s settings; None when there
    is none (or ``--overwrite`` discards it); exits when other settings are in the way."""
    info = read_json(info_path)
    if info is not None and not _same_settings(info.get("spec", ""), train_cmd):
        if not plan.args.overwrite:
            raise SystemExit(
                f"{run} holds a run with other settings (see {info_path}); pass --overwrite to "
                f"retrain it, or choose another --output"
            )
        info = None
    if info is None and os.path.isdir(run) and plan.args.overwrite:
        shutil.rmtree(run)
    return info


def execute(plan, name, seed, env, real):
    """Train (unless a finished run with the same command exists) and evaluate one run.

    Returns:
        the run's info: {"spec", "train_seconds"[, "eval_real_seconds"]} (also written to
        ``benchmark_run.json`` in the run's folder).
    """
    run = plan.run_dir(name, seed)
    info_path = os.path.join(run, "benchmark_run.json")
    train_cmd = plan.train_command(name, seed)
    info = _reusable_info(plan, run, info_path, train_cmd)
    if info is None or not os.path.isfile(demo_csv(run)):
        seconds = run_logged(train_cmd, os.path.join(run, "train_stdout.log"), env)
        info = {"spec": shlex.join(train_cmd[1:]), "train_seconds": seconds}
        write_json(info_path, info)
    if real and not os.path.isfile(real_csv(run)):
        info["eval_real_seconds"] = run_logged(
            plan.eval_command(name, seed), os.path.join(run, "eval_real_stdout.log"), env
        )
        write_json(info_path, info)
    return info


def final_losses(metrics_json, last=3):
    """Mean of the last ``last`` logged values of each loss in detectron2's metrics.json (each
    logged value is the median over the log period)."""
    values = {}
    if not os.path.isfile(metrics_json):
        return values
    with open(metrics_json, encoding="utf-8") as f:
        for line in f:
            entry = json.loads(line)
            for key, value in entry.items():
                if key == "total_loss" or key.startswith("loss_"):
                    values.setdefault(key, []).append(value)
    return {k: sum(v[-last:]) / len(v[-last:]) for k, v in values.items()}

#!/usr/bin/env python
"""Install detectron2 into the running Python environment, by the first route that works.

detectron2 is not published on PyPI under its own name. Routes, in order
(facts behind them: see docs/install.md):

1. ``keep``:   a detectron2 that already imports and is recent enough
               (``get_default_optimizer_params`` takes ``lr_factor_func``).
2. ``source``: the official repository, ``pip install git+https://github.com/facebookresearch/detectron2.git``
               (only tried when GitHub answers within a few seconds).
3. ``wheel``:  the registry wheel ``sal-detectron2==0.7.2`` (a repackaging of detectron2's main
               branch), checked against a known sha256 and re-packed as a pure-Python
               ``detectron2`` distribution: its compiled ``_C`` extension (CPython 3.10 only) and
               its top-level ``tools`` package are dropped, ``numpy<2`` is dropped from its
               requirements. Without ``_C`` detectron2 loses only deformable/rotated ops, which
               this project does not use.

Prints ``detectron2 route: <route> (<version>)`` as its last line. Standard library only.
"""

import argparse
import base64
import csv
import hashlib
import io
import os
import re
import subprocess
import sys
import tempfile
import zipfile

OFFICIAL_URL = "https://github.com/facebookresearch/detectron2.git"
WHEEL_SPEC = "sal-detectron2==0.7.2"
WHEEL_SHA256 = "491af0c7f79bdb2d178e46f6cb16a97c4ac968d45c41ea3f6b6435d59bbee561"
WHEEL_VERSION = "0.7.2"
# Requirements of the registry wheel that must not reach pip as they are (numpy<2 is stale:
# detectron2's Python code runs on numpy 2), and the ones upstream declares but it lacks.
DROPPED_REQUIREMENTS = ("numpy",)
ADDED_REQUIREMENTS = ("fvcore>=0.1.5", "iopath>=0.1.7")

PROBE = (
    "import inspect, importlib.metadata as m;"
    "from detectron2.solver import get_default_optimizer_params as f;"
    "assert 'lr_factor_func' in inspect.signature(f).parameters, 'too old: no lr_factor_func';"
    "import detectron2.modeling.backbone.vit;"
    "print(m.version('detectron2'))"
)


def probe():
    """Return the installed detectron2 version if it is usable here, else None."""
    r = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True)
    return r.stdout.strip() if r.returncode == 0 else None


def pip(*args):
    subprocess.check_call([sys.executable, "-m", "pip", *args])


def github_reachable(timeout=15):
    try:
        r = subprocess.run(
            ["git", "ls-remote", "--exit-code", OFFICIAL_URL, "HEAD"],
            capture_output=True,
            timeout=timeout,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return r.returncode == 0


def install_from_source():
    # detectron2's setup.py imports torch, so it must build against the installed one.
    pip("install", "--no-build-isolation", f"git+{OFFICIAL_URL}")


def _record_hash(data):
    digest = hashlib.sha256(data).digest()
    return "sha256=" + base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def _rewrite_metadata(text):
    out = []
    for line in text.splitlines():
        if line.startswith("Name: "):
            line = "Name: detectron2"
        elif line.startswith("Summary: "):
            line = (
                "Summary: detectron2 (main branch, via sal-detectron2 "
                f"{WHEEL_VERSION}) re-packed as pure Python"
            )
        elif line.startswith("Requires-Dist: "):
            name = re.split(r"[\s<>=!~;\[]", line[len("Requires-Dist: ") :], 1)[0]
            if name.lower() in DROPPED_REQUIREMENTS:
                continue
        out.append(line)
    first_req = next(i for i, line in enumerate(out) if line.startswith("Requires-Dist: "))
    out[first_req:first_req] = [f"Requires-Dist: {r}" for r in ADDED_REQUIREMENTS]
    return "\n".join(out) + "\n"


def repack(src, dst_dir):
    """Re-pack the registry wheel as ``detectron2-<v>-py3-none-any.whl``; return its path."""
    old_info = f"sal_detectron2-{WHEEL_VERSION}.dist-info/"
    new_info = f"detectron2-{WHEEL_VERSION}.dist-info/"
    dst = os.path.join(dst_dir, f"detectron2-{WHEEL_VERSION}-py3-none-any.whl")
    records = []
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as zout:
        for item in zin.infolist():
            name = item.filename
            if name.startswith("tools/") or re.match(r"detectron2/_C\..*\.so$", name):
                continue
            if name.endswith("/"):
                continue
            data = zin.read(name)
            if name.startswith(old_info):
                base = name[len(old_info) :]
                if base == "RECORD":
                    continue
                name = new_info + base
                if base == "WHEEL":
                    text = data.decode()
                    text = re.sub(r"Root-Is-Purelib: \w+", "Root-Is-Purelib: true", text)
                    text = re.sub(r"Tag: .*", "Tag: py3-none-any", text)
                    data = text.encode()
                elif base == "METADATA":
                    data = _rewrite_metadata(data.decode()).encode()
                elif base == "top_level.txt":
                    data = b"detectron2\n"
            zout.writestr(name, data)
            records.append((name, _record_hash(data), str(len(data))))
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerows(records)
        writer.writerow((new_info + "RECORD", "", ""))
        zout.writestr(new_info + "RECORD", buf.getvalue())
    return dst


def install_from_registry_wheel(cache_dir):
    os.makedirs(cache_dir, exist_ok=True)
    src = os.path.join(cache_dir, f"sal_detectron2-{WHEEL_VERSION}-cp310-none-any.whl")
    if not os.path.exists(src):
        # pip only offers this wheel for CPython 3.10; we download it without installing.
        pip(
            "download", "--no-deps", "--only-binary=:all:", "--python-version", "3.10",
            WHEEL_SPEC, "-d", cache_dir,
        )  # fmt: skip
    with open(src, "rb") as f:
        sha = hashlib.sha256(f.read()).hexdigest()
    if sha != WHEEL_SHA256:
        raise SystemExit(
            f"{src}: sha256 {sha} does not match the verified {WHEEL_SHA256}; "
            "refusing to install it (delete the file to download it again)."
        )
    with tempfile.TemporaryDirectory() as tmp:
        pip("install", repack(src, tmp))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--cache-dir",
        default=os.path.join(sys.prefix, "wheels"),
        help="where the downloaded registry wheel is kept (default: %(default)s)",
    )
    args = parser.parse_args()

    version = probe()
    if version:
        print(f"detectron2 route: keep (existing {version})")
        return
    if github_reachable():
        try:
            install_from_source()
        except subprocess.CalledProcessError as e:
            print(f"official source install failed ({e}); falling back to the registry wheel")
        else:
            version = probe()
            if version:
                print(f"detectron2 route: source ({version})")
                return
    else:
        print(f"{OFFICIAL_URL} is unreachable; using the registry wheel {WHEEL_SPEC}")
    install_from_registry_wheel(args.cache_dir)
    version = probe()
    if not version:
        raise SystemExit("detectron2 was installed from the registry wheel but does not import")
    print(f"detectron2 route: wheel ({WHEEL_SPEC} re-packed, {version})")


if __name__ == "__main__":
    main()

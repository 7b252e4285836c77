"""tools/demo_app.py's command line: what it refuses before serving, the models it loads, and a
trimap-guided model served end to end over HTTP (the page itself is tested in the browser tests,
test_*_browser.py)."""

import http.client
import json
import os
import re
import signal
import socket
import sys
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from api_helpers import decode, png_bytes
from server_process import ServerProcess

from alphafree_d2.utils.testing import load_script

pytest.importorskip("starlette", reason="the demo extra is not installed: pip install -e .[demo]")

ROOT = Path(__file__).resolve().parents[2]


def load_tool():
    return load_script("tools/demo_app.py")


demo_app = load_tool()


def test_missing_checkpoint_is_reported(tiny_pair, tmp_path, capsys):
    missing = tmp_path / "nothing.pth"
    argv = [
        "--config-file",
        tiny_pair.config_file,
        f"train.init_checkpoint={missing}",
        "--port",
        "0",
    ]
    assert demo_app.main(argv) == 2
    error = capsys.readouterr().err
    assert error.startswith(f"error: the model ({tiny_pair.config_file}): checkpoint {missing}")


def test_options_may_follow_the_overrides(tiny_pair, tmp_path, capsys):
    """The issue's form: --config-file CFG key=value --compare CFG2 PATH2 --port N."""
    missing = tmp_path / "other.pth"
    argv = [
        "--config-file",
        tiny_pair.config_file,
        f"train.init_checkpoint={tiny_pair.checkpoints[0]}",
        "--compare",
        tiny_pair.config_file,
        str(missing),
        "--port",
        "0",
    ]
    assert demo_app.main(argv) == 2  # model A loaded, model B's checkpoint is missing
    assert (
        f"error: model B ({tiny_pair.config_file}): checkpoint {missing}" in capsys.readouterr().err
    )


def test_a_taken_port_is_reported(tiny_pair, capsys):
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        argv = [
            "--config-file",
            tiny_pair.config_file,
            f"train.init_checkpoint={tiny_pair.checkpoints[0]}",
            "--port",
            str(port),
        ]
        assert demo_app.main(argv) == 2
    assert f"cannot listen on 127.0.0.1:{port}" in capsys.readouterr().err


def test_examples_folder_must_hold_images(tiny_pair, tmp_path, capsys):
    argv = ["--config-file", tiny_pair.config_file, "--examples", str(tmp_path), "--port", "0"]
    with pytest.raises(SystemExit) as exit_info:
        demo_app.main(argv)
    assert exit_info.value.code == 2
    assert "no images in it" in capsys.readouterr().err


def test_models_follow_the_command_line(tiny_pair, tiny_predictors):
    """--compare loads its own checkpoint; --device, --max-megapixels and --highres reach both
    predictors, as in tools/predict.py."""
    from alphafree_d2.inference.highres import HighResolutionPolicy
    from alphafree_d2.utils.testing import random_image

    args = demo_app.get_parser().parse_intermixed_args(
        [
            "--config-file",
            tiny_pair.config_file,
            f"train.init_checkpoint={tiny_pair.checkpoints[0]}",
            "--compare",
            tiny_pair.config_file,
            tiny_pair.checkpoints[1],
            "--device",
            "cpu",
            "--max-megapixels",
            "0.004",
            "--highres",
            "resize",
        ]
    )
    models = demo_app.load_models(args)
    assert [m.name for m in models] == ["A", "B"]
    image = random_image(96, 128, seed=20)  # 0.012 megapixels: above the budget
    for model, checkpoint, reference in zip(models, tiny_pair.checkpoints, tiny_predictors):
        assert model.description == f"{checkpoint} ({tiny_pair.config_file}, automatic)"
        assert model.predictor.policy == HighResolutionPolicy(max_megapixels=0.004, mode="resize")
        assert str(model.predictor.device) == "cpu"
        reference_state = reference.model.state_dict()
        for key, value in model.predictor.model.state_dict().items():
            assert value.equal(reference_state[key]), key
    assert models[0].predictor(image).shape == (96, 128)


@pytest.mark.parametrize(
    "option, value",
    [
        ("--max-upload-mb", "-5"),
        ("--max-upload-mb", "0"),
        ("--max-upload-mb", "nan"),
        ("--max-upload-mb", "inf"),
        ("--max-upload-mb", "lots"),
        ("--max-megapixels", "0"),
        ("--max-megapixels", "nan"),
        ("--max-megapixels", "-1"),
        ("--max-pixels", "0"),
        ("--max-pixels", "2.5"),
        ("--max-waiting", "-1"),
        ("--max-waiting", "1.5"),
        ("--port", "-1"),
        ("--port", "65536"),
    ],
)
def test_invalid_numbers_are_refused_before_anything_starts(tmp_path, capsys, option, value):
    """The parser refuses them (exit 2, the option named); nothing is loaded: the config file
    does not even exist."""
    argv = ["--config-file", str(tmp_path / "absent.py"), f"{option}={value}", "--port", "0"]
    if option == "--port":
        argv = argv[:3] + [f"{option}={value}"]
    with pytest.raises(SystemExit) as exit_info:
        demo_app.main(argv)
    assert exit_info.value.code == 2
    error = capsys.readouterr().err
    assert f"argument {option}: expected" in error and "Traceback" not in error


def test_mixed_models_load_with_their_kinds(tiny_pair, tiny_trimap):
    from alphafree_d2.app import load_demo_models, warm_up

    models = load_demo_models(
        tiny_trimap.config_file,
        [f"train.init_checkpoint={tiny_trimap.checkpoint}"],
        compare=(tiny_pair.config_file, tiny_pair.checkpoints[0]),
        device="cpu",
    )
    assert [(m.name, m.trimap_input) for m in models] == [("A", True), ("B", False)]
    assert models[0].description.endswith("trimap-guided)")
    warm_up(models)  # a trimap-guided model gets a trimap (the tool used to refuse it here)


def request(url, method="GET", path="/", body=None, headers=()):
    """(status, body bytes) of one HTTP request with exactly these headers (Host included)."""
    host, port = url.split("//")[1].rstrip("/").rsplit(":", 1)
    connection = http.client.HTTPConnection(host, int(port), timeout=60)
    try:
        connection.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        for name, value in headers:
            connection.putheader(name, value)
        connection.putheader("Content-Length", str(len(body or b"")))
        connection.endheaders(body or b"")
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


@pytest.mark.slow
def test_a_trimap_guided_model_is_served(tiny_trimap):
    """The documented command: tools/demo_app.py --config-file <trimap-guided config>
    train.init_checkpoint=...; the API takes the photo and its trimap; the address is checked."""
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    argv = [
        sys.executable,
        str(ROOT / "tools" / "demo_app.py"),
        "--config-file",
        tiny_trimap.config_file,
        f"train.init_checkpoint={tiny_trimap.checkpoint}",
        "--port",
        "0",
        "--device",
        "cpu",
    ]
    server = ServerProcess(argv, env=env, cwd=ROOT)
    try:
        url = server.wait_for_url(timeout=300)
        host = url.split("//")[1].rstrip("/")
        page = [("Host", host), ("X-Alphafree-Request", "1")]
        status, body = request(url, path="/api/info", headers=[("Host", host)])
        assert status == 200 and json.loads(body)["models"][0]["trimap_input"] is True

        from alphafree_d2.utils.testing import random_image

        image = random_image(40, 56, seed=1)
        status, body = request(url, "POST", "/api/photos?filename=p.png", png_bytes(image), page)
        assert status == 200, body
        photo = json.loads(body)
        trimap = np.full((40, 56), 128, np.uint8)
        trimap[:, :6], trimap[:, 50:] = 0, 255
        path = f"/api/predict?photo={photo['photo']}&filename=t.png"
        status, body = request(url, "POST", path, png_bytes(trimap), page)
        assert status == 200, body
        status, alpha = request(url, path=json.loads(body)["models"][0]["alpha"], headers=page)
        alpha = decode(alpha)
        assert (alpha[:, :6] == 0).all() and (alpha[:, 50:] == 255).all()

        rebound = [("Host", f"attacker.test:{server.port}"), ("X-Alphafree-Request", "1")]
        assert request(url, path="/", headers=rebound)[0] == 421
        cross_site = page + [("Origin", "http://attacker.test")]
        assert request(url, "POST", "/api/predict?example=chelsea", b"", cross_site)[0] == 403
        assert server.stop() == 0, server.text()
        assert "refused GET /: Host 'attacker.test" in server.text()
        assert "Traceback" not in server.text(), server.text()
    finally:
        server.kill()


SERVE_SCRIPT = """
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from alphafree_d2.app import bind_socket, serve


async def hello(request):
    return PlainTextResponse("hello")


serve(Starlette(routes=[Route("/", hello)]), bind_socket("127.0.0.1", 0),
      announce=lambda m: print(m, flush=True))
"""


@pytest.mark.slow
@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM])
def test_serve_stops_cleanly_on_ctrl_c_and_sigterm(stop_signal):
    """serve() on a port the OS chose answers, and on the signal closes and returns (exit 0)."""
    server = ServerProcess([sys.executable, "-c", SERVE_SCRIPT])
    try:
        url = server.wait_for_url(timeout=120)
        assert re.match(r"http://127\.0\.0\.1:\d+/$", url)
        with urllib.request.urlopen(url, timeout=30) as response:
            assert response.read() == b"hello"
        assert server.stop(stop_signal) == 0, server.text()
        assert server.text().strip().endswith("demo page stopped"), server.text()
        assert "Traceback" not in server.text(), server.text()
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", server.port), timeout=5).close()
    finally:
        server.kill()


def test_max_pixels_sets_the_cap_of_every_reader(tiny_pair, tmp_path, capsys):
    from alphafree_d2.data.io import get_max_pixels, set_max_pixels

    argv = [
        "--config-file",
        tiny_pair.config_file,
        f"train.init_checkpoint={tmp_path / 'missing.pth'}",
        "--max-pixels",
        "1e6",
    ]
    previous = get_max_pixels()
    try:
        assert demo_app.main(argv) == 2  # stops at the missing checkpoint, after the cap is set
        assert get_max_pixels() == 1_000_000
    finally:
        set_max_pixels(previous)


def test_warm_up_survives_a_broken_model(tiny_predictors, app_log):
    from alphafree_d2.app import DemoModel, warm_up

    def broken(image):
        raise RuntimeError("NaN weights (simulated)")

    warm_up([DemoModel("A", tiny_predictors[0]), DemoModel("B", broken)])
    assert "model B failed on the warm-up image: RuntimeError: NaN weights" in app_log.text

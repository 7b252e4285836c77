"""tools/demo_app.py's command line: what it refuses before serving (the served page is tested in
test_demo_app_browser.py)."""

import importlib.util
import re
import signal
import socket
import sys
import urllib.request
from pathlib import Path

import pytest
from server_process import ServerProcess

pytest.importorskip("starlette", reason="the demo extra is not installed: pip install -e .[demo]")

ROOT = Path(__file__).resolve().parents[2]


def load_tool():
    spec = importlib.util.spec_from_file_location("tool_demo_app", ROOT / "tools" / "demo_app.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


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
        assert model.description == f"{checkpoint} ({tiny_pair.config_file})"
        assert model.predictor.policy == HighResolutionPolicy(max_megapixels=0.004, mode="resize")
        assert str(model.predictor.device) == "cpu"
        reference_state = reference.model.state_dict()
        for key, value in model.predictor.model.state_dict().items():
            assert value.equal(reference_state[key]), key
    assert models[0].predictor(image).shape == (96, 128)


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

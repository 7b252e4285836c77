"""Helpers of the demo page's API tests: PNG bytes in and out, an in-process client that
speaks as the page does (its address in Host, the page's request header)."""

import cv2
import numpy as np

HOST = "127.0.0.1:7860"
REQUEST_HEADER = "X-Alphafree-Request"  # alphafree_d2.app.REQUEST_HEADER (test_guard checks)


def png_bytes(array):
    """uint8 RGB(A) or gray array -> PNG bytes (written with OpenCV, channel order swapped)."""
    if array.ndim == 3:
        array = array[:, :, [2, 1, 0, 3][: array.shape[2]]]
    ok, data = cv2.imencode(".png", array)
    assert ok
    return data.tobytes()


def decode(data):
    """PNG bytes -> array, RGB(A) order."""
    array = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    assert array is not None, "not a decodable image"
    if array.ndim == 3:
        array = array[:, :, [2, 1, 0, 3][: array.shape[2]]]
    return array


def page_client(app, **kwargs):
    """Starlette TestClient that sends what the page's script sends: Host 127.0.0.1:7860 and
    X-Alphafree-Request: 1 (use it in a ``with`` block)."""
    from starlette.testclient import TestClient

    return TestClient(app, base_url=f"http://{HOST}", headers={REQUEST_HEADER: "1"}, **kwargs)


def upload(client, data, filename="photo.png", path="/api/predict", **params):
    return client.post(path, params={"filename": filename, **params}, content=data)


def bomb_png(width=20000, height=20000):
    """A PNG of a few hundred bytes whose header declares width x height pixels (its data is
    cut short: decoding it would first allocate the whole image)."""
    import struct
    import zlib

    def chunk(kind, data):
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    rows = zlib.compress(b"\0" * (3 * width + 1) * 4)  # the first 4 rows only
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", rows) + chunk(b"IEND", b"")
    )

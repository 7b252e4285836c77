"""Helpers for the data tests: tiny images written with OpenCV, catalog cleanup."""

import os

import cv2
import numpy as np
import pytest

from detectron2.data import DatasetCatalog, MetadataCatalog


def _write(path, array):
    """Write an RGB (H, W, 3), RGBA (H, W, 4) or single-channel array; creates folders."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if array.ndim == 3 and array.shape[2] == 3:
        array = array[:, :, ::-1]
    elif array.ndim == 3 and array.shape[2] == 4:
        array = array[:, :, [2, 1, 0, 3]]
    ok, data = cv2.imencode(os.path.splitext(path)[1], np.ascontiguousarray(array))
    assert ok, path
    data.tofile(path)
    return path


def _blob_alpha(height=96, width=128, seed=0):
    """An 8-bit matte: an opaque ellipse with a soft 6 px ramp, placed by ``seed``."""
    rng = np.random.default_rng(seed)
    cy, cx = rng.uniform(0.4, 0.6) * height, rng.uniform(0.4, 0.6) * width
    yy, xx = np.mgrid[:height, :width]
    dist = np.sqrt(((yy - cy) / (0.3 * height)) ** 2 + ((xx - cx) / (0.3 * width)) ** 2)
    return np.round(np.clip((1.15 - dist) / 0.3, 0, 1) * 255).astype(np.uint8)


@pytest.fixture
def write():
    """``write(path, array)``: see ``_write``."""
    return _write


@pytest.fixture
def blob_alpha():
    """``blob_alpha(height, width, seed)``: see ``_blob_alpha``."""
    return _blob_alpha


@pytest.fixture
def catalog_names():
    """Names registered during a test, removed from both catalogs afterwards."""
    names = []
    yield names
    for name in names:
        if name in DatasetCatalog:
            DatasetCatalog.remove(name)
        if name in MetadataCatalog.list():
            MetadataCatalog.remove(name)

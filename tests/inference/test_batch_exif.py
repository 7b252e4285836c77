"""Photos are read upright: the EXIF orientation a phone writes into a JPEG is applied."""

import numpy as np
import pytest
from PIL import ExifTags, Image, ImageOps

from alphafree_d2.inference.batch import read_input_image


def _marked_image(height, width):
    """Gray image with a white block in the top-left corner and a black one top-right."""
    image = np.full((height, width, 3), 128, np.uint8)
    image[:8, :8] = 255
    image[:8, -8:] = 0
    return image


@pytest.mark.parametrize("orientation", [1, 3, 6, 8])
def test_rotated_jpeg_is_read_upright(tmp_path, orientation):
    stored = _marked_image(32, 48)
    pil = Image.fromarray(stored)
    exif = pil.getexif()
    exif[ExifTags.Base.Orientation] = orientation
    path = tmp_path / "phone.jpg"
    pil.save(path, quality=95, exif=exif.tobytes())

    upright = read_input_image(str(path))
    # Where the stored top-left (white) corner is shown: 6 = rotate 90 degrees clockwise to
    # view, 8 = counter-clockwise, 3 = 180 degrees.
    shape, white = {
        1: ((32, 48, 3), (0, 0)),
        3: ((32, 48, 3), (-1, -1)),
        6: ((48, 32, 3), (0, -1)),
        8: ((48, 32, 3), (-1, 0)),
    }[orientation]
    assert upright.shape == shape and upright.dtype == np.uint8
    assert upright[white].min() > 200
    # Same pixels as PIL's own decoding turned by exif_transpose (JPEG decoders may differ by
    # a few codes).
    with Image.open(path) as im:
        expected = np.asarray(ImageOps.exif_transpose(im).convert("RGB"))
    assert np.abs(upright.astype(int) - expected.astype(int)).max() <= 3

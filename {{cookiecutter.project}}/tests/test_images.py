"""Image files of every common kind are decoded to the right 8-bit RGB pixels, upright."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from {{ cookiecutter.package }}.data.images import is_image_file, load_rgb, read_image_size


def pixels(path) -> np.ndarray:
    image = load_rgb(path)
    assert image.mode == "RGB"
    return np.asarray(image)


def test_grayscale_becomes_three_equal_channels(tmp_path):
    Image.new("L", (4, 3), 77).save(tmp_path / "grey.png")
    assert pixels(tmp_path / "grey.png").shape == (3, 4, 3)
    assert (pixels(tmp_path / "grey.png") == 77).all()


def test_sixteen_bit_mid_grey_stays_mid_grey_instead_of_clipping_to_white(tmp_path):
    Image.fromarray(np.full((5, 5), 32768, dtype=np.uint16)).save(tmp_path / "deep.png")
    assert Image.open(tmp_path / "deep.png").mode == "I;16"
    assert (pixels(tmp_path / "deep.png") == 128).all()
    Image.fromarray(np.full((5, 5), 65535, dtype=np.uint16)).save(tmp_path / "white.tif")
    assert (pixels(tmp_path / "white.tif") == 255).all()


def test_transparent_pixels_are_composited_on_white(tmp_path):
    rgba = np.zeros((2, 2, 4), dtype=np.uint8)
    rgba[0, 0] = (255, 0, 0, 255)  # opaque red
    rgba[0, 1] = (0, 0, 255, 128)  # half-transparent blue
    rgba[1] = (0, 0, 0, 0)  # fully transparent black
    Image.fromarray(rgba, "RGBA").save(tmp_path / "alpha.png")
    rgb = pixels(tmp_path / "alpha.png").astype(int)
    assert rgb[0, 0].tolist() == [255, 0, 0]
    assert rgb[0, 1].tolist() == pytest.approx([127, 127, 255], abs=2)
    assert (rgb[1] == 255).all()


def test_palette_transparency_is_white_and_opaque_colours_keep_their_value(tmp_path):
    palette_image = Image.new("P", (2, 1))
    palette_image.putpalette([0, 0, 0, 10, 200, 30] + [0] * 762)
    palette_image.putpixel((0, 0), 0)
    palette_image.putpixel((1, 0), 1)
    palette_image.save(tmp_path / "palette.png", transparency=0)
    assert pixels(tmp_path / "palette.png").tolist() == [[[255, 255, 255], [10, 200, 30]]]


def test_cmyk_becomes_rgb(tmp_path):
    Image.new("CMYK", (3, 3), (0, 255, 255, 0)).save(tmp_path / "print.jpg", quality=100)
    red = pixels(tmp_path / "print.jpg")[1, 1].astype(int)
    assert red[0] > 200 and red[1] < 50 and red[2] < 50


def test_exif_orientation_turns_the_image_upright(tmp_path):
    # Stored landscape 40x20 with a red left half; orientation 6 says "rotate 90 degrees clockwise to view".
    stored = np.zeros((20, 40, 3), dtype=np.uint8)
    stored[:, :20] = (255, 0, 0)
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(stored).save(tmp_path / "phone.jpg", exif=exif, quality=100)
    upright = pixels(tmp_path / "phone.jpg").astype(int)
    assert upright.shape == (40, 20, 3)  # portrait, as a viewer shows it
    assert upright[5, 10, 0] > 200 and upright[35, 10, 0] < 50  # the red half is now on top
    assert read_image_size(tmp_path / "phone.jpg") == (20, 40)


@pytest.mark.parametrize(
    ("name", "is_image"),
    [
        ("cat.jpg", True),
        ("CAT.JPG", True),
        ("scan.PNG", True),
        ("photo.JpEg", True),
        ("photo.webp", True),
        ("anim.GIF", True),
        (".DS_Store", False),
        ("._cat.jpg", False),
        ("notes.txt", False),
        ("labels.csv", False),
    ],
)
def test_image_files_are_recognised_by_extension_in_any_case_and_hidden_files_are_not(name, is_image):
    assert is_image_file(name) is is_image

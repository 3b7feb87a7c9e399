"""Reading image files as 8-bit RGB, whatever their mode, bit depth and EXIF orientation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import ExifTags, Image, ImageOps
from torchvision.datasets.folder import IMG_EXTENSIONS, has_file_allowed_extension

# torchvision's list, and GIF, which Pillow reads too (its first frame): training, predict and serve
# take the same files, whether in a folder or named alone.
IMAGE_EXTENSIONS: tuple[str, ...] = (*IMG_EXTENSIONS, ".gif")
# Transparent pixels are shown on white: what a viewer shows, and what product photos and icons are
# cut out to sit on. Dropping alpha instead would expose whatever colour transparent pixels store.
BACKGROUND = (255, 255, 255)
SIXTEEN_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I")


def is_image_file(path: str | Path) -> bool:
    """True for an image extension in any case (.jpg, .JPG, ...), False for hidden files.

    Hidden files include `.DS_Store` and the `._photo.jpg` resource forks macOS writes on other disks,
    which have an image extension but hold no image.
    """
    name = Path(path).name
    return not name.startswith(".") and has_file_allowed_extension(name, IMAGE_EXTENSIONS)


def to_rgb(image: Image.Image) -> Image.Image:
    """Return `image` as 8-bit RGB: grey, palette, alpha, CMYK and 16-bit images included."""
    if image.mode == "RGB":
        return image
    if image.mode in SIXTEEN_BIT_MODES:
        # Pillow's convert() clips 16-bit values to 0-255, which turns a mid-grey image white.
        values = np.asarray(image, dtype=np.float32).clip(0, 65535) / 257.0
        return Image.fromarray(values.round().astype(np.uint8)).convert("RGB")
    if image.mode == "P" or "transparency" in image.info:
        image = image.convert("RGBA")  # a palette's or a colour key's transparency becomes alpha
    if image.mode in ("LA", "La", "PA", "RGBa"):
        image = image.convert("RGBA")
    if image.mode == "RGBA":
        background = Image.new("RGBA", image.size, (*BACKGROUND, 255))
        return Image.alpha_composite(background, image).convert("RGB")
    return image.convert("RGB")


def exif_orientation(image: Image.Image) -> int:
    """The EXIF orientation (1 = upright) without decoding the pixels."""
    if image.format == "PNG" and "exif" not in image.info:
        return 1  # Pillow would decode the whole PNG looking for EXIF data after the pixels
    return image.getexif().get(ExifTags.Base.Orientation, 1)


def load_rgb(path: str | Path) -> Image.Image:
    """Decode an image file as 8-bit RGB, turned upright as its EXIF orientation says."""
    with Image.open(path) as image:
        if exif_orientation(image) != 1:
            image = ImageOps.exif_transpose(image)
        else:
            image.load()
        return to_rgb(image)


def read_image_size(path: str | Path) -> tuple[int, int]:
    """Return (width, height) as shown, from the file's header only (no decoding).

    Raises the OSError Pillow raises for a missing, empty or non-image file.
    """
    with Image.open(path) as image:
        width, height = image.size
        if exif_orientation(image) in (5, 6, 7, 8):  # turned by 90 degrees
            width, height = height, width
        return width, height


# What Pillow raises for files it cannot read: missing, empty, truncated, not an image, or too big.
READ_ERRORS = (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError)

"""maskgate.images.inspect_image: format by magic bytes and dimensions, checked on real files made
by Pillow (the expected values are what Pillow was asked to write)."""

from __future__ import annotations

import hashlib
import io
import random

import pytest
from PIL import Image

from maskgate.errors import ImageTooLarge, InvalidImage
from maskgate.images import MAX_IMAGE_BYTES, SNIFF_BYTES, ImageInfo, inspect_image
from tests.support.images import png_header

SIZES = [(1, 1), (17, 9), (640, 480), (3, 1000)]
TWENTY_MB = 20 * 1024 * 1024


def _encode(size: tuple[int, int], fmt: str, mode: str = "RGB", **params: object) -> bytes:
    image = Image.new(mode, size)
    if mode in ("RGB", "RGBA"):
        # a little texture so encoders do real work
        image.putpixel((0, 0), (200, 10, 30, 128)[: len(mode)])
    buf = io.BytesIO()
    image.save(buf, fmt, **params)
    return buf.getvalue()


def _assert_info(data: bytes, fmt: str, size: tuple[int, int]) -> None:
    info = inspect_image(data)
    assert (info.format, info.width, info.height) == (fmt, *size)


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("mode", ["RGB", "RGBA", "L", "P", "1"])
def test_inspect_image_reads_png(size, mode):
    _assert_info(_encode(size, "PNG", mode), "png", size)


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("mode", ["RGB", "L", "CMYK"])
def test_inspect_image_reads_baseline_jpeg(size, mode):
    _assert_info(_encode(size, "JPEG", mode), "jpeg", size)


@pytest.mark.parametrize("size", SIZES)
def test_inspect_image_reads_progressive_jpeg(size):
    data = _encode(size, "JPEG", progressive=True)
    assert b"\xff\xc2" in data  # precondition: Pillow wrote SOF2

    _assert_info(data, "jpeg", size)


def test_inspect_image_reads_jpeg_with_big_exif_before_sof():
    data = _encode((321, 123), "JPEG", exif=b"Exif\x00\x00" + bytes(65_000))
    assert len(data) > 65_000

    _assert_info(data, "jpeg", (321, 123))


def test_inspect_image_reads_jpeg_with_many_app_segments_before_sof():
    # a 300 kB ICC profile is split over several APP2 segments, all before the frame header
    data = _encode((45, 67), "JPEG", icc_profile=bytes(300_000))
    assert data.find(b"\xff\xc0") > SNIFF_BYTES

    _assert_info(data, "jpeg", (45, 67))


def test_inspect_image_jpeg_sof_beyond_the_sniffed_head_gives_no_dimensions():
    data = _encode((45, 67), "JPEG", icc_profile=bytes(300_000))

    info = inspect_image(data[:SNIFF_BYTES], total_size=len(data))

    assert info == ImageInfo(format="jpeg", width=None, height=None)


@pytest.mark.parametrize("size", [*SIZES, (16383, 2)])
def test_inspect_image_reads_lossy_webp(size):
    data = _encode(size, "WEBP", quality=80)
    assert data[12:16] == b"VP8 "

    _assert_info(data, "webp", size)


@pytest.mark.parametrize("size", [*SIZES, (16383, 2)])
def test_inspect_image_reads_lossless_webp(size):
    data = _encode(size, "WEBP", lossless=True)
    assert data[12:16] == b"VP8L"

    _assert_info(data, "webp", size)


@pytest.mark.parametrize("size", SIZES)
def test_inspect_image_reads_webp_with_alpha_as_vp8x(size):
    data = _encode(size, "WEBP", "RGBA", quality=80)
    assert data[12:16] == b"VP8X"

    _assert_info(data, "webp", size)


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("mode", ["P", "L", "RGB"])
def test_inspect_image_reads_gif(size, mode):
    _assert_info(_encode(size, "GIF", mode), "gif", size)


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("mode", ["RGB", "L", "P", "1"])
def test_inspect_image_reads_bmp(size, mode):
    _assert_info(_encode(size, "BMP", mode), "bmp", size)


@pytest.mark.parametrize("size", SIZES)
def test_inspect_image_reads_little_endian_tiff(size):
    data = _encode(size, "TIFF")
    assert data[:4] == b"II*\x00"

    _assert_info(data, "tiff", size)


@pytest.mark.parametrize("size", SIZES)
def test_inspect_image_reads_big_endian_tiff(size):
    data = _encode(size, "TIFF", "I;16B")
    assert data[:4] == b"MM\x00*"

    _assert_info(data, "tiff", size)


@pytest.mark.parametrize("compression", ["tiff_lzw", "tiff_deflate", "packbits"])
def test_inspect_image_reads_compressed_tiff(compression):
    _assert_info(_encode((77, 33), "TIFF", compression=compression), "tiff", (77, 33))


@pytest.mark.parametrize("fmt", ["PNG", "TIFF"])
def test_inspect_image_reads_width_above_65535(fmt):
    _assert_info(_encode((70_000, 1), fmt, "L"), fmt.lower(), (70_000, 1))


@pytest.mark.parametrize(
    ("fmt", "mime", "extension"),
    [
        ("PNG", "image/png", "png"),
        ("JPEG", "image/jpeg", "jpg"),
        ("WEBP", "image/webp", "webp"),
        ("GIF", "image/gif", "gif"),
        ("BMP", "image/bmp", "bmp"),
        ("TIFF", "image/tiff", "tiff"),
    ],
)
def test_inspect_image_gives_mime_and_extension(fmt, mime, extension):
    info = inspect_image(_encode((4, 4), fmt))

    assert (info.mime, info.extension) == (mime, extension)


# --- not images ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"hello, world", id="text"),
        pytest.param(b'{"image": "cat.png"}', id="json"),
        pytest.param(b"<svg xmlns='http://www.w3.org/2000/svg'/>", id="svg"),
        pytest.param(b"%PDF-1.7\n", id="pdf"),
        pytest.param(hashlib.sha512(b"seed").digest() * 64, id="random"),
        pytest.param(bytes(1024), id="zeros"),
        pytest.param(b"GIF8", id="gif-prefix-only"),
        pytest.param(b"BM", id="bmp-magic-only"),
        pytest.param(b"RIFF\x00\x00\x00\x00WAVEfmt ", id="riff-wave"),
        pytest.param(b"\x89PNG", id="png-half-signature"),
    ],
)
def test_inspect_image_refuses_non_images(data):
    with pytest.raises(InvalidImage):
        inspect_image(data)


def test_inspect_image_refuses_empty_input():
    with pytest.raises(InvalidImage):
        inspect_image(b"")


@pytest.mark.parametrize(("width", "height"), [(0, 10), (10, 0), (0, 0)])
def test_inspect_image_refuses_zero_dimensions(width, height):
    with pytest.raises(InvalidImage):
        inspect_image(png_header(width, height))


# --- size ------------------------------------------------------------------------------------


def test_inspect_image_refuses_total_size_over_20_mb():
    with pytest.raises(ImageTooLarge):
        inspect_image(_encode((8, 8), "PNG"), total_size=TWENTY_MB + 1)


def test_inspect_image_accepts_total_size_of_exactly_20_mb():
    assert MAX_IMAGE_BYTES == TWENTY_MB
    assert inspect_image(_encode((8, 8), "PNG"), total_size=TWENTY_MB).format == "png"


def test_inspect_image_refuses_head_longer_than_20_mb():
    data = _encode((8, 8), "PNG")
    data += bytes(TWENTY_MB + 1 - len(data))

    with pytest.raises(ImageTooLarge):
        inspect_image(data)


def test_inspect_image_size_check_comes_before_the_format_check():
    with pytest.raises(ImageTooLarge):
        inspect_image(b"not an image", total_size=TWENTY_MB + 1)


# --- truncated headers -----------------------------------------------------------------------

SAMPLES = {
    "png": _encode((31, 7), "PNG"),
    "jpeg": _encode((31, 7), "JPEG"),
    "jpeg-progressive": _encode((31, 7), "JPEG", progressive=True),
    "jpeg-exif": _encode((31, 7), "JPEG", exif=b"Exif\x00\x00" + bytes(300)),
    "webp-vp8": _encode((31, 7), "WEBP"),
    "webp-vp8l": _encode((31, 7), "WEBP", lossless=True),
    "webp-vp8x": _encode((31, 7), "WEBP", "RGBA"),
    "gif": _encode((31, 7), "GIF", "P"),
    "bmp": _encode((31, 7), "BMP"),
    "tiff-le": _encode((31, 7), "TIFF"),
    "tiff-be": _encode((31, 7), "TIFF", "I;16B"),
}


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_inspect_image_survives_every_truncation_of_the_header(name):
    data = SAMPLES[name]
    fmt = name.split("-")[0]

    for cut in range(1, min(len(data), 700)):
        # when: only the first ``cut`` bytes are known (the file may be longer)
        try:
            info = inspect_image(data[:cut], total_size=len(data))
        except InvalidImage:
            continue
        # then: the format is right and the dimensions are either unknown or right
        assert info.format == fmt, cut
        assert (info.width, info.height) in ((None, None), (31, 7)), cut


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_inspect_image_survives_corrupted_header_bytes(name):
    data = SAMPLES[name]
    rng = random.Random(name)  # noqa: S311 (reproducible test data)

    for _ in range(300):
        corrupted = bytearray(data[:600])
        for _ in range(3):
            corrupted[rng.randrange(4, len(corrupted))] = rng.randrange(256)
        try:
            info = inspect_image(bytes(corrupted))
        except InvalidImage:
            continue
        assert info.width is None or info.width > 0
        assert info.height is None or info.height > 0

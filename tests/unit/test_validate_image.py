"""maskgate.images.validate_image: complete files of every format made by Pillow are accepted with
their dimensions; broken structure, trailing data and dimensions outside the limits are refused."""

from __future__ import annotations

import io
import random
import struct
import zlib

import pytest
from PIL import Image

from maskgate.errors import ImageTooLarge, InvalidImage
from maskgate.images import MAX_PIXELS, MAX_SIDE, MIN_SIDE, check_dimensions, validate_image
from tests.support.images import PNG_SIGNATURE, png_chunk

SIZES = [(8, 8), (37, 23), (640, 480), (MAX_SIDE, 8)]


def encode(size: tuple[int, int], fmt: str, mode: str = "RGB", **params: object) -> bytes:
    """A small textured image: random pixels so encoders write real entropy-coded data."""
    rng = random.Random(f"{size}{fmt}{mode}")  # noqa: S311 (reproducible test data)
    source = "RGBA" if mode == "RGBA" else "RGB"  # real alpha, so WEBP writes it (VP8X + ALPH)
    image = Image.frombytes(source, size, rng.randbytes(size[0] * size[1] * len(source))).convert(mode)
    buffer = io.BytesIO()
    image.save(buffer, fmt, **params)
    return buffer.getvalue()


def _assert_valid(data: bytes, fmt: str, size: tuple[int, int]) -> None:
    info = validate_image(data)
    assert (info.format, info.width, info.height) == (fmt, *size)


# --- every format Pillow writes is accepted ---------------------------------------------------


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("mode", ["RGB", "RGBA", "L", "P", "1", "I;16"])
def test_validate_accepts_png(size, mode):
    _assert_valid(encode(size, "PNG", mode), "png", size)


def test_validate_accepts_interlaced_and_animated_png():
    _assert_valid(encode((40, 30), "PNG", interlace=1), "png", (40, 30))
    frames = [Image.new("RGB", (40, 30), (i * 60, 0, 0)) for i in range(3)]
    buffer = io.BytesIO()
    frames[0].save(buffer, "PNG", save_all=True, append_images=frames[1:])
    _assert_valid(buffer.getvalue(), "png", (40, 30))


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize(
    ("mode", "params"),
    [("RGB", {}), ("L", {}), ("CMYK", {}), ("RGB", {"progressive": True}), ("RGB", {"subsampling": 0})],
)
def test_validate_accepts_jpeg(size, mode, params):
    _assert_valid(encode(size, "JPEG", mode, **params), "jpeg", size)


def test_validate_accepts_jpeg_with_restart_markers_exif_and_icc_profile():
    data = encode((99, 41), "JPEG", exif=b"Exif\x00\x00" + bytes(60_000), icc_profile=bytes(200_000))
    _assert_valid(data, "jpeg", (99, 41))
    restarts = encode((99, 41), "JPEG", restart_marker_blocks=1)
    assert b"\xff\xd0" in restarts  # precondition: restart markers inside the scan

    _assert_valid(restarts, "jpeg", (99, 41))


def test_validate_accepts_a_multi_picture_jpeg_and_trailing_zero_padding():
    frames = [Image.new("RGB", (40, 30), (i * 60, 0, 0)) for i in range(3)]
    buffer = io.BytesIO()
    frames[0].save(buffer, "MPO", save_all=True, append_images=frames[1:])
    assert buffer.getvalue().count(b"\xff\xd8\xff") >= 3  # precondition: pictures after the first EOI

    _assert_valid(buffer.getvalue(), "jpeg", (40, 30))
    _assert_valid(encode((40, 30), "JPEG") + bytes(4096), "jpeg", (40, 30))


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize(
    ("mode", "params", "chunk"),
    [("RGB", {}, b"VP8 "), ("RGB", {"lossless": True}, b"VP8L"), ("RGBA", {}, b"VP8X")],
)
def test_validate_accepts_webp(size, mode, params, chunk):
    data = encode(size, "WEBP", mode, **params)
    assert data[12:16] == chunk

    _assert_valid(data, "webp", size)


def test_validate_accepts_animated_webp_and_gif():
    frames = [Image.new("RGB", (40, 30), (i * 60, 0, 0)) for i in range(3)]
    for fmt in ("WEBP", "GIF"):
        buffer = io.BytesIO()
        frames[0].save(buffer, fmt, save_all=True, append_images=frames[1:], duration=100)
        _assert_valid(buffer.getvalue(), fmt.lower(), (40, 30))


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("mode", ["P", "L", "RGB"])
def test_validate_accepts_gif(size, mode):
    _assert_valid(encode(size, "GIF", mode), "gif", size)


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("mode", ["RGB", "RGBA", "L", "P", "1"])
def test_validate_accepts_bmp(size, mode):
    _assert_valid(encode(size, "BMP", mode), "bmp", size)


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize(
    ("mode", "params"),
    [
        ("RGB", {}),
        ("I;16B", {}),
        ("RGB", {"compression": "tiff_lzw"}),
        ("RGB", {"compression": "tiff_deflate"}),
        ("L", {"compression": "packbits"}),
        ("RGB", {"compression": "jpeg"}),
    ],
)
def test_validate_accepts_tiff(size, mode, params):
    _assert_valid(encode(size, "TIFF", mode, **params), "tiff", size)


def tiled_tiff(width: int, height: int, tile: int = 16) -> bytes:
    """A little-endian, uncompressed grey TIFF stored in tiles (Pillow writes strips only)."""
    across, down = -(-width // tile), -(-height // tile)
    tiles = across * down
    entries = [
        (256, 4, 1, width),
        (257, 4, 1, height),
        (258, 3, 1, 8),
        (259, 3, 1, 1),
        (262, 3, 1, 1),
        (322, 3, 1, tile),
        (323, 3, 1, tile),
    ]
    ifd_size = 2 + 12 * (len(entries) + 2) + 4
    arrays = 8 + ifd_size
    data_at = arrays + 8 * tiles
    entries += [(324, 4, tiles, arrays), (325, 4, tiles, arrays + 4 * tiles)]
    ifd = struct.pack("<H", len(entries)) + b"".join(
        struct.pack("<HHII", tag, kind, count, value) for tag, kind, count, value in sorted(entries)
    )
    offsets = struct.pack(f"<{tiles}I", *(data_at + i * tile * tile for i in range(tiles)))
    counts = struct.pack(f"<{tiles}I", *([tile * tile] * tiles))
    return (
        b"II*\x00" + struct.pack("<I", 8) + ifd + b"\x00" * 4 + offsets + counts + bytes(tiles * tile * tile)
    )


def test_validate_accepts_a_tiled_tiff():
    data = tiled_tiff(40, 20)
    assert Image.open(io.BytesIO(data)).size == (40, 20)  # precondition: Pillow reads it

    _assert_valid(data, "tiff", (40, 20))


def test_validate_refuses_a_tiled_tiff_whose_tiles_lie_outside_the_file():
    with pytest.raises(InvalidImage, match="strips or tiles"):
        validate_image(tiled_tiff(40, 20)[:-1])


# --- dimension limits ------------------------------------------------------------------------


def test_limits_keep_the_fixture_and_demo_images_valid():
    for width, height in [(64, 48), (320, 240), (160, 120)]:
        check_dimensions(width, height)


@pytest.mark.parametrize(("width", "height"), [(MIN_SIDE - 1, 100), (100, MIN_SIDE - 1), (1, 1)])
def test_validate_refuses_images_below_the_smallest_side(width, height):
    with pytest.raises(InvalidImage, match=f"at least {MIN_SIDE}"):
        validate_image(encode((width, height), "PNG"))


@pytest.mark.parametrize(("width", "height"), [(MAX_SIDE + 1, 8), (8, MAX_SIDE + 1)])
def test_validate_refuses_a_side_over_the_limit(width, height):
    with pytest.raises(ImageTooLarge, match="8192 pixels a side"):
        validate_image(encode((width, height), "PNG", "1"))


def test_validate_refuses_more_pixels_than_the_limit_even_with_sides_inside_it():
    side = int(MAX_PIXELS**0.5) + 1
    assert side <= MAX_SIDE  # precondition: only the pixel count is over

    with pytest.raises(ImageTooLarge, match="40 megapixels"):
        validate_image(encode((side, side), "PNG", "1"))


def test_validate_accepts_the_largest_allowed_image():
    side = int(MAX_PIXELS**0.5)
    _assert_valid(encode((side, side), "PNG", "1"), "png", (side, side))


# --- structure -------------------------------------------------------------------------------


def png_of(*chunks: bytes) -> bytes:
    return PNG_SIGNATURE + b"".join(chunks)


IHDR = png_chunk(b"IHDR", struct.pack(">IIBBBBB", 16, 16, 8, 0, 0, 0, 0))
IDAT = png_chunk(b"IDAT", zlib.compress(bytes(17 * 16)))
IEND = png_chunk(b"IEND", b"")
TEXT = png_chunk(b"tEXt", b"a\x00b")


def test_a_hand_made_png_is_valid():
    _assert_valid(png_of(IHDR, IDAT, IEND), "png", (16, 16))


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        pytest.param(png_of(IHDR, IEND), "no IDAT", id="no-idat"),
        pytest.param(png_of(IDAT, IHDR, IEND), "first chunk is not", id="ihdr-not-first"),
        pytest.param(png_of(IHDR, IDAT), "before its IEND", id="no-iend"),
        pytest.param(png_of(IHDR, IDAT, IEND, IEND), "follow the IEND", id="after-iend"),
        pytest.param(
            png_of(IHDR, IDAT, png_chunk(b"tEXt", b"a\x00b"), IDAT, IEND), "consecutive", id="split-idat"
        ),
        pytest.param(png_of(IHDR, IDAT, IEND)[:-1] + b"\x00", "CRC", id="bad-crc"),
        pytest.param(
            png_of(png_chunk(b"IHDR", struct.pack(">IIBBBBB", 16, 16, 8, 3, 0, 0, 0)), IDAT, IEND),
            "PLTE",
            id="palette-without-plte",
        ),
        pytest.param(
            png_of(png_chunk(b"IHDR", struct.pack(">IIBBBBB", 16, 16, 7, 2, 0, 0, 0)), IDAT, IEND),
            "impossible combination",
            id="bad-depth",
        ),
        pytest.param(png_of(IHDR, png_chunk(b"IDAT", b"\xff\xff\xff"), IEND), "zlib", id="not-zlib"),
    ],
)
def test_validate_refuses_broken_png_structure(data, reason):
    with pytest.raises(InvalidImage, match=reason):
        validate_image(data)


def test_validate_refuses_an_8_byte_png_signature_and_a_bare_header():
    # the two inputs that header-only checks accepted (and paid for)
    bomb_header = png_of(png_chunk(b"IHDR", struct.pack(">IIBBBBB", 60_000, 60_000, 8, 2, 0, 0, 0)))
    for data in (b"\x89PNG\r\n\x1a\n", bomb_header):
        with pytest.raises(InvalidImage):
            validate_image(data)


def test_validate_refuses_a_decompression_bomb_with_valid_structure():
    huge = png_chunk(b"IHDR", struct.pack(">IIBBBBB", 60_000, 60_000, 1, 0, 0, 0, 0))
    with pytest.raises(ImageTooLarge, match="60000x60000"):
        validate_image(png_of(huge, IDAT, IEND))


def test_validate_refuses_jpeg_without_eoi_sos_or_with_junk_after_eoi():
    data = encode((40, 30), "JPEG")
    sos = data.index(b"\xff\xda")
    with pytest.raises(InvalidImage, match="EOI"):
        validate_image(data[:-2])
    with pytest.raises(InvalidImage, match=r"no frame header|no scan"):
        validate_image(data[:sos] + b"\xff\xd9")
    with pytest.raises(InvalidImage, match="follow the end-of-image"):
        validate_image(data + b"PK\x03\x04 a zip")


def test_validate_refuses_a_jpeg_whose_frame_gives_no_height():
    data = bytearray(encode((40, 30), "JPEG"))
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 7] = b"\x00\x00"
    with pytest.raises(InvalidImage, match="40x0"):
        validate_image(bytes(data))


def test_validate_refuses_webp_with_a_wrong_riff_size():
    data = encode((40, 30), "WEBP")
    with pytest.raises(InvalidImage, match="RIFF size"):
        validate_image(data + b"\x00\x00")
    with pytest.raises(InvalidImage, match="RIFF size"):
        validate_image(data[:-2])


def test_validate_refuses_vp8x_without_image_data():
    vp8x = (
        b"VP8X" + struct.pack("<I", 10) + bytes(4) + (39).to_bytes(3, "little") + (29).to_bytes(3, "little")
    )
    data = b"RIFF" + struct.pack("<I", 4 + len(vp8x)) + b"WEBP" + vp8x
    with pytest.raises(InvalidImage, match="not followed by image data"):
        validate_image(data)


def test_validate_refuses_gif_without_trailer_image_or_with_data_after_it():
    data = encode((40, 30), "GIF", "P")
    with pytest.raises(InvalidImage, match="trailer"):
        validate_image(data[:-1])
    with pytest.raises(InvalidImage, match="follow its trailer"):
        validate_image(data + b"junk")
    screen_only = b"GIF89a" + struct.pack("<HHBBB", 40, 30, 0, 0, 0) + b"\x3b"
    with pytest.raises(InvalidImage, match="no image"):
        validate_image(screen_only)


def test_validate_refuses_a_gif_frame_outside_its_logical_screen():
    data = bytearray(encode((40, 30), "GIF", "P"))
    data[6:10] = struct.pack("<HH", 20, 30)  # the screen shrinks under the 40 px wide frame
    with pytest.raises(InvalidImage, match="outside the logical screen"):
        validate_image(bytes(data))


def test_validate_refuses_bmp_with_inconsistent_sizes():
    data = encode((40, 30), "BMP")
    with pytest.raises(InvalidImage, match="header gives"):
        validate_image(data + b"\x00")
    lying = bytearray(data)
    lying[22:26] = struct.pack("<i", 3000)  # taller than the pixel data it carries
    with pytest.raises(InvalidImage, match="pixel data needs"):
        validate_image(bytes(lying))


def test_validate_refuses_tiff_whose_ifd_or_strips_lie_outside_the_file():
    data = encode((40, 30), "TIFF")
    moved = bytearray(data)
    moved[4:8] = struct.pack("<I", len(data) + 10)
    with pytest.raises(InvalidImage, match="IFD"):
        validate_image(bytes(moved))
    with pytest.raises(InvalidImage):
        validate_image(data[: len(data) // 2])

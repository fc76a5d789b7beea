"""Hostile images, as properties: whatever the bytes, validate_image answers with an ImageInfo whose
dimensions are inside the limits, or with InvalidImage / ImageTooLarge, and nothing else."""

from __future__ import annotations

import io
import struct
import zipfile
import zlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from maskgate.errors import ImageTooLarge, InvalidImage
from maskgate.images import MAX_PIXELS, MAX_SIDE, MIN_SIDE, ImageInfo, validate_image
from tests.support.images import PNG_SIGNATURE, png_chunk

FAST = settings(max_examples=60, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
# (Pillow format, mode, save options, our format name)
KINDS = [
    ("PNG", "RGB", {}, "png"),
    ("PNG", "P", {}, "png"),
    ("JPEG", "RGB", {}, "jpeg"),
    ("JPEG", "L", {"progressive": True}, "jpeg"),
    ("WEBP", "RGB", {}, "webp"),
    ("WEBP", "RGB", {"lossless": True}, "webp"),
    ("WEBP", "RGBA", {}, "webp"),
    ("GIF", "P", {}, "gif"),
    ("BMP", "RGB", {}, "bmp"),
    ("BMP", "1", {}, "bmp"),
    ("TIFF", "RGB", {}, "tiff"),
    ("TIFF", "L", {"compression": "tiff_lzw"}, "tiff"),
]
MAGIC = [
    b"\x89PNG\r\n\x1a\n",
    b"\xff\xd8\xff",
    b"RIFF\x00\x00\x00\x00WEBP",
    b"GIF89a",
    b"BM",
    b"II*\x00",
    b"MM\x00*",
]


def encode(kind: tuple[str, str, dict[str, object], str], size: tuple[int, int], seed: int = 0) -> bytes:
    fmt, mode, params, _ = kind
    pixels = bytes((seed + i * 37) % 256 for i in range(size[0] * size[1] * 4))
    image = Image.frombytes("RGBA", size, pixels).convert(mode)
    buffer = io.BytesIO()
    image.save(buffer, fmt, **params)
    return buffer.getvalue()


SAMPLES = {f"{k[0]}-{k[1]}-{sorted(k[2])}": encode(k, (37, 23)) for k in KINDS}


def outcome(data: bytes) -> ImageInfo | None:
    """validate_image's answer, None for a refusal; any other exception fails the property."""
    try:
        info = validate_image(data)
    except (InvalidImage, ImageTooLarge):
        return None
    assert info.width is not None and info.height is not None
    assert MIN_SIDE <= info.width <= MAX_SIDE and MIN_SIDE <= info.height <= MAX_SIDE
    assert info.width * info.height <= MAX_PIXELS
    return info


@FAST
@given(kind=st.sampled_from(KINDS), width=st.integers(MIN_SIDE, 300), height=st.integers(MIN_SIDE, 300))
def test_valid_images_of_every_format_are_accepted_with_their_dimensions(kind, width, height):
    info = outcome(encode(kind, (width, height), seed=width * height))
    assert info is not None and (info.format, info.width, info.height) == (kind[3], width, height)


@settings(max_examples=150, deadline=None, database=None)
@given(name=st.sampled_from(sorted(SAMPLES)), data=st.data())
def test_every_truncation_of_every_format_is_refused(name, data):
    whole = SAMPLES[name]
    cut = data.draw(st.integers(0, len(whole) - 1))
    with pytest.raises((InvalidImage, ImageTooLarge)):
        validate_image(whole[:cut])


@settings(max_examples=200, deadline=None, database=None)
@given(
    name=st.sampled_from(sorted(SAMPLES)),
    flips=st.lists(st.tuples(st.integers(0), st.integers(0, 255)), max_size=4),
)
def test_corrupted_files_are_refused_or_valid_inside_the_limits(name, flips):
    corrupted = bytearray(SAMPLES[name])
    for where, value in flips:
        corrupted[where % len(corrupted)] = value
    outcome(bytes(corrupted))


@settings(max_examples=200, deadline=None, database=None)
@given(data=st.binary(max_size=2048))
def test_random_bytes_are_refused(data):
    assert outcome(data) is None


@settings(max_examples=200, deadline=None, database=None)
@given(magic=st.sampled_from(MAGIC), rest=st.binary(max_size=2048))
def test_random_bytes_behind_a_format_signature_are_refused_or_valid(magic, rest):
    outcome(magic + rest)


def _zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("payload.txt", "not an image")
    return buffer.getvalue()


# TIFF has no end marker: bytes after its data are unreachable by any reader, so no polyglot case
POLYGLOT_BASES = sorted(name for name in SAMPLES if not name.startswith("TIFF"))


@FAST
@given(
    name=st.sampled_from(POLYGLOT_BASES), tail=st.one_of(st.just(_zip()), st.binary(min_size=1, max_size=512))
)
def test_a_valid_image_followed_by_other_data_is_refused(name, tail):
    if name.startswith("JPEG"):
        tail = b"\x01" + tail  # JPEG may end in zero padding: make the tail never only that
    with pytest.raises(InvalidImage):
        validate_image(SAMPLES[name] + tail)


def bomb(fmt: str, width: int, height: int) -> bytes:
    """A tiny, otherwise well-formed file whose header claims ``width`` x ``height``."""
    if fmt == "png":
        ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
        idat = zlib.compress(bytes(64))
        return PNG_SIGNATURE + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", idat) + png_chunk(b"IEND", b"")
    if fmt == "gif":
        screen = struct.pack("<HHBBB", width & 0xFFFF, height & 0xFFFF, 0, 0, 0)
        frame = (
            b"\x2c"
            + struct.pack("<HHHHB", 0, 0, width & 0xFFFF, height & 0xFFFF, 0)
            + b"\x02\x02\x4c\x01\x00"
        )
        return b"GIF89a" + screen + frame + b"\x3b"
    if fmt == "bmp":
        dib = struct.pack("<IiiHHIIiiII", 40, width, height, 1, 1, 0, 0, 2835, 2835, 0, 0)
        body = b"BM" + struct.pack("<IHHI", 14 + len(dib) + 8 + 16, 0, 0, 14 + len(dib) + 8) + dib
        return body + bytes(8 + 16)
    sof = b"\xff\xc0" + struct.pack(">HBHHB", 11, 8, height & 0xFFFF, width & 0xFFFF, 1) + b"\x01\x11\x00"
    sos = b"\xff\xda" + struct.pack(">HB", 8, 1) + b"\x01\x00\x00\x3f\x00"
    return b"\xff\xd8" + sof + sos + bytes(16) + b"\xff\xd9"


@FAST
@given(
    fmt=st.sampled_from(["png", "gif", "bmp", "jpeg"]),
    width=st.integers(MIN_SIDE, 0xFFFF),
    height=st.integers(MIN_SIDE, 0xFFFF),
)
def test_decompression_bomb_headers_are_refused(fmt, width, height):
    info = outcome(bomb(fmt, width, height))
    if info is not None:  # only a claim small enough to be honest, and then it is believed exactly
        assert (info.width, info.height) == (width, height)
    if width > MAX_SIDE or height > MAX_SIDE or width * height > MAX_PIXELS:
        assert info is None


def test_bomb_headers_of_60000_pixels_a_side_are_image_too_large_not_paid_for():
    for fmt in ("png", "gif", "jpeg"):
        with pytest.raises(ImageTooLarge):
            validate_image(bomb(fmt, 60_000, 60_000))

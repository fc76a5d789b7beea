"""Image sniffing by magic bytes (never by name or Content-Type), with dimensions where the header
gives them. Pure Python so the Lambda layer carries no imaging library.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Literal

from maskgate.errors import ImageTooLarge, InvalidImage

ImageFormat = Literal["png", "jpeg", "webp", "gif", "bmp", "tiff"]
MAX_IMAGE_BYTES = 20 * 1024 * 1024
# Enough of the file to find the dimensions of all but pathological JPEGs (huge EXIF before SOF).
SNIFF_BYTES = 256 * 1024

MIME: dict[str, str] = {
    "png": "image/png",
    "jpeg": "image/jpeg",
    "webp": "image/webp",
    "gif": "image/gif",
    "bmp": "image/bmp",
    "tiff": "image/tiff",
}


@dataclass(frozen=True)
class ImageInfo:
    format: ImageFormat
    width: int | None
    height: int | None

    @property
    def mime(self) -> str:
        return MIME[self.format]

    @property
    def extension(self) -> str:
        return "jpg" if self.format == "jpeg" else self.format


def sniff_format(head: bytes) -> ImageFormat | None:
    """The image format the leading bytes announce, or None."""
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    if head[:2] == b"BM" and len(head) >= 26:
        return "bmp"
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return "tiff"
    return None


def _png_size(head: bytes) -> tuple[int, int] | None:
    if head[12:16] != b"IHDR" or len(head) < 24:
        return None
    width, height = struct.unpack(">II", head[16:24])
    return int(width), int(height)


def _gif_size(head: bytes) -> tuple[int, int] | None:
    return struct.unpack("<HH", head[6:10]) if len(head) >= 10 else None


def _bmp_size(head: bytes) -> tuple[int, int] | None:
    width, height = struct.unpack("<ii", head[18:26])
    return abs(int(width)), abs(int(height))


def _webp_size(head: bytes) -> tuple[int, int] | None:
    chunk = head[12:16]
    if chunk == b"VP8 " and len(head) >= 30 and head[23:26] == b"\x9d\x01\x2a":
        width, height = struct.unpack("<HH", head[26:30])
        return width & 0x3FFF, height & 0x3FFF
    if chunk == b"VP8L" and len(head) >= 25 and head[20] == 0x2F:
        bits = int.from_bytes(head[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8X" and len(head) >= 30:
        return int.from_bytes(head[24:27], "little") + 1, int.from_bytes(head[27:30], "little") + 1
    return None


_JPEG_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def _jpeg_size(head: bytes) -> tuple[int, int] | None:
    pos = 2
    while pos + 4 <= len(head):
        if head[pos] != 0xFF:
            return None
        marker = head[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            pos += 2
            continue
        (length,) = struct.unpack(">H", head[pos + 2 : pos + 4])
        if marker in _JPEG_SOF and pos + 9 <= len(head):
            height, width = struct.unpack(">HH", head[pos + 5 : pos + 9])
            return int(width), int(height)
        pos += 2 + length
    return None


def _tiff_size(head: bytes) -> tuple[int, int] | None:
    endian = "<" if head[:2] == b"II" else ">"
    (ifd,) = struct.unpack(endian + "I", head[4:8])
    if ifd + 2 > len(head):
        return None
    (count,) = struct.unpack(endian + "H", head[ifd : ifd + 2])
    found: dict[int, int] = {}
    for i in range(count):
        entry = head[ifd + 2 + 12 * i : ifd + 14 + 12 * i]
        if len(entry) < 12:
            break
        tag, kind = struct.unpack(endian + "HH", entry[:4])
        if tag in (256, 257):
            fmt = "H" if kind == 3 else "I"
            found[tag] = struct.unpack(endian + fmt, entry[8 : 8 + struct.calcsize(fmt)])[0]
    if 256 in found and 257 in found:
        return found[256], found[257]
    return None


_SIZERS = {
    "png": _png_size,
    "gif": _gif_size,
    "bmp": _bmp_size,
    "webp": _webp_size,
    "jpeg": _jpeg_size,
    "tiff": _tiff_size,
}


def inspect_image(head: bytes, *, total_size: int | None = None) -> ImageInfo:
    """Identify an image from its leading bytes; raise InvalidImage / ImageTooLarge."""
    size = len(head) if total_size is None else total_size
    if size > MAX_IMAGE_BYTES:
        raise ImageTooLarge(f"image is {size} bytes; the limit is {MAX_IMAGE_BYTES} bytes (20 MB)")
    if size == 0:
        raise InvalidImage("the image is empty")
    fmt = sniff_format(head)
    if fmt is None:
        raise InvalidImage("not a PNG, JPEG, WEBP, GIF, BMP or TIFF image (checked by its leading bytes)")
    try:
        dims = _SIZERS[fmt](head)
    except (struct.error, IndexError):
        dims = None
    if dims is not None and (dims[0] <= 0 or dims[1] <= 0):
        raise InvalidImage(f"the {fmt} header gives an empty image ({dims[0]}x{dims[1]})")
    return ImageInfo(format=fmt, width=dims[0] if dims else None, height=dims[1] if dims else None)

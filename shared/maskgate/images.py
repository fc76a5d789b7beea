"""Images by their bytes (never by name or Content-Type), in two depths.

``inspect_image`` sniffs the leading bytes: the format, and the dimensions where the header gives
them. ``validate_image`` checks a complete file before anyone pays for it: a minimally complete
structure for its format (not a decode), no data after the format's end marker, and dimensions
inside the limits below. Pure Python so the Lambda layer carries no imaging library.
"""

from __future__ import annotations

import hashlib
import re
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, NoReturn

from maskgate.errors import ImageTooLarge, InvalidImage

ImageFormat = Literal["png", "jpeg", "webp", "gif", "bmp", "tiff"]
MAX_IMAGE_BYTES = 20 * 1024 * 1024
# SAM3 resizes every input to about 1008 px on its long side: more pixels only cost transfer and
# decode memory, so the limits stop decompression bombs well before they stop real photos.
MIN_SIDE = 8  # below this there is nothing to segment (and a 1 px "image" is a probe, not a photo)
MAX_SIDE = 8192  # 8K: larger photos gain nothing after SAM3's resize
MAX_PIXELS = 40_000_000  # 40 MP: a 7,300 x 5,480 photo; 160 MB decoded as RGBA
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
    sha256: str | None = None  # hex digest of the whole file: set by validate_image, which has it all

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


# --- complete files -------------------------------------------------------------------------

NAMES: dict[str, str] = {
    "png": "PNG",
    "jpeg": "JPEG",
    "webp": "WEBP",
    "gif": "GIF",
    "bmp": "BMP",
    "tiff": "TIFF",
}


class _Malformed(ValueError):
    """A structural fault found while walking a file; ``validate_image`` names the format."""


def _bad(why: str) -> NoReturn:
    raise _Malformed(why)


def _u16(data: bytes, pos: int, endian: str = ">") -> int:
    return int(struct.unpack_from(endian + "H", data, pos)[0])


def _u32(data: bytes, pos: int, endian: str = ">") -> int:
    return int(struct.unpack_from(endian + "I", data, pos)[0])


# PNG: signature, IHDR first, consecutive IDATs, IEND last; every chunk's length and CRC checked.
_PNG_DEPTHS = {0: {1, 2, 4, 8, 16}, 2: {8, 16}, 3: {1, 2, 4, 8}, 4: {8, 16}, 6: {8, 16}}
Chunk = tuple[bytes, int, int]  # type, offset of its data, length


def _png_chunks(data: bytes) -> list[Chunk]:
    """Every chunk up to and including IEND, each inside the file and matching its CRC."""
    view, pos = memoryview(data), 8
    chunks: list[Chunk] = []
    while not chunks or chunks[-1][0] != b"IEND":
        if pos + 12 > len(data):
            _bad("it ends before its IEND chunk")
        length, kind = struct.unpack_from(">I4s", data, pos)
        end = pos + 8 + length
        if not kind.isalpha() or length > 0x7FFFFFFF or end + 4 > len(data):
            _bad(f"the chunk at byte {pos} is damaged or runs past the end of the file")
        if zlib.crc32(view[pos + 4 : end]) != _u32(data, end):
            _bad(f"the {kind.decode()} chunk at byte {pos} fails its CRC check")
        chunks.append((bytes(kind), pos + 8, length))
        pos = end + 4
    if pos != len(data):
        _bad(f"{len(data) - pos} bytes follow the IEND chunk")
    return chunks


def _png_ihdr(data: bytes, chunk: Chunk) -> tuple[int, int, int]:
    kind, at, length = chunk
    if kind != b"IHDR" or length != 13:
        _bad("the first chunk is not a 13-byte IHDR")
    width, height, depth, color, compression, filtering, interlace = struct.unpack_from(">IIBBBBB", data, at)
    if depth not in _PNG_DEPTHS.get(color, set()) or compression or filtering or interlace > 1:
        _bad(f"IHDR holds an impossible combination (bit depth {depth}, color type {color})")
    return int(width), int(height), int(color)


def _png_dimensions(data: bytes) -> tuple[int, int]:
    chunks = _png_chunks(data)
    width, height, color = _png_ihdr(data, chunks[0])
    kinds = [kind for kind, _, _ in chunks]
    idat = [i for i, kind in enumerate(kinds) if kind == b"IDAT"]
    if not idat:
        _bad("it has no IDAT (image data) chunk")
    if idat[-1] - idat[0] + 1 != len(idat) or kinds.count(b"IHDR") != 1:
        _bad("its IDAT chunks are not consecutive, or IHDR repeats")
    if color == 3 and b"PLTE" not in kinds[: idat[0]]:
        _bad("a palette image has no PLTE chunk before its data")
    _, at, length = chunks[idat[0]]
    if length >= 2 and (data[at] & 0x0F != 8 or _u16(data, at) % 31):
        _bad("its image data is not a zlib stream")
    return width, height


# JPEG: SOI, segments whose lengths fit, a frame header (SOF) before the first scan (SOS), the
# entropy-coded data ended by a marker, and EOI. After EOI only zero padding or further complete
# JPEGs may follow: multi-picture files (MPF: a camera's second picture, an HDR gain map) append
# them there.
_JPEG_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
_JPEG_STANDALONE = {0x01, *range(0xD0, 0xD8)}
_JPEG_NEXT_MARKER = re.compile(rb"\xff+[^\x00\xd0-\xd7\xff]")  # FF00 is stuffing, FFD0-D7 restarts
_NOT_ZERO = re.compile(rb"[^\x00]")
MAX_APPENDED_JPEGS = 8


def _jpeg_marker(data: bytes, pos: int) -> tuple[int, int]:
    """The marker at ``pos`` (after any fill bytes) and the offset just past it."""
    if pos + 2 > len(data):
        _bad("it ends before its end-of-image marker (EOI)")
    if data[pos] != 0xFF:
        _bad(f"there is no marker where one must be (byte {pos})")
    while data[pos + 1] == 0xFF:
        pos += 1
        if pos + 2 > len(data):
            _bad("it ends before its end-of-image marker (EOI)")
    marker = data[pos + 1]
    if marker == 0xD8 or 0x02 <= marker < 0xC0 or marker == 0x00:
        _bad(f"byte {pos} holds marker 0x{marker:02x}, which cannot appear there")
    return marker, pos + 2


def _jpeg_frame(data: bytes, pos: int, length: int) -> tuple[int, int]:
    """Width and height from a frame header (SOF) segment starting at ``pos``."""
    if length < 8 or length != 8 + 3 * data[pos + 7] or not 1 <= data[pos + 7] <= 4:
        _bad("its frame header (SOF) has the wrong length or number of components")
    height, width = _u16(data, pos + 3), _u16(data, pos + 5)
    if not (width and height):
        _bad("its frame header gives no width or height (files that set the height later are refused)")
    return width, height


def _jpeg_image(data: bytes, start: int) -> tuple[int, int, int]:
    """Walk one JPEG from its SOI at ``start``: width, height and the offset just past its EOI."""
    pos, size, scans = start + 2, None, 0
    while True:
        marker, pos = _jpeg_marker(data, pos)
        if marker == 0xD9:
            break
        if marker in _JPEG_STANDALONE:
            continue
        length = _u16(data, pos)
        if length < 2 or pos + length > len(data):
            _bad(f"the segment at byte {pos - 2} runs past the end of the file")
        if marker in _JPEG_SOF and size is None:
            size = _jpeg_frame(data, pos, length)
        pos += length
        if marker == 0xDA:
            if size is None:
                _bad("a scan (SOS) comes before the frame header (SOF)")
            scans += 1
            found = _JPEG_NEXT_MARKER.search(data, pos)
            pos = found.start() if found else len(data)
    if size is None or not scans:
        _bad("it has no frame header (SOF) or no scan (SOS)")
    return size[0], size[1], pos


def _jpeg_dimensions(data: bytes) -> tuple[int, int]:
    width, height, pos = _jpeg_image(data, 0)
    for _ in range(MAX_APPENDED_JPEGS):
        found = _NOT_ZERO.search(data, pos)
        if found is None:
            return width, height
        pos = found.start()
        if data[pos : pos + 3] != b"\xff\xd8\xff":
            _bad(f"{len(data) - pos} bytes that are not a JPEG follow the end-of-image marker")
        pos = _jpeg_image(data, pos)[2]
    if _NOT_ZERO.search(data, pos):
        _bad(f"more than {MAX_APPENDED_JPEGS} pictures are appended")
    return width, height


# WEBP: the RIFF size is the file's, chunks fit and are padded to even; the first chunk is VP8,
# VP8L or VP8X, and an extended file (VP8X) carries image data (VP8/VP8L, or ANMF frames).
def _webp_chunks(data: bytes) -> list[Chunk]:
    if _u32(data, 4, "<") + 8 != len(data):
        _bad(f"its RIFF size ({_u32(data, 4, '<') + 8} bytes) is not the file's ({len(data)} bytes)")
    pos = 12
    chunks: list[Chunk] = []
    while pos < len(data):
        if pos + 8 > len(data):
            _bad(f"the chunk at byte {pos} is cut short")
        kind, length = struct.unpack_from("<4sI", data, pos)
        if pos + 8 + length + (length & 1) > len(data):
            _bad(f"the chunk at byte {pos} runs past the end of the file")
        chunks.append((bytes(kind), pos + 8, length))
        pos += 8 + length + (length & 1)
    if not chunks:
        _bad("it holds no chunks")
    return chunks


def _vp8_size(data: bytes, chunk: Chunk) -> tuple[int, int]:
    kind, at, length = chunk
    if kind == b"VP8 ":
        if length < 10 or data[at] & 1 or data[at + 3 : at + 6] != b"\x9d\x01\x2a":
            _bad("its VP8 chunk is not a key frame")
        return _u16(data, at + 6, "<") & 0x3FFF, _u16(data, at + 8, "<") & 0x3FFF
    if length < 5 or data[at] != 0x2F or data[at + 4] >> 5:
        _bad("its VP8L chunk has a wrong signature or version")
    bits = _u32(data, at + 1, "<")
    return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1


def _webp_dimensions(data: bytes) -> tuple[int, int]:
    chunks = _webp_chunks(data)
    first = chunks[0]
    if first[0] in (b"VP8 ", b"VP8L"):
        return _vp8_size(data, first)
    if first[0] != b"VP8X" or first[2] < 10:
        _bad("its first chunk is not VP8, VP8L or VP8X")
    frames = [c for c in chunks[1:] if c[0] in (b"VP8 ", b"VP8L", b"ANMF")]
    if not frames:
        _bad("its extended header (VP8X) is not followed by image data")
    if frames[0][0] != b"ANMF":
        _vp8_size(data, frames[0])
    canvas = data[first[1] + 4 : first[1] + 10]
    return int.from_bytes(canvas[:3], "little") + 1, int.from_bytes(canvas[3:], "little") + 1


# GIF: header, logical screen and its color table, then extensions and images (each with its
# color table, LZW code size and data sub-blocks) up to the trailer 0x3B, the file's last byte.
def _gif_sub_blocks(data: bytes, pos: int) -> int:
    """The offset past a chain of data sub-blocks (ended by a zero-length block)."""
    while True:
        if pos >= len(data):
            _bad("a data block runs past the end of the file")
        size = data[pos]
        pos += 1 + size
        if size == 0:
            return pos


def _gif_table(flags: int) -> int:
    return 3 << ((flags & 7) + 1) if flags & 0x80 else 0


def _gif_frame(data: bytes, pos: int, screen: tuple[int, int]) -> int:
    """Check one image descriptor at ``pos``; the offset past its data."""
    left, top, width, height, flags = struct.unpack_from("<HHHHB", data, pos + 1)
    if left + width > screen[0] or top + height > screen[1]:
        _bad(f"a {width}x{height} frame at ({left}, {top}) reaches outside the logical screen")
    pos += 10 + _gif_table(flags)
    if pos >= len(data) or not 1 <= data[pos] <= 11:
        _bad("an image has no valid LZW code size")
    return _gif_sub_blocks(data, pos + 1)


def _gif_dimensions(data: bytes) -> tuple[int, int]:
    width, height, flags = struct.unpack_from("<HHB", data, 6)
    pos, frames = 13 + _gif_table(flags), 0
    while True:
        if pos >= len(data):
            _bad("it ends before its trailer (0x3B)")
        block = data[pos]
        if block == 0x3B:
            break
        if block == 0x21:
            pos = _gif_sub_blocks(data, pos + 2)
        elif block == 0x2C:
            pos, frames = _gif_frame(data, pos, (width, height)), frames + 1
        else:
            _bad(f"byte {pos} starts an unknown block (0x{block:02x})")
    if not frames:
        _bad("it holds no image")
    if pos + 1 != len(data):
        _bad(f"{len(data) - pos - 1} bytes follow its trailer")
    return int(width), int(height)


# BMP: the file header's size is the file's, the pixel data starts after the DIB header, and
# uncompressed pixel rows (padded to 4 bytes) fit in the file.
_BMP_HEADERS = {12, 40, 52, 56, 64, 108, 124}
_BMP_DEPTHS = {1, 2, 4, 8, 16, 24, 32}


def _bmp_header(data: bytes, dib: int) -> tuple[int, int, int, int]:
    """Width, height (top-down files store it negative), bits per pixel and compression."""
    if dib == 12:
        width, height, planes, depth = struct.unpack_from("<HHHH", data, 18)
        return width, height, depth if planes == 1 else 0, 0
    width, height, planes, depth, compression = struct.unpack_from("<iiHHI", data, 18)
    return width, height, depth if planes == 1 else 0, compression


def _bmp_dimensions(data: bytes) -> tuple[int, int]:
    size, offset, dib = struct.unpack_from("<I4xII", data, 2)
    if size != len(data):
        _bad(f"its header gives {size} bytes; the file has {len(data)}")
    if dib not in _BMP_HEADERS or not 14 + dib <= offset < len(data):
        _bad("its DIB header size or pixel data offset is inconsistent")
    width, height, depth, compression = _bmp_header(data, dib)
    if width <= 0 or height == 0 or depth not in _BMP_DEPTHS or compression not in (0, 1, 2, 3, 6):
        _bad("its DIB header gives no valid width, height, bit depth or compression")
    rows = ((width * depth + 31) // 32) * 4 * abs(height)
    if compression in (0, 3, 6) and offset + rows > len(data):
        _bad(f"its pixel data needs {rows} bytes; the file holds {len(data) - offset} after the header")
    return width, abs(height)


# TIFF: the first IFD lies inside the file, every value stored outside an entry does too, and
# the image has a width, a length, and strips or tiles whose offsets and byte counts fit the file.
_TIFF_SIZES = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8, 13: 4}
_TIFF_READ = {256, 257, 273, 279, 322, 323, 324, 325}
Tags = dict[int, tuple[int, ...]]


def _tiff_entry(data: bytes, endian: str, pos: int, tags: Tags) -> None:
    """Check one IFD entry's values lie in the file; keep the integer values of the tags read."""
    tag, kind, count = struct.unpack_from(endian + "HHI", data, pos)
    size = _TIFF_SIZES.get(kind)
    if size is None:
        return  # an unknown type: readers skip it, as the TIFF specification asks
    at = pos + 8 if size * count <= 4 else _u32(data, pos + 8, endian)
    if at + size * count > len(data):
        _bad(f"the values of tag {tag} lie outside the file")
    if tag in _TIFF_READ:
        if kind not in (3, 4):
            _bad(f"tag {tag} is not a SHORT or LONG")
        tags[tag] = struct.unpack_from(f"{endian}{count}{'H' if kind == 3 else 'I'}", data, at)


def _tiff_tags(data: bytes, endian: str) -> Tags:
    ifd = _u32(data, 4, endian)
    if ifd < 8 or ifd + 2 > len(data):
        _bad("its first IFD lies outside the file")
    count = _u16(data, ifd, endian)
    end = ifd + 2 + 12 * count
    if not count or end + 4 > len(data):
        _bad("its first IFD is empty or runs past the end of the file")
    tags: Tags = {}
    for i in range(count):
        _tiff_entry(data, endian, ifd + 2 + 12 * i, tags)
    following = _u32(data, end, endian)
    if following and not 8 <= following < len(data):
        _bad("its next IFD offset points outside the file")
    return tags


def _tiff_dimensions(data: bytes) -> tuple[int, int]:
    tags = _tiff_tags(data, "<" if data[:2] == b"II" else ">")
    width, height = tags.get(256, ()), tags.get(257, ())
    if len(width) != 1 or len(height) != 1:
        _bad("it gives no image width or length")
    offsets, counts = (tags.get(324), tags.get(325)) if 324 in tags else (tags.get(273), tags.get(279))
    if not offsets or not counts or len(offsets) != len(counts):
        _bad("it has no strip or tile offsets with byte counts to match")
    outside = any(o + c > len(data) or (c and o < 8) for o, c in zip(offsets, counts, strict=True))
    if outside or not any(counts):
        _bad("its image data (strips or tiles) lies outside the file")
    return width[0], height[0]


_VALIDATORS: dict[str, Callable[[bytes], tuple[int, int]]] = {
    "png": _png_dimensions,
    "jpeg": _jpeg_dimensions,
    "webp": _webp_dimensions,
    "gif": _gif_dimensions,
    "bmp": _bmp_dimensions,
    "tiff": _tiff_dimensions,
}


def check_dimensions(width: int, height: int) -> None:
    """Raise InvalidImage below the smallest side, ImageTooLarge above the largest or the pixel limit."""
    if width < MIN_SIDE or height < MIN_SIDE:
        raise InvalidImage(f"the image is {width}x{height} pixels; each side must be at least {MIN_SIDE}")
    if width > MAX_SIDE or height > MAX_SIDE or width * height > MAX_PIXELS:
        raise ImageTooLarge(
            f"the image is {width}x{height} pixels; the limits are {MAX_SIDE} pixels a side and "
            f"{MAX_PIXELS // 1_000_000} megapixels (SAM3 scales inputs to about 1,000 pixels anyway)"
        )


def validate_image(data: bytes) -> ImageInfo:
    """Check a complete image file: its size, its format's structure and its dimensions."""
    fmt = inspect_image(data).format
    try:
        width, height = _VALIDATORS[fmt](data)
    except _Malformed as exc:
        raise InvalidImage(f"not a complete {NAMES[fmt]} image: {exc}") from None
    except (struct.error, IndexError) as exc:  # a read past the end: the file stops mid-structure
        raise InvalidImage(f"not a complete {NAMES[fmt]} image: it is cut short") from exc
    check_dimensions(width, height)
    return ImageInfo(format=fmt, width=width, height=height, sha256=hashlib.sha256(data).hexdigest())

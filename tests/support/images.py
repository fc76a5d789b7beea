"""Image bytes built by hand for tests: PNG chunks and headers, and a small image as a data URL."""

from __future__ import annotations

import base64
import io
import struct
import uuid
import zlib

from PIL import Image

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_chunk(kind: bytes, data: bytes) -> bytes:
    """One PNG chunk: its length, type, data and CRC."""
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_header(width: int, height: int) -> bytes:
    """A PNG's signature and IHDR (8-bit RGB) alone: what a sniffer reads, claiming any size, no pixels."""
    return PNG_SIGNATURE + png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))


def white_png_data_url(size: tuple[int, int]) -> str:
    """A white RGB PNG of ``size`` as a ``data:`` URL."""
    buffer = io.BytesIO()
    Image.new("RGB", size, (255, 255, 255)).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def unique_scene() -> bytes:
    """The demo's sample scene with a text chunk of its own after the header: the same pixels (and
    masks) as ``scene_png()``, bytes no other job sends, so the job is a result-cache miss that
    really reaches WaveSpeed (the emulator), as tests of that path need."""
    from maskgate_local.demo.sample import scene_png

    png = scene_png()
    end_of_header = len(PNG_SIGNATURE) + 25  # IHDR: length, type, 13 bytes of data, CRC
    tag = png_chunk(b"tEXt", b"test\x00" + uuid.uuid4().hex.encode())
    return png[:end_of_header] + tag + png[end_of_header:]

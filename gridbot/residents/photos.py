"""Photos from the residents' page, made safe to keep and forward.

A phone's photo carries where it was taken (EXIF GPS), the phone's make and often the
owner's name; it is also far larger than any chat needs. Each one is decoded with Pillow,
turned upright as the phone meant it, scaled down to at most :data:`LONGEST` pixels and
written again as a plain JPEG: nothing of the original file but its pixels survives.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

from PIL import Image, ImageOps, UnidentifiedImageError

from gridbot.domain import Attachment, AttachmentKind

#: the longest side kept, in pixels (sharp on a phone, ~150 KB as JPEG)
LONGEST = 1600
QUALITY = 82
#: a decoded photo larger than this many pixels is refused (a decompression bomb)
MAX_PIXELS = 60_000_000


class PhotoError(ValueError):
    """Not a photo we can take; ``code`` names why for the page (``too_large``,
    ``not_image``)."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


@dataclass(frozen=True, kw_only=True)
class Photo:
    data: bytes
    width: int
    height: int

    def attachment(self, number: int) -> Attachment:
        return Attachment.own(AttachmentKind.PHOTO, self.data, mime="image/jpeg",
                              name=f"photo-{number}.jpg")


def clean(raw: bytes, *, limit: int) -> Photo:
    """``raw`` (at most ``limit`` bytes) as a small JPEG without metadata."""
    if len(raw) > limit:
        raise PhotoError("too_large")
    try:
        with warnings.catch_warnings():
            # Pillow warns of a decompression bomb; the size is checked here instead.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(raw))
        with image:
            if image.width * image.height > MAX_PIXELS:
                raise PhotoError("too_large")
            image.load()
            upright = ImageOps.exif_transpose(image) or image
            picture = upright.convert("RGB")
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError, SyntaxError,
            ValueError) as exc:
        if isinstance(exc, PhotoError):
            raise
        raise PhotoError("not_image") from None
    picture.thumbnail((LONGEST, LONGEST), Image.Resampling.LANCZOS)
    picture.info.clear()  # Pillow would write the original's comment and ICC profile again
    out = io.BytesIO()
    # A fresh image: no EXIF, no GPS, no ICC profile, no comment is written.
    picture.save(out, "JPEG", quality=QUALITY, optimize=True, progressive=True)
    return Photo(data=out.getvalue(), width=picture.width, height=picture.height)

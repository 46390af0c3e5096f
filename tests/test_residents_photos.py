"""Photos from the residents' page keep their pixels and nothing else: no GPS, no phone
make, no comment; turned upright as the phone meant; no larger than a chat needs; and what
is no photo, or too large, or a decompression bomb, is refused with a reason the page
can say."""

from __future__ import annotations

import io

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from gridbot.residents.photos import LONGEST, PhotoError, clean


def jpeg(size: tuple[int, int], *, orientation: int = 1, gps: bool = True) -> bytes:
    image = Image.new("RGB", size, (10, 200, 30))
    image.putpixel((0, 0), (255, 0, 0))  # a red corner, to see which way it turned
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"
    exif[0x0112] = orientation
    if gps:
        exif[0x8825] = {1: "N", 2: (31.0, 14.0, 0.0), 3: "E", 4: (121.0, 28.0, 0.0)}
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif, quality=95, comment=b"taken at home")
    return out.getvalue()


def test_a_phone_photo_loses_its_location_and_shrinks() -> None:
    raw = jpeg((4000, 3000))
    with Image.open(io.BytesIO(raw)) as original:
        assert original.getexif().get_ifd(0x8825)  # the phone's photo says where
    photo = clean(raw, limit=8 * 1024 * 1024)
    with Image.open(io.BytesIO(photo.data)) as kept:
        assert kept.format == "JPEG" and max(kept.size) == LONGEST
        assert len(kept.getexif()) == 0 and "comment" not in kept.info and "exif" not in kept.info
    assert b"PhoneMaker" not in photo.data and b"taken at home" not in photo.data
    assert photo.attachment(1).mime == "image/jpeg"


def test_a_sideways_photo_is_turned_upright() -> None:
    photo = clean(jpeg((300, 200), orientation=6), limit=10**7)  # rotated 90° in the phone
    assert (photo.width, photo.height) == (200, 300)


@pytest.mark.parametrize(("raw", "code"), [
    (b"not a photo at all", "not_image"),
    (b"\xff\xd8\xff" + b"0" * 2000, "not_image"),
    (b"\xff\xd8\xff" + b"0" * (2 * 1024 * 1024), "too_large"),
])
def test_what_is_no_photo_or_too_large_is_refused(raw: bytes, code: str) -> None:
    with pytest.raises(PhotoError) as refused:
        clean(raw, limit=1024 * 1024)
    assert refused.value.code == code


def test_a_decompression_bomb_is_refused() -> None:
    out = io.BytesIO()
    Image.new("1", (12_000, 12_000)).save(out, "PNG")  # tiny file, 144 million pixels
    assert len(out.getvalue()) < 1024 * 1024
    with pytest.raises(PhotoError) as refused:
        clean(out.getvalue(), limit=1024 * 1024)
    assert refused.value.code == "too_large"


@settings(max_examples=25, deadline=None)
@given(st.binary(max_size=4096))
def test_any_bytes_get_an_answer(raw: bytes) -> None:
    try:
        photo = clean(raw, limit=1024 * 1024)
    except PhotoError as refused:
        assert refused.code in ("not_image", "too_large")
    else:
        assert photo.data.startswith(b"\xff\xd8")

"""Deterministic offline image rendering, shared by the local provider and the emulator."""

from __future__ import annotations

import hashlib
import io
import textwrap

from PIL import Image, ImageDraw, ImageFont

__all__ = ["render_image"]

_PIL_FORMAT = {"png": "PNG", "jpeg": "JPEG", "webp": "WEBP"}


def render_image(
    prompt: str,
    width: int,
    height: int,
    output_format: str = "png",
    *,
    seed: str = "",
    compression: int | None = None,
    transparent: bool = False,
) -> bytes:
    """Render a ``width`` x ``height`` pixel image (a gradient and the prompt text) as encoded bytes.

    The same arguments always give the same bytes. ``compression`` is 0-100 (jpeg/webp quality is
    ``100 - compression``). Cost: about 10-25 ms of CPU for 1024x1024 PNG on one core.
    """
    digest = hashlib.sha256(f"{seed}\x00{prompt}".encode()).digest()
    c1 = tuple(digest[0:3])
    c2 = tuple(digest[3:6])
    # A horizontal 2-colour gradient: a 256x1 ramp per channel, resized (cheap in C).
    ramp = Image.linear_gradient("L").rotate(90).resize((width, height), Image.Resampling.NEAREST)
    bands = [
        Image.eval(ramp, lambda v, a=a, b=b: a + (b - a) * v // 255)  # type: ignore[misc]
        for a, b in zip(c1, c2, strict=True)
    ]
    mode = "RGBA" if transparent and output_format in ("png", "webp") else "RGB"
    if mode == "RGBA":
        bands.append(Image.new("L", (width, height), 255))
    image = Image.merge(mode, bands)
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=max(10, min(width, height) // 24))
    text = "\n".join(textwrap.wrap(prompt, width=max(8, width // max(1, min(width, height) // 40)))[:6])
    draw.multiline_text((max(4, width // 32), max(4, height // 32)), text, fill=(255, 255, 255), font=font)
    out = io.BytesIO()
    fmt = _PIL_FORMAT[output_format]
    if fmt == "PNG":
        image.save(out, fmt, compress_level=1)
    else:
        quality = 100 - compression if compression is not None else 85
        image.save(out, fmt, quality=max(1, quality), **({"method": 0} if fmt == "WEBP" else {}))
    return out.getvalue()

"""The OpenAI-compatible Images request, as every OpenAI-style provider checks it on the wire.

Each provider module passes its own model table (``ModelRules``) and says whether it accepts
``response_format``; this module parses and validates the JSON or multipart body into an
``ImageCall``, or raises ``WireError`` (400) naming the parameter. Rules: OpenAI Images API
(../shared/providers/README.md, as of 2026-11-21) unless a provider module says otherwise.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ._wire import UploadedFile, WireError, WireRequest

if TYPE_CHECKING:
    from ._base import Env

__all__ = [
    "GPT_IMAGE_QUALITIES",
    "PRESET_SIZES",
    "ImageCall",
    "ModelRules",
    "openai_error_body",
    "parse_image_call",
    "render_call",
]

PRESET_SIZES = frozenset({"auto", "1024x1024", "1536x1024", "1024x1536"})
GPT_IMAGE_QUALITIES = frozenset({"low", "medium", "high", "auto"})
_FORMATS = frozenset({"png", "jpeg", "webp"})
_MAX_UPLOAD = 50 * 1024 * 1024  # bytes per input image [README.md, OpenAI edits]


@dataclass(frozen=True)
class ModelRules:
    """What one model accepts at one provider."""

    sizes: frozenset[str] = PRESET_SIZES
    custom_sizes: bool = (
        False  # gpt-image-2 rule: x16 edges, aspect <= 3:1, edge <= 3840, 655,360-8,294,400 px
    )
    qualities: frozenset[str] = GPT_IMAGE_QUALITIES
    max_n: int = 10
    max_prompt: int = 32000  # characters
    edits: bool = True
    masks: bool = True
    max_images: int = 16
    transparent: bool = True  # background=transparent allowed
    auto_size: str = "1024x1024"  # what size=auto resolves to
    #: How quality words resolve for the response and usage, e.g. auto -> high, standard -> medium.
    quality_as: tuple[tuple[str, str], ...] = (("auto", "high"),)
    default_quality: str = "auto"


@dataclass
class ImageCall:
    """A validated generation or edit request."""

    model: str
    prompt: str
    n: int
    size: str  # resolved "WxH"
    width: int
    height: int
    quality: str  # resolved (never "auto")
    output_format: str
    compression: int | None
    background: str  # resolved: "opaque" | "transparent"
    response_format: str | None  # as sent
    edit: bool
    images: list[UploadedFile] = field(default_factory=list)
    mask: UploadedFile | None = None
    params: dict[str, Any] = field(default_factory=dict)


def _bad(message: str, param: str | None, code: str = "invalid_value") -> WireError:
    return WireError(400, message, code=code, param=param, type_="invalid_request_error")


def _int(params: dict[str, Any], name: str, multipart: bool) -> int | None:
    value = params.get(name)
    if value is None:
        return None
    if multipart and isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            raise _bad(
                f"Invalid type for '{name}': expected an integer, got {value!r}.", name, "invalid_type"
            ) from None
    if isinstance(value, bool) or not isinstance(value, int):
        raise _bad(f"Invalid type for '{name}': expected an integer.", name, "invalid_type")
    return value


def custom_size_error(width: int, height: int) -> str | None:
    """Why ``width`` x ``height`` breaks the gpt-image-2 custom-size rule, or None."""
    if width % 16 or height % 16:
        return "both edges must be multiples of 16"
    if max(width, height) > 3840:
        return "the longest edge must be at most 3840"
    if max(width, height) > 3 * min(width, height):
        return "the aspect ratio must be between 1:3 and 3:1"
    if not 655_360 <= width * height <= 8_294_400:
        return "total pixels must be between 655,360 and 8,294,400"
    return None


def _size(value: Any, rules: ModelRules) -> tuple[str, int, int]:
    size = "auto" if value is None else value
    if not isinstance(size, str):
        raise _bad("Invalid type for 'size': expected a string.", "size", "invalid_type")
    if size == "auto" and "auto" in rules.sizes:
        size = rules.auto_size
    elif size not in rules.sizes:
        w, x, h = size.partition("x")
        if not (rules.custom_sizes and x and w.isdigit() and h.isdigit()):
            supported = ", ".join(f"'{s}'" for s in sorted(rules.sizes))
            raise _bad(f"Invalid value: '{size}'. Supported values are: {supported}.", "size")
        problem = custom_size_error(int(w), int(h))
        if problem:
            raise _bad(f"Invalid size '{size}': {problem}.", "size")
    w, _, h = size.partition("x")
    return size, int(w), int(h)


def _image_size(upload: UploadedFile, param: str) -> tuple[int, int, bool]:
    from PIL import Image

    try:
        with Image.open(io.BytesIO(upload.data)) as im:
            fmt = (im.format or "").lower()
            alpha = "A" in im.getbands() or "transparency" in im.info
            size = im.size
    except Exception:
        raise _bad(f"Invalid image file for '{param}': the bytes do not decode as an image.", param) from None
    if fmt not in _FORMATS:
        raise _bad(f"Invalid image file for '{param}': unsupported format '{fmt}' (png, jpeg, webp).", param)
    return size[0], size[1], alpha


def parse_image_call(
    req: WireRequest,
    models: dict[str, ModelRules],
    *,
    edit: bool,
    response_formats: frozenset[str] | None,
    known_params: frozenset[str] | None = None,
    image_fields: tuple[str, ...] = ("image", "image[]"),
) -> ImageCall:
    """Validate a generation (JSON) or edit (multipart) body.

    ``response_formats`` None means ``response_format`` is rejected (OpenAI GPT Image models);
    ``known_params`` set means any other parameter is rejected (OpenAI's ``unknown_parameter``).
    Raises ``WireError`` (400) with the OpenAI-style ``code`` and ``param``.
    """
    if req.body_error is not None:
        raise _bad(
            "We could not parse the JSON body of your request."
            if not edit
            else f"Could not parse the multipart body ({req.body_error}).",
            None,
            "invalid_json" if not edit else "invalid_multipart",
        )
    multipart = req.is_multipart
    if edit and not multipart:
        raise _bad("The edits endpoint takes multipart/form-data.", None, "invalid_content_type")
    if not edit and not isinstance(req.json, dict):
        raise _bad("The request body must be a JSON object.", None, "invalid_json")
    params = req.params()
    if known_params is not None:
        for name in params:
            if name not in known_params:
                raise _bad(f"Unknown parameter: '{name}'.", name, "unknown_parameter")
    model = params.get("model")
    if model is None:
        raise _bad("Missing required parameter: 'model'.", "model", "missing_required_parameter")
    if model not in models:
        supported = ", ".join(f"'{m}'" for m in sorted(models))
        raise _bad(f"Invalid value: '{model}'. Supported values are: {supported}.", "model")
    rules = models[model]
    prompt = params.get("prompt")
    if prompt is None or prompt == "":
        raise _bad("Missing required parameter: 'prompt'.", "prompt", "missing_required_parameter")
    if not isinstance(prompt, str):
        raise _bad("Invalid type for 'prompt': expected a string.", "prompt", "invalid_type")
    if len(prompt) > rules.max_prompt:
        raise _bad(
            f"Invalid 'prompt': string too long, maximum length {rules.max_prompt}.",
            "prompt",
            "string_above_max_length",
        )
    if "response_format" in params:
        if response_formats is None:
            raise _bad("Unknown parameter: 'response_format'.", "response_format", "unknown_parameter")
        if params["response_format"] not in response_formats:
            raise _bad(
                f"Invalid value: '{params['response_format']}'. Supported values are: 'url' and 'b64_json'.",
                "response_format",
            )
    n = _int(params, "n", multipart)
    n = 1 if n is None else n
    if not 1 <= n <= rules.max_n:
        raise _bad(f"Invalid 'n': must be between 1 and {rules.max_n}, got {n}.", "n", "integer_out_of_range")
    size, width, height = _size(params.get("size"), rules)
    quality = params.get("quality") or rules.default_quality
    if quality not in rules.qualities:
        supported = ", ".join(f"'{q}'" for q in sorted(rules.qualities))
        raise _bad(f"Invalid value: '{quality}'. Supported values are: {supported}.", "quality")
    resolved_quality = dict(rules.quality_as).get(quality, quality)
    fmt = params.get("output_format") or "png"
    if fmt not in _FORMATS:
        raise _bad(
            f"Invalid value: '{fmt}'. Supported values are: 'png', 'jpeg' and 'webp'.", "output_format"
        )
    compression = _int(params, "output_compression", multipart)
    if compression is not None:
        if fmt == "png":
            raise _bad("output_compression is only supported for jpeg and webp.", "output_compression")
        if not 0 <= compression <= 100:
            raise _bad(
                "Invalid 'output_compression': must be between 0 and 100.",
                "output_compression",
                "integer_out_of_range",
            )
    background = params.get("background") or "auto"
    if background not in ("transparent", "opaque", "auto"):
        raise _bad(
            f"Invalid value: '{background}'. Supported values are: 'transparent', 'opaque' and 'auto'.",
            "background",
        )
    if background == "transparent" and (fmt == "jpeg" or not rules.transparent):
        raise _bad("Transparent background is not supported for this model and output_format.", "background")
    call = ImageCall(
        model=model,
        prompt=prompt,
        n=n,
        size=size,
        width=width,
        height=height,
        quality=resolved_quality,
        output_format=fmt,
        compression=compression,
        background="transparent" if background == "transparent" else "opaque",
        response_format=params.get("response_format"),
        edit=edit,
        params=params,
    )
    if edit:
        _check_edit_files(req, call, rules, image_fields)
    return call


def _check_edit_files(
    req: WireRequest, call: ImageCall, rules: ModelRules, image_fields: tuple[str, ...]
) -> None:
    if not rules.edits:
        raise _bad(f"The model '{call.model}' does not support image edits.", "model", "unsupported_model")
    images = req.files_named(*image_fields)
    if not images:
        raise _bad("Missing required parameter: 'image'.", "image", "missing_required_parameter")
    if len(images) > rules.max_images:
        raise _bad(f"Too many images: at most {rules.max_images}.", "image", "array_above_max_length")
    first: tuple[int, int] | None = None
    for upload in images:
        if len(upload.data) > _MAX_UPLOAD:
            raise _bad("Each image must be smaller than 50 MB.", "image", "file_too_large")
        w, h, _ = _image_size(upload, "image")
        first = first or (w, h)
    masks = req.files_named("mask")
    if masks:
        if not rules.masks:
            raise _bad(f"The model '{call.model}' does not support masks.", "mask", "unsupported_parameter")
        mw, mh, alpha = _image_size(masks[0], "mask")
        if (mw, mh) != first:
            raise _bad(
                f"Invalid mask: its size {mw}x{mh} differs from the first image's {first[0]}x{first[1]}."
                if first
                else "Invalid mask.",
                "mask",
            )
        if not alpha:
            raise _bad("Invalid mask: it must be a PNG with an alpha channel.", "mask")
        call.mask = masks[0]
    call.images = images


def render_call(
    env: Env, provider: str, ic: ImageCall, fate: str | None, mode: str, *, prefix: str = ""
) -> list[dict[str, Any]]:
    """Render ``ic.n`` images of the asked size and format; ``data[]`` entries in ``mode`` (url/b64_json)."""
    images = env.render(
        ic.prompt, ic.width, ic.height, ic.output_format, n=ic.n, fate=fate,
        transparent=ic.background == "transparent", compression=ic.compression,
    )  # fmt: skip
    return env.deliver(provider, images, ic.output_format, mode, fate=fate, prompt=ic.prompt, prefix=prefix)


def openai_error_body(err: WireError) -> dict[str, Any]:
    """``{"error": {"message", "type", "param", "code"}}``, the OpenAI error shape."""
    type_ = err.type_ or ("server_error" if err.status >= 500 else "invalid_request_error")
    return {"error": {"message": err.message, "type": type_, "param": err.param, "code": err.code}}

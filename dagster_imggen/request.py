"""``ImageRequest``: one provider-independent image request (OpenAI Images API vocabulary).

SKELETON (lead): the fields and method signatures below are the shared contract. Issue #2 fills
in the per-model / per-provider validation from the catalog and the request hash.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Quality = Literal["low", "medium", "high", "auto", "standard", "hd"]
OutputFormat = Literal["png", "jpeg", "webp"]
Background = Literal["transparent", "opaque", "auto"]
Moderation = Literal["low", "auto"]


class ImageRequest(BaseModel):
    """One image request. Shapes and units:

    - ``prompt``: text; length limits per model and provider (see the catalog).
    - ``size``: ``"auto"``, a preset such as ``"1536x1024"``, or a custom ``"WxH"`` in pixels.
    - ``quality``: low | medium | high | auto, or standard | hd where a provider's model takes them;
      None means "use the resource's explicit default" (never an implicit ``auto``).
    - ``n``: images per request.
    - ``images``: reference images for an edit (local paths or fsspec URLs); ``mask`` likewise.
    - ``extra``: provider-specific fields, sent as given.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", protected_namespaces=())

    prompt: str
    model: str = "gpt-image-2"
    size: str = "1024x1024"
    quality: Quality | None = None
    n: int = 1
    output_format: OutputFormat = "png"
    output_compression: int | None = None
    background: Background | None = None
    moderation: Moderation | None = None
    images: tuple[str, ...] = ()
    mask: str | None = None
    extra: dict[str, Any] = Field(default_factory=dict)

    @property
    def is_edit(self) -> bool:
        return bool(self.images)

    def validate_for(self, provider: str, catalog: Any = None) -> ImageRequest:
        """Check this request against ``provider``'s rules for ``model`` (from the catalog).

        Returns self. Raises ``ImageRequestError`` naming the field and the rule.
        """
        raise NotImplementedError  # issue #2

    def request_hash(self) -> str:
        """Stable hex digest of the normalised parameters and the bytes of the reference images."""
        raise NotImplementedError  # issue #2

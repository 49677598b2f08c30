"""Model catalog and price book (stub signatures; being completed under issue #2)."""

from __future__ import annotations


class ModelSpec:
    pass


class Catalog:
    def model(self, provider: str, model: str) -> ModelSpec:
        raise NotImplementedError


def load_catalog(url: str | None = None, *, extend: bool = True) -> Catalog:
    raise NotImplementedError


def get_catalog() -> Catalog:
    raise NotImplementedError

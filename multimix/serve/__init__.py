"""A small web app around a trained checkpoint: upload an X-ray, see the class, lung outline,
saliency and where the image falls among the training images.

Start it with ``multimix serve --checkpoint PATH`` (needs the ``serve`` extra:
``pip install -e ".[serve]"``). :func:`create_app` builds the FastAPI application for tests or
for mounting in another ASGI server. FastAPI is imported only when one of these names is
used, so ``multimix serve`` can say what to install instead of failing on import.
"""

from __future__ import annotations

from typing import Any

__all__ = ["DEFAULT_MAX_UPLOAD_MB", "ReferenceMap", "create_app"]


def __getattr__(name: str) -> Any:
    if name in ("DEFAULT_MAX_UPLOAD_MB", "create_app"):
        from multimix.serve import app

        return getattr(app, name)
    if name == "ReferenceMap":
        from multimix.serve.reference import ReferenceMap

        return ReferenceMap
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

"""A small web app around a trained checkpoint: upload an X-ray, see the class, lung outline,
saliency and where the image falls among the training images.

Start it with ``python -m multimix.serve --checkpoint PATH`` (needs the ``serve`` extra:
``pip install -e ".[serve]"``). :func:`create_app` builds the FastAPI application for tests or
for mounting in another ASGI server.
"""

from .app import DEFAULT_MAX_UPLOAD_MB, create_app
from .reference import ReferenceMap

__all__ = ["DEFAULT_MAX_UPLOAD_MB", "ReferenceMap", "create_app"]

"""The FastAPI application: the upload page, ``/api/predict``, ``/api/health``, ``/api/model``, ``/api/reference``.

Safe by default: uploads are read into memory only (never spooled to disk) and capped while
they stream in; the format is judged by content, not name; inference runs in a worker thread,
so the server keeps answering while a prediction runs; a bad upload is a 4xx with a message.
"""

from __future__ import annotations

import base64
import email.parser
import email.policy
from pathlib import Path
from typing import Any

import numpy as np
from fastapi import FastAPI, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from skimage.transform import resize

from multimix.data.pixels import ImageReadError, ImageTooLargeError, UnsupportedImageError
from multimix.prediction import (
    Predictor,
    decode_image_bytes,
    png_bytes,
    prediction_pictures,
)
from multimix.serve.reference import ReferenceMap

DEFAULT_MAX_UPLOAD_MB = 20.0
DISPLAY_SIDE = 768  # pictures in a response are scaled so their longer side is at most this
STATIC = Path(__file__).parent / "static"

PREDICT_BODY = {
    "requestBody": {
        "required": True,
        "description": "The image itself as the body (any Content-Type, e.g. image/png), or a "
        "multipart/form-data form with the image in a field named 'file'.",
        "content": {
            "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {"file": {"type": "string", "format": "binary"}},
                    "required": ["file"],
                }
            },
        },
    }
}


def create_app(
    predictor: Predictor, *, reference: ReferenceMap | None = None, max_upload_mb: float = DEFAULT_MAX_UPLOAD_MB
) -> FastAPI:
    """The web app for ``predictor``; ``reference`` (optional) is the map uploads are placed on."""
    limit = int(max_upload_mb * 1024 * 1024)
    app = FastAPI(
        title="multimix",
        version="1",
        summary="Chest X-ray class, lung mask and saliency from one network. Research use only.",
    )
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/", include_in_schema=False)
    def page() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    @app.get("/api/health")
    def health() -> dict[str, str]:
        """Liveness: the model is loaded and the server answers."""
        return {"status": "ok"}

    @app.get("/api/model")
    def model() -> dict[str, Any]:
        """The checkpoint: name, image size, outputs, validation metrics and training config."""
        return {**predictor.describe(), "max_upload_mb": max_upload_mb, "reference_map": reference is not None}

    @app.get("/api/reference")
    def reference_map() -> dict[str, Any]:
        """The reference points (2-D PCA of training-image embeddings) with their labels."""
        if reference is None:
            raise HTTPException(404, "this server was started without a reference map")
        return reference.to_json(predictor.class_names)

    @app.post("/api/predict", openapi_extra=PREDICT_BODY)
    async def predict(request: Request) -> JSONResponse:
        """Class probabilities, lung fraction, and PNG data URLs of the input, the lung-outline
        overlay, the saliency overlay and the mask; ``map_position`` places the image on the
        reference map."""
        body = await _read_capped(request, limit)
        name, data = _image_part(request.headers.get("content-type", ""), body)
        try:
            result = await run_in_threadpool(_predict_bytes, predictor, reference, data, name)
        except ImageTooLargeError as err:
            raise HTTPException(413, str(err)) from None
        except ImageReadError as err:
            status = 415 if isinstance(err, UnsupportedImageError) else 422
            raise HTTPException(status, str(err)) from None
        return JSONResponse(result)

    return app


async def _read_capped(request: Request, limit: int) -> bytes:
    """The request body, in memory, refused with 413 once it passes ``limit`` bytes."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit + 64 * 1024:  # room for multipart framing
        raise HTTPException(
            413, f"upload too large: {int(declared) / 1e6:.1f} MB; the limit is {limit / 1024 / 1024:g} MB"
        )
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit + 64 * 1024:
            raise HTTPException(413, f"upload too large; the limit is {limit / 1024 / 1024:g} MB")
        chunks.append(chunk)
    body = b"".join(chunks)
    if not body:
        raise HTTPException(400, "empty upload: send an image as the body or as the form field 'file'")
    return body


def _image_part(content_type: str, body: bytes) -> tuple[str, bytes]:
    """``(name, bytes)`` of the uploaded image: the multipart field ``file``, or the whole body."""
    if not content_type.lower().startswith("multipart/form-data"):
        return "upload", body
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode("latin-1") + body
    )
    for part in message.iter_parts():
        if part.get_param("name", header="content-disposition") == "file":
            payload = part.get_payload(decode=True)
            return part.get_filename() or "upload", payload if isinstance(payload, bytes) else b""
    raise HTTPException(400, "multipart upload without a 'file' field")


def _predict_bytes(predictor: Predictor, reference: ReferenceMap | None, data: bytes, name: str) -> dict[str, Any]:
    image = decode_image_bytes(data, name=name)
    display = _fit(image, DISPLAY_SIDE)
    # the model sees the full image; its mask and saliency come straight at the display size
    prediction = predictor.predict([image], output_shapes=[display.shape])[0]
    pictures = {"input": display, **prediction_pictures(display, prediction.lung_mask, prediction.saliency)}
    result: dict[str, Any] = {
        "file": name,
        "width": int(image.shape[1]),
        "height": int(image.shape[0]),
        "images": {key: _data_url(picture) for key, picture in pictures.items()},
        "lung_fraction": prediction.lung_fraction,
        "map_position": None,
    }
    if prediction.probabilities is not None:
        result["probabilities"] = {
            c: float(p) for c, p in zip(predictor.class_names, prediction.probabilities, strict=False)
        }
        result["predicted_class"] = prediction.class_name
        # the called class's own probability: with a threshold other than 0.5 it may be below 0.5
        result["probability"] = float(prediction.probabilities[prediction.predicted_class])
        result["class_threshold"] = prediction.threshold
    if reference is not None and prediction.embedding is not None:
        result["map_position"] = reference.project(prediction.embedding)
    return result


def _fit(picture: np.ndarray, side: int) -> np.ndarray:
    """``picture`` scaled down (never up) so its longer side is at most ``side``."""
    scale = side / max(picture.shape[:2])
    if scale >= 1:
        return picture
    shape = (max(1, round(picture.shape[0] * scale)), max(1, round(picture.shape[1] * scale)))
    return resize(picture, shape, order=1, anti_aliasing=True, preserve_range=True).astype(np.float32)


def _data_url(picture: np.ndarray) -> str:
    if picture.dtype != np.uint8:
        picture = (np.clip(picture, 0, 1) * 255).round().astype(np.uint8)
    return "data:image/png;base64," + base64.b64encode(png_bytes(picture)).decode("ascii")

"""The web app: its JSON API through FastAPI's TestClient, and the page in a real headless Chromium."""

import base64
import io
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import imageio.v3 as iio
import numpy as np
import pytest

pytest.importorskip("fastapi", reason="the serve extra is not installed")
pytest.importorskip("starlette.testclient", reason="TestClient needs httpx2 (or httpx)")
from fastapi.testclient import TestClient  # noqa: E402

from multimix.prediction import Predictor  # noqa: E402
from multimix.serve import ReferenceMap, create_app  # noqa: E402

from helpers import REPO_ROOT

ROOT = REPO_ROOT


def _png(side: int = 48, seed: int = 0) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 65535, (side, side + 8), dtype=np.uint16)
    return iio.imwrite("<bytes>", pixels, extension=".png")


@pytest.fixture(scope="module")
def predictor(trained_checkpoint):
    return Predictor(trained_checkpoint, device="cpu")


@pytest.fixture(scope="module")
def client(predictor):
    embeddings = np.random.default_rng(0).normal(size=(12, 16))
    reference = ReferenceMap.fit(embeddings, [0, 1] * 6)
    return TestClient(create_app(predictor, reference=reference, max_upload_mb=0.5))


def _decode_data_url(url: str) -> np.ndarray:
    assert url.startswith("data:image/png;base64,")
    return iio.imread(io.BytesIO(base64.b64decode(url.split(",", 1)[1])))


def test_a_valid_image_gets_class_mask_saliency_and_a_map_position(client):
    response = client.post("/api/predict", content=_png(), headers={"Content-Type": "image/png"})
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["predicted_class"] in ("normal", "pneumonia") and (result["width"], result["height"]) == (56, 48)
    assert sum(result["probabilities"].values()) == pytest.approx(1.0)
    assert result["probability"] == pytest.approx(result["probabilities"][result["predicted_class"]])
    mask = _decode_data_url(result["images"]["mask"])
    assert mask.shape == (48, 56) and result["lung_fraction"] == pytest.approx((mask == 255).mean(), abs=1e-6)
    assert _decode_data_url(result["images"]["saliency"]).shape == (48, 56, 3)
    assert _decode_data_url(result["images"]["boundary"]).shape == (48, 56, 3)
    assert len(result["map_position"]) == 2


def test_a_multipart_form_upload_works_too(client):
    response = client.post("/api/predict", files={"file": ("scan.png", _png(), "image/png")})
    assert response.status_code == 200, response.text
    assert response.json()["file"] == "scan.png"
    missing = client.post("/api/predict", files={"other": ("scan.png", _png(), "image/png")})
    assert missing.status_code == 400 and "'file'" in missing.json()["detail"]


def test_a_non_image_is_refused_by_its_content_even_when_named_png(client):
    response = client.post("/api/predict", files={"file": ("scan.png", b"<html>not an x-ray</html>", "image/png")})
    assert response.status_code == 415 and "not a PNG, JPEG or DICOM" in response.json()["detail"]


def test_a_pixel_bomb_upload_is_a_413_before_decoding(client, tmp_path):
    from fake_trees import pixel_bomb

    bomb = pixel_bomb(tmp_path / "bomb.png").read_bytes()
    assert len(bomb) < 0.5 * 1024 * 1024  # small enough to pass the upload size cap
    response = client.post("/api/predict", files={"file": ("bomb.png", bomb, "image/png")})
    assert response.status_code == 413 and "12000x12000" in response.json()["detail"]
    assert client.get("/api/health").status_code == 200


def test_a_truncated_png_is_a_readable_422(client):
    response = client.post("/api/predict", content=_png(side=96)[:300])
    assert response.status_code == 422 and "the PNG file is truncated or corrupt" in response.json()["detail"]


def test_a_dicom_whose_pixel_data_the_header_does_not_describe_is_a_422(client, tmp_path):
    pytest.importorskip("pydicom")
    import pydicom
    from fake_trees import dicom

    path = dicom(tmp_path / "tiny.dcm", np.zeros((1, 1), np.uint16))
    ds = pydicom.dcmread(path)
    ds.PixelData = b"\0" * 6  # three pixels' bytes for one declared
    ds.save_as(path)
    response = client.post("/api/predict", files={"file": ("tiny.dcm", path.read_bytes(), "application/dicom")})
    assert response.status_code == 422 and "pixel data holds 6 bytes" in response.json()["detail"]
    assert client.get("/api/health").status_code == 200


def test_an_oversize_upload_is_refused_and_the_server_keeps_serving(client):
    response = client.post("/api/predict", content=b"\x89PNG\r\n\x1a\n" + bytes(1024 * 1024))
    assert response.status_code == 413 and "limit is 0.5 MB" in response.json()["detail"]
    assert client.post("/api/predict", content=b"").status_code == 400
    assert client.get("/api/health").json() == {"status": "ok"}


def test_concurrent_requests_are_all_answered(client):
    with ThreadPoolExecutor(max_workers=4) as pool:
        responses = list(pool.map(lambda seed: client.post("/api/predict", content=_png(seed=seed)), range(8)))
    assert [r.status_code for r in responses] == [200] * 8
    assert len({r.json()["probabilities"]["pneumonia"] for r in responses}) > 1  # each got its own answer


def test_model_reference_and_openapi_describe_the_service(client):
    model = client.get("/api/model").json()
    assert model["name"] == "MultiMix" and model["image_size"] == 32 and model["max_upload_mb"] == 0.5
    assert model["config"]["data"]["image_size"] == 32 and model["outputs"] == {"class": True, "lung_mask": True}
    reference = client.get("/api/reference").json()
    assert reference["method"] == "pca" and len(reference["points"]) == 12
    assert {p["label"] for p in reference["points"]} == {"normal", "pneumonia"}
    schema = client.get("/openapi.json").json()
    assert {"/api/predict", "/api/health", "/api/model"} <= set(schema["paths"])
    assert "multipart/form-data" in schema["paths"]["/api/predict"]["post"]["requestBody"]["content"]
    page = client.get("/")
    assert page.status_code == 200 and "Research use only" in page.text


def test_reference_map_projects_onto_its_own_axes():
    embeddings = np.random.default_rng(1).normal(size=(20, 5))
    reference = ReferenceMap.fit(embeddings, [0] * 20)
    assert np.allclose([reference.project(e) for e in embeddings[:3]], reference.points[:3], atol=1e-6)
    with pytest.raises(ValueError, match="at least 3"):
        ReferenceMap.fit(embeddings[:2], [0, 1])


# ------------------------------------------------------------------ a real server in a real browser

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def server(trained_checkpoint):
    port = _free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "multimix",
            "serve",
            "--checkpoint",
            str(trained_checkpoint),
            "--port",
            str(port),
            "--device",
            "cpu",
            "--reference",
            "20",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(120):
        try:
            with urllib.request.urlopen(f"{url}/api/health", timeout=1) as answer:
                if answer.status == 200:
                    break
        except OSError:
            time.sleep(0.5)
        if process.poll() is not None:
            pytest.fail(f"the server exited: {process.stdout.read()}")
    else:
        process.kill()
        pytest.fail("the server did not answer within 60 s")
    yield url
    process.terminate()
    process.wait(timeout=10)


@pytest.mark.skipif(
    not (CHROMIUM and CHROMEDRIVER),
    reason="no Chromium + chromedriver here (Debian: apt-get install chromium chromium-driver)",
)
def test_the_page_shows_the_result_in_headless_chromium(server, tmp_path):
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed")
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    image = tmp_path / "scan.png"
    image.write_bytes(_png(side=64))
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1200,900"):
        options.add_argument(flag)
    browser = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        browser.get(server)
        assert "Research use only" in browser.find_element(By.CLASS_NAME, "notice").text
        browser.find_element(By.ID, "file-input").send_keys(str(image))
        WebDriverWait(browser, 60).until(lambda b: b.find_element(By.ID, "class-text").text)
        assert browser.find_element(By.ID, "class-text").text.split(" ")[0] in ("normal", "pneumonia")
        for picture in ("boundary-image", "saliency-image"):  # decoded by the browser, not just linked
            width = browser.execute_script(
                "const i = document.getElementById(arguments[0]); return i.complete ? i.naturalWidth : 0;", picture
            )
            assert width == 72, picture
        assert (
            browser.find_elements(By.ID, "map-star")
            and len(browser.find_elements(By.CSS_SELECTOR, "#map circle")) == 20
        )
        assert "scan.png: 72 × 64 px" in browser.find_element(By.ID, "status").text
        # the bar marks the threshold the call is made from, where the text says it is
        mark = browser.find_element(By.ID, "threshold-mark")
        threshold = float(browser.find_element(By.ID, "class-text").text.rsplit("= ", 1)[1].rstrip("%)"))
        assert mark.is_displayed() and float(mark.value_of_css_property("left").rstrip("px")) == pytest.approx(
            threshold / 100 * browser.find_element(By.CLASS_NAME, "bar").size["width"], abs=1.5
        )
        browser.save_screenshot(str(tmp_path / "page.png"))
    finally:
        browser.quit()


def test_the_number_shown_is_the_called_class_probability_whatever_the_threshold(trained_checkpoint):
    image = _png()
    scores = TestClient(create_app(Predictor(trained_checkpoint, device="cpu")))
    p_pneumonia = scores.post("/api/predict", content=image, headers={"Content-Type": "image/png"}).json()[
        "probabilities"
    ]["pneumonia"]
    # a stored threshold just above this image's score: the call is normal, and so is the number
    above = Predictor(trained_checkpoint, device="cpu", class_threshold=min(0.999, p_pneumonia + 0.01))
    result = TestClient(create_app(above)).post("/api/predict", content=image, headers={"Content-Type": "image/png"})
    called = result.json()
    assert called["predicted_class"] == "normal" and called["class_threshold"] == pytest.approx(p_pneumonia + 0.01)
    assert called["probability"] == pytest.approx(1 - p_pneumonia)

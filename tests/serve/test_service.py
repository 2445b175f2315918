"""The bone-age service against a live uvicorn server on loopback, with a real httpx client:
tiny random-init Global and ALA-Net checkpoints saved here, PNG/JPEG/DICOM uploads, 20
concurrent requests, and every kind of bad upload."""

from __future__ import annotations

import base64
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np
import pytest

httpx = pytest.importorskip("httpx")
pytest.importorskip("fastapi")

from boneage_d2.engine.prediction_io import prediction_record  # noqa: E402
from boneage_d2.serve import (  # noqa: E402
    LiveServer,
    ModelSpec,
    create_app,
    load_models,
    parse_model_spec,
)
from boneage_d2.serve.cli import main as serve_main  # noqa: E402
from boneage_d2.version import __version__  # noqa: E402
from tests.fixtures import REPO  # noqa: E402

CONFIGS = {
    "global": REPO / "configs/Global/R18-phantom-demo.yaml",
    "alanet": REPO / "configs/ALA-Net/R18-phantom-demo.yaml",
}
TINY = ["BONEAGE.INPUT.LONG_SIDE_TEST", "96", "BONEAGE.INPUT.LONG_SIDE_TRAIN", "96"]
MAX_UPLOAD_MB = 0.5


def _save_random_init(name: str, out: Path) -> ModelSpec:
    """A random-init checkpoint and the full config it was built from (as train_net.py saves)."""
    import torch
    from detectron2.checkpoint import DetectionCheckpointer
    from detectron2.modeling import build_model

    from boneage_d2.engine import load_config

    cfg = load_config(str(CONFIGS[name]), TINY)
    torch.manual_seed(0)
    model = build_model(cfg)
    out.mkdir(parents=True)
    DetectionCheckpointer(model, save_dir=str(out)).save("model_final")
    (out / "config.yaml").write_text(cfg.dump())
    return ModelSpec(name, str(out / "config.yaml"), str(out / "model_final.pth"))


def hand(seed: int, h: int = 200, w: int = 160) -> np.ndarray:
    """A uint8 hand-like radiograph: a bright ellipse (size set by ``seed``) on dark noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:h, :w]
    a, b = w / (2.2 + 0.1 * (seed % 7)), h / (2.0 + 0.15 * (seed % 5))
    blob = ((xx - w / 2) / a) ** 2 + ((yy - h / 2) / b) ** 2 <= 1
    return (20 + 150 * blob + rng.integers(0, 60, (h, w))).clip(0, 255).astype(np.uint8)


def png_bytes(img: np.ndarray) -> bytes:
    return cv2.imencode(".png", img)[1].tobytes()


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("serve_models")
    return load_models([_save_random_init(n, root / n) for n in CONFIGS])


@pytest.fixture(scope="module")
def server(models):
    # a queue that holds the concurrency test's 10 requests per model (backpressure: its own test)
    with LiveServer(create_app(models, max_upload_mb=MAX_UPLOAD_MB, queue_size=10)) as live:
        yield live


@pytest.fixture()
def client(server):
    with httpx.Client(base_url=server.url, timeout=60) as c:
        yield c


def _post(client, data: bytes, name: str, sex: str | None = "M", url="/predict", **form):
    fields = {**form, **({"sex": sex} if sex is not None else {})}
    return client.post(url, files={"file": (name, data)}, data=fields)


def _direct(models, name: str, path: Path, male: bool) -> dict:
    """The same image through the predictor without the service (the path reader)."""
    predictor = models[name].predictor
    inp = {"file_name": path.name, "male": male}
    return prediction_record(inp, predictor(str(path), male=male))


def test_health_models_and_openapi(client, models):
    assert client.get("/health").json() == {
        "status": "ok",
        "models": ["global", "alanet"],
        "default_model": "global",
    }
    listed = client.get("/models").json()
    assert listed["default"] == "global"
    by_name = {m["name"]: m for m in listed["models"]}
    assert by_name["global"]["meta_architecture"] == "GlobalBoneAgeRegressor"
    assert by_name["alanet"]["meta_architecture"] == "ALANet"
    assert by_name["alanet"]["input_long_side"] == 96
    assert by_name["alanet"]["interval_coverage"] is None  # no calibration beside the weights
    assert by_name["alanet"]["calibrated"] is False
    assert len(by_name["alanet"]["config_sha256"]) == 64
    assert by_name["alanet"]["config_sha256"] != by_name["global"]["config_sha256"]
    assert by_name["global"]["package_version"] == __version__
    served = [m.weights for m in models.values()] + [m.config_file for m in models.values()]
    text = client.get("/models").text
    assert not any(str(Path(p).parent) in text for p in served)  # no server path
    assert "weights" not in by_name["global"] and "config_file" not in by_name["global"]
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/health", "/models", "/predict", "/models/{name}/predict"} <= set(paths)
    form = paths["/predict"]["post"]["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert {"file", "sex", "model", "age_months", "echo_filename"} <= set(form["properties"])


@pytest.mark.parametrize("suffix", [".png", ".jpg"])
@pytest.mark.parametrize("model", list(CONFIGS))
def test_upload_equals_the_file_prediction(client, models, tmp_path, suffix, model):
    path = tmp_path / f"film{suffix}"
    cv2.imwrite(str(path), hand(3))
    url = f"/models/{model}/predict"
    got = _post(client, path.read_bytes(), path.name, "F", url=url, echo_filename="true")
    assert got.status_code == 200, got.text
    body = got.json()
    expected = _direct(models, model, path, male=False)
    assert {k: body[k] for k in expected} == expected  # the whole record, new fields included
    assert body["model"] == model and body["sex"] == "F" and body["file"] == path.name
    assert body["boneage_years"] == pytest.approx(body["boneage_months"] / 12, abs=0.01)
    assert body["image_hw"] == [200, 160] and body["timing_ms"]["total"] > 0
    if model == "alanet":
        assert body["num_rois"] == len(body["roi_ages_months"]) == len(body["rois"]) > 0


def test_dicom_upload(client, models, tmp_path):
    from tests.io.test_intensity import write_dicom

    path = tmp_path / "film.dcm"
    write_dicom(path, hand(5).astype(np.uint16) * 16, 12)
    body = _post(client, path.read_bytes(), "film.dcm", "M", model="alanet").json()
    assert body["model"] == "alanet"
    assert body["boneage_months"] == _direct(models, "alanet", path, True)["boneage_months"]
    # the DICOM magic alone marks it, without the suffix
    unnamed = _post(client, path.read_bytes(), "scan", "M", model="alanet").json()
    assert unnamed["boneage_months"] == body["boneage_months"] and unnamed["file"] is None


def test_overlay_is_a_png_of_the_image(client):
    body = _post(client, png_bytes(hand(1)), "a.png", "M", model="alanet", overlay="true").json()
    overlay = cv2.imdecode(np.frombuffer(base64.b64decode(body["overlay_png_base64"]), np.uint8), 1)
    assert overlay.shape == (200, 160, 3)
    assert "overlay_png_base64" not in _post(client, png_bytes(hand(1)), "a.png").json()


def test_age_adds_delay_and_sds(client):
    from boneage_d2.reference import SDTable, bone_age_sds

    body = _post(client, png_bytes(hand(2)), "a.png", "F", age_months="96").json()
    expected = bone_age_sds(body["boneage_months"], 96.0, False, SDTable.load())
    assert body["chronological_age_months"] == 96.0
    assert body["boneage_sds"] == pytest.approx(expected.sds, abs=0.01)
    assert ("sds_beyond_2" in body["flags"]) is (abs(expected.sds) > 2)
    r = _post(client, png_bytes(hand(2)), "a.png", "F", age_months="-3")
    assert r.status_code == 422 and "age_months" in r.json()["detail"]
    assert "boneage_sds" not in _post(client, png_bytes(hand(2)), "a.png").json()


def test_reject_flagged_leaves_the_age_of_a_negative_film_empty(client):
    from boneage_d2.phantom import PhantomConfig, sample_phantom

    film = sample_phantom(PhantomConfig(distractors=False), seed=5, image_id=0).image
    negative = png_bytes(255 - film)
    kept = _post(client, negative, "neg.png", "M").json()
    assert kept["flags"] == ["inverted_polarity"] and kept["boneage_months"] is not None
    rejected = _post(client, negative, "neg.png", "M", reject_flagged="true").json()
    assert rejected["flags"] == kept["flags"] and rejected["boneage_months"] is None
    clean = _post(client, png_bytes(film), "a.png", "M", reject_flagged="true").json()
    assert clean["flags"] == [] and clean["boneage_months"] is not None


def test_concurrent_requests_each_get_their_own_answer(server):
    images = [png_bytes(hand(seed, 180 + 4 * seed, 150)) for seed in range(20)]
    names = [("global", "alanet")[i % 2] for i in range(20)]

    def ask(i: int) -> dict:
        with httpx.Client(base_url=server.url, timeout=120) as c:
            url = f"/models/{names[i]}/predict"
            r = _post(c, images[i], f"{i}.png", "MF"[i % 2 == 0], url=url, echo_filename="1")
            assert r.status_code == 200, r.text
            return r.json()

    one_by_one = [ask(i) for i in range(20)]
    with ThreadPoolExecutor(20) as pool:
        together = list(pool.map(ask, range(20)))
    drop = ("timing_ms",)
    for i, (a, b) in enumerate(zip(one_by_one, together)):
        assert b["file"] == f"{i}.png" and b["model"] == names[i]
        assert {k: v for k, v in a.items() if k not in drop} == {
            k: v for k, v in b.items() if k not in drop
        }
    # the images differ, and so do their answers: a mix-up would show
    assert len({r["image_hw"][0] for r in together}) == 20
    assert len({(r["model"], r["boneage_months"]) for r in together}) > 10


def test_bad_uploads_are_clear_json_errors(client):
    good = png_bytes(hand(2))
    r = _post(client, b"name,age\n1,2\n", "labels.csv")
    assert r.status_code == 415 and r.json()["detail"].startswith("upload.csv: ")
    r = _post(client, b"name,age\n1,2\n", "labels.csv", echo_filename="true")
    assert r.status_code == 415 and r.json()["detail"].startswith("labels.csv: ")
    r = _post(client, good[: len(good) // 2], "cut.png")
    assert r.status_code == 422 and "truncated PNG" in r.json()["detail"]
    r = _post(client, b"", "empty.png")
    assert r.status_code == 415 and "empty" in r.json()["detail"]
    r = _post(client, good, "a.png", model="resnet")
    assert r.status_code == 404
    assert r.json()["detail"] == "unknown model 'resnet'; known: global, alanet"
    r = _post(client, good, "a.png", url="/models/nope/predict")
    assert r.status_code == 404 and "known: global, alanet" in r.json()["detail"]
    r = _post(client, good, "a.png", sex=None)
    assert r.status_code == 422 and "form field 'sex'" in r.json()["detail"]
    r = _post(client, good, "a.png", sex="X")
    assert r.status_code == 422 and "'X' is not a known sex encoding" in r.json()["detail"]
    r = client.post("/predict", data={"sex": "M"})
    assert r.status_code == 422 and "form field 'file'" in r.json()["detail"]
    r = _post(client, good, "a.png", overlay="maybe")
    assert r.status_code == 422 and "overlay" in r.json()["detail"]


def test_uploads_over_the_limit_get_413(client, server):
    big = bytes(int(MAX_UPLOAD_MB * 2**20) + 1000)
    r = _post(client, big, "big.png")
    assert r.status_code == 413 and "0.5 MB" in r.json()["detail"]

    def chunks():  # no Content-Length: counted as it arrives (a well-formed file part)
        yield (
            b'--x\r\nContent-Disposition: form-data; name="file"; filename="big.png"\r\n'
            b"Content-Type: image/png\r\n\r\n"
        )
        for _ in range(12):
            yield bytes(64 * 1024)

    r = client.post(
        "/predict", content=chunks(), headers={"content-type": "multipart/form-data; boundary=x"}
    )
    assert r.status_code == 413
    assert client.get("/health").status_code == 200  # the server is still fine


def test_model_specs_and_cli_errors(tmp_path, capsys):
    assert parse_model_spec("a=c.yaml:w.pth") == ModelSpec("a", "c.yaml", "w.pth")
    assert parse_model_spec("a=c.yaml") == ModelSpec("a", "c.yaml", None)
    with pytest.raises(ValueError, match="NAME=CONFIG_YAML:WEIGHTS"):
        parse_model_spec("c.yaml")
    with pytest.raises(ValueError, match="used twice"):
        load_models([ModelSpec("a", "c.yaml"), ModelSpec("a", "d.yaml")])
    missing = f"a={CONFIGS['global']}:{tmp_path / 'none.pth'}"
    assert serve_main(["--model", missing]) == 2
    assert "none.pth': file not found" in capsys.readouterr().err


def test_console_script_is_installed():
    script = Path(sys.executable).with_name("boneage-serve")
    if not script.exists():
        pytest.skip("boneage-serve not installed (pip install -e .)")
    out = subprocess.run([str(script), "--help"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and "--max-upload-mb" in out.stdout

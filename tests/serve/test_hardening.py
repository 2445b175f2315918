"""The service's hardening (issue 29): the pixel budget (413), every form field checked before the
model runs (422 naming it), generic 500s with a request id, optional API keys, backpressure
(503 with Retry-After), uploads kept in memory, file names not echoed, DICOM tags never logged,
and /docs served without the internet."""

from __future__ import annotations

import logging
import re
import tempfile
import threading
import time

import numpy as np
import pytest

httpx = pytest.importorskip("httpx")
pytest.importorskip("fastapi")

from boneage_d2.serve import LiveServer, create_app, load_api_keys, load_models  # noqa: E402
from boneage_d2.serve.auth import key_matches  # noqa: E402
from tests.image_bombs import peak_rss_mb, png_bomb, reset_peak_rss  # noqa: E402
from tests.serve.test_service import _save_random_init, hand, png_bytes  # noqa: E402

KEY, OTHER_KEY = "k" * 20, "m-" * 12
# A refused bomb costs its 875 KB body and the header read, not its 900 MB of pixels.
PEAK_RSS_BOUND_MB = 64


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("hardening_models")
    return load_models([_save_random_init("global", root / "global")])


@pytest.fixture(scope="module")
def server(models):
    with LiveServer(create_app(models, max_upload_mb=4)) as live:
        yield live


@pytest.fixture()
def client(server):
    with httpx.Client(base_url=server.url, timeout=60) as c:
        yield c


@pytest.fixture()
def forward_calls(models, monkeypatch):
    """How many times the model ran (its predictor's ``predict_batch``)."""
    predictor = models["global"].predictor
    calls = []
    real = predictor.predict_batch
    monkeypatch.setattr(predictor, "predict_batch", lambda inputs: calls.append(1) or real(inputs))
    return calls


def _post(client, data=None, name="film.png", url="/predict", **form):
    files = {"file": (name, png_bytes(hand(1)) if data is None else data)}
    return client.post(url, files=files, data={"sex": "M", **form})


def test_png_bomb_gets_413_before_decoding(client, forward_calls):
    bomb = png_bomb()
    if not reset_peak_rss():
        pytest.skip("cannot reset the peak RSS here")
    base, t0 = peak_rss_mb(), time.perf_counter()
    r = _post(client, bomb, "bomb.png")
    seconds, grown = time.perf_counter() - t0, peak_rss_mb() - base
    assert r.status_code == 413, r.text
    assert r.json()["detail"] == (
        "upload.png: 30000x30000 pixels (900 MP) is over the pixel limit of 40 MP; "
        "refused before decoding"
    )
    assert grown <= PEAK_RSS_BOUND_MB and seconds < 10 and forward_calls == []


def test_pixel_limit_is_a_setting(models):
    with LiveServer(create_app(models, max_pixels=10_000)) as live:
        r = _post(httpx.Client(base_url=live.url, timeout=60))
    assert r.status_code == 413 and "160x200 pixels (0.032 MP)" in r.json()["detail"]


@pytest.mark.parametrize(
    "form, field, message",
    [
        ({"age_months": "inf"}, "age_months", "finite number"),
        ({"age_months": "nan"}, "age_months", "finite number"),
        ({"age_months": "1e9"}, "age_months", "outside the SD table's ages for a male (3-204"),
        ({"age_months": "210"}, "age_months", "outside the SD table's ages"),
        ({"age_months": "-1"}, "age_months", "greater than or equal to 0"),
        ({"age_months": "ten"}, "age_months", "valid number"),
        ({"sex": "X"}, "sex", "'X' is not a known sex encoding"),
        ({"sex": ""}, "sex", "Field required"),
        ({"overlay": "maybe"}, "overlay", "valid boolean"),
        ({"age": "100"}, "age", "Extra inputs are not permitted"),
        ({"model": "global", "url": "/models/global/predict"}, "model", "Extra inputs"),
    ],
)
def test_bad_fields_get_422_naming_them_before_the_model_runs(
    client, forward_calls, form, field, message
):
    url = form.pop("url", "/predict")
    r = _post(client, url=url, **form)
    assert r.status_code == 422, r.text
    assert f"form field '{field}': " in r.json()["detail"] and message in r.json()["detail"]
    assert forward_calls == []


def test_file_and_repeated_fields_are_checked(client, forward_calls):
    r = client.post("/predict", data={"sex": "M", "file": "not a file"})
    assert r.status_code == 422 and "form field 'file': expected a file upload" in r.text
    files = [("file", ("a.png", png_bytes(hand(1)))), ("sex", (None, "M")), ("sex", (None, "F"))]
    r = client.post("/predict", files=files)
    assert r.status_code == 422 and "form field 'sex': given 2 times" in r.text
    r = client.post("/predict", json={"sex": "M"})
    assert r.status_code == 415 and "multipart/form-data" in r.text
    assert forward_calls == []
    r = _post(client, age_months="120", overlay="")  # an empty field is an absent one
    assert r.status_code == 200 and r.json()["chronological_age_months"] == 120.0
    assert forward_calls == [1]


def test_a_500_is_generic_and_logged_under_its_request_id(client, models, monkeypatch, caplog):
    def broken(inputs):
        raise RuntimeError("secret detail from /srv/models/weights.pth")

    monkeypatch.setattr(models["global"].predictor, "predict_batch", broken)
    with caplog.at_level(logging.ERROR, logger="boneage_d2.serve"):
        r = _post(client)
    rid = r.headers["X-Request-ID"]
    assert r.status_code == 500
    assert r.json() == {"detail": f"internal error (request id {rid})", "request_id": rid}
    (record,) = [rec for rec in caplog.records if rid in rec.getMessage()]
    assert record.exc_info and "secret detail" in str(record.exc_info[1])
    assert client.get("/health").headers["X-Request-ID"] != rid  # one id per request


def test_api_keys(models, tmp_path, capsys):
    keys_file = tmp_path / "keys.txt"
    keys_file.write_text(f"# service keys\n\n{KEY}\n")
    keys = load_api_keys(str(keys_file), environ={"BONEAGE_API_KEYS": f" {OTHER_KEY} ,"})
    assert len(keys) == 2 and key_matches(KEY, keys) and not key_matches(KEY[:-1], keys)
    with LiveServer(create_app(models, api_keys=keys)) as live:
        c = httpx.Client(base_url=live.url, timeout=60)
        assert c.get("/health").status_code == 200
        assert c.get("/docs").status_code == 200 and c.get("/openapi.json").status_code == 200
        for path in ("/models", "/nothing-here"):
            r = c.get(path)
            assert r.status_code == 401 and r.headers["WWW-Authenticate"].startswith("Bearer")
        r = _post(c)
        assert r.status_code == 401 and "missing API key" in r.json()["detail"]
        r = c.get("/models", headers={"X-API-Key": "x" * 20})
        assert r.status_code == 401 and 'error="invalid_token"' in r.headers["WWW-Authenticate"]
        assert c.get("/models", headers={"Authorization": f"Bearer {KEY}"}).status_code == 200
        assert c.get("/models", headers={"X-API-Key": OTHER_KEY}).status_code == 200
        files = {"file": ("a.png", png_bytes(hand(1)))}
        r = c.post("/predict", files=files, data={"sex": "F"}, headers={"X-API-Key": KEY})
        assert r.status_code == 200
        schemes = c.get("/openapi.json").json()["components"]["securitySchemes"]
        assert set(schemes) == {"bearer", "apiKey"}
    for text, error in (("short\n", "at least 16"), ("# none\n\n", "no keys in it")):
        keys_file.write_text(text)
        with pytest.raises(ValueError, match=error):
            load_api_keys(str(keys_file), environ={})
    with pytest.raises(ValueError, match="cannot read"):
        load_api_keys(str(tmp_path / "missing.txt"), environ={})
    assert load_api_keys(None, environ={}) == ()
    from boneage_d2.serve.cli import main as serve_main

    assert serve_main(["--model", "a=c.yaml:w.pth", "--api-keys-file", str(keys_file)]) == 2
    assert "keys.txt: no keys in it" in capsys.readouterr().err


def test_full_queue_and_timeout_get_503_with_retry_after(models):
    app = create_app(models, queue_size=0, request_timeout_s=0.5)
    lock = models["global"].lock
    with LiveServer(app) as live:
        c = httpx.Client(base_url=live.url, timeout=60)
        lock.acquire()  # the model is busy
        try:
            first: list = []
            waiting = threading.Thread(target=lambda: first.append(_post(c)))
            waiting.start()
            time.sleep(0.2)  # the first request holds the only place, waiting for the model
            r = _post(c)
            assert r.status_code == 503 and "queue-size" in r.json()["detail"]
            assert int(r.headers["Retry-After"]) >= 1
            waiting.join()
            assert first[0].status_code == 503 and "0.5 s request timeout" in first[0].text
            assert int(first[0].headers["Retry-After"]) >= 1
        finally:
            lock.release()
        assert _post(c).status_code == 200


def test_uploads_stay_in_memory_and_names_are_not_echoed(client, monkeypatch):
    spooled = []
    real = tempfile.TemporaryFile
    monkeypatch.setattr(
        tempfile, "TemporaryFile", lambda *a, **k: spooled.append(1) or real(*a, **k)
    )
    noise = np.random.default_rng(0).integers(0, 256, (1300, 1100), dtype=np.uint8)
    data = png_bytes(noise)
    assert 2**20 < len(data) < 4 * 2**20  # over the 1 MB a multipart parser spools from
    r = _post(client, data, "DOE_JOHN_1961.png")
    assert r.status_code == 200, r.text
    assert spooled == []
    assert r.json()["file"] is None and "DOE_JOHN" not in r.text
    r = _post(client, b"\x89PNG\r\n\x1a\n" + bytes(50), "DOE_JOHN_1961.png")
    assert r.status_code in (415, 422) and "DOE_JOHN" not in r.text
    named = _post(client, None, "DOE_JOHN_1961.png", echo_filename="true")
    assert named.json()["file"] == "DOE_JOHN_1961.png"


def test_dicom_tags_are_never_logged(client, tmp_path, caplog):
    pytest.importorskip("pydicom")
    from tests.io.test_intensity import write_dicom

    path = tmp_path / "film.dcm"
    tags = {"PatientName": "DOE^JANE", "PatientID": "PID-12345", "PatientBirthDate": "19610203"}
    write_dicom(path, hand(5).astype(np.uint16) * 16, 12, **tags)
    damaged = path.read_bytes()[:-500]
    with caplog.at_level(logging.DEBUG):
        ok = _post(client, path.read_bytes(), "film.dcm")
        bad = _post(client, damaged, "film.dcm")
    assert ok.status_code == 200 and bad.status_code == 422
    logged = "\n".join(r.getMessage() + str(r.exc_info or "") for r in caplog.records)
    for value in ("DOE", "PID-12345", "19610203"):
        assert value not in logged and value not in ok.text


def test_docs_work_offline(client):
    r = client.get("/docs")
    assert r.status_code == 200 and "SwaggerUIBundle" in r.text
    assert not re.search(r"(https?:)?//[a-z0-9.-]+\.[a-z]{2,}", r.text, re.I)  # no external host
    assets = re.findall(r'(?:src|href)="([^"]+)"', r.text)
    assert len(assets) == 3
    for url in assets:
        asset = client.get(url)
        assert asset.status_code == 200 and len(asset.content) > 500, url
    assert "url: '/openapi.json'" in r.text and client.get("/redoc").status_code == 404

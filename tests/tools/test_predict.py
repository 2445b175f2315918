"""tools/predict.py end to end: phantom images, checkpoints trained here, CSV/JSON and PNGs."""

import csv
import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from detectron2.engine import default_argument_parser

from boneage_d2.data import register_boneage_split
from boneage_d2.engine import load_config
from boneage_d2.engine.prediction_io import output_names
from boneage_d2.engine.predictor import BoneAgePredictor
from boneage_d2.io.radiograph import read_radiograph
from tests.cli import load_tool
from tests.fixtures import REPO

convert_rsna = load_tool("convert_rsna")
make_phantom = load_tool("make_phantom")
predict = load_tool("predict")
train_net = load_tool("train_net")

CONFIGS = {
    "alanet": REPO / "configs/ALA-Net/R18-phantom-demo.yaml",
    "handseg": REPO / "configs/HandSeg-RAN/R18-phantom-demo.yaml",
}
SMALL = {
    # GN, not the demo's BN: a 3-iteration BN model (near-initial running statistics) moves with
    # any contrast change (a lossy JPEG, a configured percentile stretch) while GN normalises it
    # away, so the encodings' ages compare the decoding alone.
    "alanet": [
        "BONEAGE.INPUT.LONG_SIDE_TRAIN",
        "128",
        "BONEAGE.INPUT.LONG_SIDE_TEST",
        "128",
        "MODEL.RESNETS.NORM",
        "GN",
    ],
    "handseg": [
        "BONEAGE.INPUT.LONG_SIDE_TRAIN",
        "128",
        "BONEAGE.INPUT.LONG_SIDE_TEST",
        "128",
        "BONEAGE.RAN.INPUT_SIZE",
        "64",
    ],
}


@pytest.fixture(scope="module")
def phantom(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("predict_phantom")
    make_phantom.main(
        ["--output-dir", str(root / "raw"), "--num-train", "6", "--num-val", "2"]
        + ["--num-test", "3", "--seed", "3", "--image-long-side", "256", "--workers", "1"]
    )
    convert_rsna.main(
        ["--rsna-root", str(root / "raw"), "--output-dir", str(root / "coco"), "--workers", "1"]
    )
    register_boneage_split("predict_phantom_train", root / "coco/train.json")
    return root


def _train(model: str, phantom: Path, out: Path) -> Path:
    opts = SMALL[model] + [
        "DATASETS.TRAIN",
        "('predict_phantom_train',)",
        "DATASETS.TEST",
        "()",
        "SOLVER.IMS_PER_BATCH",
        "2",
        "SOLVER.MAX_ITER",
        "3",
        "SOLVER.STEPS",
        "()",
        "SOLVER.WARMUP_ITERS",
        "1",
        "DATALOADER.NUM_WORKERS",
        "0",
        "OUTPUT_DIR",
        str(out),
    ]
    args = default_argument_parser().parse_args(["--config-file", str(CONFIGS[model]), *opts])
    train_net.main(args)
    return out / "model_final.pth"


@pytest.fixture(scope="module")
def checkpoints(phantom, tmp_path_factory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("predict_ckpt")
    return {m: _train(m, phantom, out / m) for m in CONFIGS}


def _predict(model, checkpoints, out: Path, input_args: list[str]) -> int:
    argv = ["--config-file", str(CONFIGS[model]), "--weights", str(checkpoints[model])]
    argv += ["--output-dir", str(out), "--num-workers", "0", "--input", *input_args]
    return predict.main(argv + SMALL[model])


def _rows(out: Path) -> list[dict]:
    with open(out / "predictions.csv", newline="") as f:
        return list(csv.DictReader(f))


@pytest.mark.slow
@pytest.mark.parametrize("model", list(CONFIGS))
def test_predict_cli_writes_tables_and_overlays(model, phantom, checkpoints, tmp_path):
    test_dir = phantom / "raw/boneage-test-dataset"
    sex_csv = phantom / "raw/boneage-test-dataset.csv"  # the RSNA test CSV: Case ID, Sex
    out = tmp_path / "pred"
    extra = ["--overlays", "--contact-sheet", "3"] + (["--attention"] if model == "handseg" else [])
    argv = [str(test_dir), "--sex-csv", str(sex_csv), *extra]
    assert _predict(model, checkpoints, out, argv) == 0

    images = sorted(test_dir.glob("*.png"))
    rows = _rows(out)
    assert [Path(r["file"]).name for r in rows] == [p.name for p in images]
    truth_sex = {r["Case ID"]: r["Sex"] for r in csv.DictReader(open(sex_csv))}
    payload = json.loads((out / "predictions.json").read_text())
    assert payload["meta_architecture"] in ("ALANet", "HandSegBoneAgeRCNN")
    sheet = cv2.imread(str(out / "overlays" / "contact_sheet.jpg"))
    assert (
        sheet.shape == (256, 5 * 256, 3) and sheet[:, : 3 * 256].mean() > sheet[:, 3 * 256 :].mean()
    )
    modules = sum(load_config(str(CONFIGS[model])).BONEAGE.RAN.MODULES_PER_STAGE)
    for row, rec, img in zip(rows, payload["predictions"], images):
        assert row["sex"] == truth_sex[img.stem]
        months = float(row["boneage_months"])
        assert 0 <= months <= 240 and rec["boneage_months"] == pytest.approx(months)
        assert float(row["boneage_years"]) == pytest.approx(months / 12, abs=0.01)
        if model == "handseg":
            assert int(row["num_hands"]) == len(rec["hand_ages_months"])
        else:
            assert int(row["num_rois"]) == 17 == len(rec["rois"])
            ages = [float(a) for a in row["roi_ages_months"].split(";")]
            assert ages == pytest.approx([r["age_months"] for r in rec["rois"]])
            assert all(0 <= a <= 240 for a in ages)
            scores = [r["score"] for r in rec["rois"]]
            assert scores == sorted(scores, reverse=True)
            h, w = read_radiograph(img).shape
            for r in rec["rois"]:
                x0, y0, x1, y1 = r["box_xyxy"]
                # rounded to 0.1 px: an RPN box thinner than 0.05 px at the edge reads x0 == x1
                assert 0 <= x0 <= x1 <= w and 0 <= y0 <= y1 <= h
        drawn = cv2.imread(str(out / "overlays" / f"{img.stem}.png"))
        original = cv2.cvtColor(read_radiograph(img), cv2.COLOR_GRAY2BGR)
        assert drawn.shape == original.shape
        assert np.abs(drawn.astype(int) - original).mean() > 0.5  # something was drawn on it
        if model == "handseg":
            att = cv2.imread(str(out / "attention" / f"{img.stem}.png"))
            assert att is not None and att.shape[1] == att.shape[0] * (1 + modules)  # view + maps


@pytest.mark.slow
def test_unreadable_and_16bit_rgb_dicom_inputs(phantom, checkpoints, tmp_path):
    pydicom = pytest.importorskip("pydicom")
    src = next(iter(sorted((phantom / "raw/boneage-test-dataset").glob("*.png"))))
    gray = cv2.imread(str(src), cv2.IMREAD_GRAYSCALE)
    inputs = tmp_path / "in"
    inputs.mkdir()
    shutil.copy(src, inputs / "a_8bit.png")
    cv2.imwrite(str(inputs / "b_16bit.png"), gray.astype(np.uint16) * 257)
    rgb = cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR)
    cv2.imwrite(str(inputs / "c_rgb.jpg"), rgb, [cv2.IMWRITE_JPEG_QUALITY, 95])
    (inputs / "d_truncated.png").write_bytes(src.read_bytes()[:200])
    _write_dicom(pydicom, inputs / "e.dcm", gray)
    out = tmp_path / "pred"
    argv = [str(inputs), "--sex", "F", "--batch-size", "2"]
    assert _predict("alanet", checkpoints, out, argv) == 0
    rows = {Path(r["file"]).stem: r for r in _rows(out)}
    assert rows["d_truncated"]["flags"] == "unreadable"
    assert "truncated PNG" in rows["d_truncated"]["error"]
    ages = {k: float(r["boneage_months"]) for k, r in rows.items() if k != "d_truncated"}
    # The same pixels in every encoding give nearly the same age: the 16-bit PNG and the 12-bit
    # DICOM are scaled over their bit depth back to the 8-bit pixels; JPEG is lossy.
    for k in ("b_16bit", "e"):
        assert ages[k] == pytest.approx(ages["a_8bit"], abs=0.5), k
    assert ages["c_rgb"] == pytest.approx(ages["a_8bit"], abs=3.0)


def _write_dicom(pydicom, path: Path, gray: np.ndarray, photometric="MONOCHROME2") -> None:
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.1.1"  # digital X-ray
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset(str(path), {}, file_meta=meta, preamble=b"\0" * 128)
    ds.Rows, ds.Columns = gray.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, photometric
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.PixelData = (gray.astype(np.uint16) * 16).tobytes()
    ds.save_as(str(path), enforce_file_format=True)


def test_16bit_png_and_dicom_decode_to_the_8bit_pixels(tmp_path):
    """A 16-bit PNG (x257) and a 12-bit DICOM (x16) of one 8-bit image decode to that image, each
    scaled over its bit depth (the default intensity pipeline); MONOCHROME1 is inverted back so
    bone stays bright."""
    pydicom = pytest.importorskip("pydicom")
    gray = np.random.default_rng(0).integers(20, 230, (40, 30)).astype(np.uint8)
    expected = gray.astype(int)
    cv2.imwrite(str(tmp_path / "a.png"), gray.astype(np.uint16) * 257)
    _write_dicom(pydicom, tmp_path / "b.dcm", gray)
    for name in ("a.png", "b.dcm"):
        assert np.abs(read_radiograph(tmp_path / name).astype(int) - expected).max() <= 1, name
    _write_dicom(pydicom, tmp_path / "c.dcm", 255 - gray, photometric="MONOCHROME1")
    assert np.abs(read_radiograph(tmp_path / "c.dcm").astype(int) - expected).max() <= 1


def test_dicom_without_pydicom_is_a_clear_error(tmp_path, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_pydicom(name, *args, **kwargs):
        if name == "pydicom":
            raise ImportError("No module named 'pydicom'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_pydicom)
    (tmp_path / "x.dcm").write_bytes(b"\0" * 128 + b"DICM")
    with pytest.raises(OSError, match=r"x\.dcm: reading DICOM needs pydicom.*pip install pydicom"):
        read_radiograph(tmp_path / "x.dcm")


@pytest.mark.slow
def test_predictor_single_and_batched_agree(phantom, checkpoints):
    cfg = load_config(str(CONFIGS["alanet"]), SMALL["alanet"])
    cfg.MODEL.WEIGHTS = str(checkpoints["alanet"])
    predictor = BoneAgePredictor(cfg)
    files = sorted(str(p) for p in (phantom / "raw/boneage-test-dataset").glob("*.png"))
    singles = [float(predictor(predictor.read(f), male=True)["boneage"]) for f in files]
    batched = [
        float(out["boneage"])
        for _, out in predictor.predict_files(files, [True] * len(files), batch_size=3)
    ]
    assert batched == pytest.approx(singles, abs=1e-3)


def _err(capsys, argv) -> str:
    with pytest.raises(SystemExit) as e:
        predict.main(argv)
    assert e.value.code == 2
    return capsys.readouterr().err


def test_bad_inputs_are_clear_errors(tmp_path, capsys):
    img = tmp_path / "1377.png"
    cv2.imwrite(str(img), np.zeros((20, 16), np.uint8))
    base = ["--config-file", str(CONFIGS["alanet"]), "--output-dir", str(tmp_path / "o")]
    assert "--input nope/*.png: no such file" in _err(
        capsys, base + ["--input", "nope/*.png", "--sex", "M"]
    )
    sexes = tmp_path / "sex.csv"
    sexes.write_text("id,Sex\n1377,X\n")
    assert "sex.csv, row 2, field 'Sex': value 'X' is not a known sex encoding" in _err(
        capsys, base + ["--input", str(img), "--sex-csv", str(sexes)]
    )
    sexes.write_text("id,Sex\n9999,M\n")
    assert "no sex for 1 input file(s): " + str(img) in _err(
        capsys, base + ["--input", str(img), "--sex-csv", str(sexes)]
    )
    sexes.write_text("name,gender\n1377,M\n")
    assert "needs a file column" in _err(
        capsys, base + ["--input", str(img), "--sex-csv", str(sexes)]
    )
    assert "no weights: pass --weights" in _err(capsys, base + ["--input", str(img), "--sex", "F"])
    missing = tmp_path / "missing.pth"
    assert f"MODEL.WEIGHTS='{missing}': file not found" in _err(
        capsys, base + ["--input", str(img), "--sex", "F", "--weights", str(missing)]
    )


def test_output_names_are_unique():
    names = output_names(["a/1.png", "b/1.png", "c/2.dcm"])
    assert len(set(names)) == 3 and names[2] == "2.png"


@pytest.mark.slow
def test_blank_and_tiny_images_are_flagged_by_every_model(checkpoints, tmp_path):
    """Model-independent input flags: a blank film and a 32 x 32 image get their flag from every
    model (with an age: flags tell, ``--reject-flagged``-style policies decide)."""
    inputs = tmp_path / "in"
    inputs.mkdir()
    cv2.imwrite(str(inputs / "black.png"), np.zeros((400, 300), np.uint8))
    cv2.imwrite(str(inputs / "tiny.png"), np.random.default_rng(0).integers(0, 255, (32, 32)))
    for model in CONFIGS:
        out = tmp_path / model
        assert _predict(model, checkpoints, out, [str(inputs), "--sex", "M"]) == 0
        rows = {Path(r["file"]).stem: r for r in _rows(out)}
        assert "blank_image" in rows["black"]["flags"].split(";"), model
        assert "image_too_small" in rows["tiny"]["flags"].split(";"), model
        assert "blank_image" not in rows["tiny"]["flags"], model


@pytest.mark.slow
def test_no_predictable_input_exits_non_zero(checkpoints, tmp_path, capsys):
    bad = tmp_path / "in"
    bad.mkdir()
    (bad / "cut.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 40)
    out = tmp_path / "pred"
    assert _predict("alanet", checkpoints, out, [str(bad), "--sex", "F"]) == 1
    assert "none of the 1 input image(s) could be predicted" in capsys.readouterr().err
    assert _rows(out)[0]["flags"] == "unreadable"  # the table is still written


@pytest.mark.slow
def test_reject_flagged_leaves_the_age_of_a_flagged_film_empty(checkpoints, tmp_path):
    from boneage_d2.checks.perturb import invert
    from boneage_d2.phantom import PhantomConfig, sample_phantom

    inputs = tmp_path / "in"
    inputs.mkdir()
    film = sample_phantom(PhantomConfig(distractors=False), seed=5, image_id=0).image
    cv2.imwrite(str(inputs / "clean.png"), film)
    cv2.imwrite(str(inputs / "negative.png"), invert(film))
    for reject in (False, True):
        out = tmp_path / f"reject_{reject}"
        extra = ["--reject-flagged"] if reject else []
        assert _predict("alanet", checkpoints, out, [str(inputs), "--sex", "F", *extra]) == 0
        rows = {Path(r["file"]).stem: r for r in _rows(out)}
        assert rows["clean"]["flags"] == "" and rows["clean"]["boneage_months"] != ""
        assert rows["negative"]["flags"] == "inverted_polarity"
        assert "polarity inverted" in rows["negative"]["flag_reasons"]
        assert (rows["negative"]["boneage_months"] == "") is reject


calibrate = load_tool("calibrate_intervals")


@pytest.mark.slow
def test_calibrated_intervals_reach_predict_and_the_evaluator(phantom, checkpoints, tmp_path):
    register_boneage_split("predict_phantom_val", phantom / "coco/val.json")
    weights = tmp_path / "model_final.pth"
    shutil.copy(checkpoints["alanet"], weights)
    base = ["--config-file", str(CONFIGS["alanet"]), "--weights", str(weights)]
    base += ["--dataset", "predict_phantom_val"]
    with pytest.raises(SystemExit):  # 2 images cannot give a 90 % quantile
        calibrate.main(base + SMALL["alanet"])
    assert not (tmp_path / "model_final.intervals.json").exists()  # nothing half-written
    assert calibrate.main(base + ["--coverage", "0.5", *SMALL["alanet"]]) == 0
    cal = json.loads((tmp_path / "model_final.intervals.json").read_text())
    assert cal["n"] == 2 and cal["coverage"] == 0.5 and cal["dataset"] == "predict_phantom_val"

    out = tmp_path / "pred"
    argv = ["--config-file", str(CONFIGS["alanet"]), "--weights", str(weights)]
    argv += ["--output-dir", str(out), "--num-workers", "0"]
    argv += ["--input", str(phantom / "raw/boneage-test-dataset"), "--sex", "M"]
    with pytest.raises(SystemExit):  # calibrated at 50 %, asked for the default 90 %
        predict.main(argv + SMALL["alanet"])
    assert predict.main(argv + SMALL["alanet"] + ["BONEAGE.INTERVALS.COVERAGE", "0.5"]) == 0
    for row in _rows(out):
        age, lo, hi = (
            float(row[k]) for k in ("boneage_months", "boneage_lo_months", "boneage_hi_months")
        )
        assert hi - age == pytest.approx(cal["quantile_months"], abs=0.02)
        assert age - lo == pytest.approx(min(cal["quantile_months"], age), abs=0.02)
        rank_lo, rank_hi = (
            float(row["boneage_rank_lo_months"]),
            float(row["boneage_rank_hi_months"]),
        )
        assert rank_lo <= rank_hi

    from detectron2.checkpoint import DetectionCheckpointer

    from boneage_d2.engine import BoneAgeTrainer

    opts = SMALL["alanet"] + ["BONEAGE.INTERVALS.COVERAGE", "0.5", "OUTPUT_DIR", str(tmp_path)]
    opts += ["DATASETS.TRAIN", "('predict_phantom_train',)"]
    opts += ["DATASETS.TEST", "('predict_phantom_val',)", "MODEL.WEIGHTS", str(weights)]
    cfg = load_config(str(CONFIGS["alanet"]), opts)
    model = BoneAgeTrainer.build_model(cfg)
    DetectionCheckpointer(model).load(str(weights))
    metrics = BoneAgeTrainer.test(cfg, model)["boneage"]
    # calibrated on these 2 images at 50 %: the 2nd smallest error, so both are inside
    assert metrics["interval_coverage"] == 100.0
    assert metrics["interval_mean_width"] > 0 and "rank_interval_coverage" in metrics


stress = load_tool("stress_test")


@pytest.mark.slow
def test_stress_test_writes_its_table_and_plot(checkpoints, tmp_path):
    out = tmp_path / "stress"
    argv = ["--config-file", str(CONFIGS["alanet"]), "--weights", str(checkpoints["alanet"])]
    argv += ["--dataset", "predict_phantom_train", "--max-images", "3", "--output-dir", str(out)]
    assert stress.main(argv + SMALL["alanet"]) == 0
    rows = {r["perturbation"]: r for r in json.loads((out / "stress.json").read_text())["rows"]}
    assert len(rows) == 15 and all(r["n"] == 3 for r in rows.values())
    assert rows["clean"]["delta_mae"] == 0.0 and rows["clean"]["mean_shift"] == 0.0
    assert rows["inverted"]["flag_rate"] == 100.0  # the input checks flag every negative film
    assert "| rotate +30 | 3 |" in (out / "stress.md").read_text()
    assert cv2.imread(str(out / "stress.png")).shape[1] > 500


def test_flip_tta_averages_the_film_and_its_mirror(phantom, checkpoints):
    opts = SMALL["alanet"]
    plain = load_config(str(CONFIGS["alanet"]), opts)
    plain.MODEL.WEIGHTS = str(checkpoints["alanet"])
    tta = plain.clone()
    tta.BONEAGE.TEST.FLIP_TTA = True
    single, flipped = BoneAgePredictor(plain), BoneAgePredictor(tta)
    film = single.read(sorted((phantom / "raw/boneage-test-dataset").glob("*.png"))[0])
    own = float(single(film, male=True)["boneage"])
    mirror = float(single(np.ascontiguousarray(film[:, ::-1]), male=True)["boneage"])
    assert own != pytest.approx(mirror, abs=1e-4)  # the mirror is another view for this model
    out = flipped(film, male=True)
    assert float(out["boneage"]) == pytest.approx((own + mirror) / 2, abs=1e-3)
    assert len(out["instances"]) == 17  # ROIs stay the film's own


@pytest.mark.slow
def test_ensemble_age_is_the_mean_of_its_members(phantom, checkpoints, tmp_path):
    test_dir = phantom / "raw/boneage-test-dataset"
    singles = {}
    for model in CONFIGS:
        assert _predict(model, checkpoints, tmp_path / model, [str(test_dir), "--sex", "F"]) == 0
        singles[model] = [float(r["boneage_months"]) for r in _rows(tmp_path / model)]
    out = tmp_path / "ensemble"
    argv = ["--ensemble", str(CONFIGS["handseg"]), str(checkpoints["handseg"])]
    argv += ["BONEAGE.RAN.INPUT_SIZE", "64"]  # opts reach every model: HandSeg's crop size
    assert _predict("alanet", checkpoints, out, [str(test_dir), "--sex", "F", *argv]) == 0
    rows = _rows(out)
    payload = json.loads((out / "predictions.json").read_text())
    assert len(payload["ensemble"]) == 2
    for i, (row, rec) in enumerate(zip(rows, payload["predictions"])):
        members = [singles["alanet"][i], singles["handseg"][i]]
        assert rec["member_ages_months"] == pytest.approx(members, abs=0.01)
        assert float(row["boneage_months"]) == pytest.approx(np.mean(members), abs=0.01)
        assert int(row["num_rois"]) == 17  # overlays and ROIs: the first model's

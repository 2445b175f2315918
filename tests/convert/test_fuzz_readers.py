"""Fuzzing the RSNA label reader and the hand-keypoint json reader (hypothesis).

Properties: no input raises anything but the documented ``RSNAFormatError`` (naming the file, row
and field); every skipped row is reported with the file, a row that exists and the field; what
is accepted is well-formed; strict mode raises exactly the first problem lenient mode reports.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import openpyxl
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from boneage_d2.convert.rsna import (
    ACTION_IMAGE_SKIPPED,
    ACTION_NOTE,
    AGE_HEADERS,
    ID_HEADERS,
    MALE_HEADERS,
    MAX_AGE_MONTHS,
    SEX_HEADERS,
    KeypointFile,
    RSNAFormatError,
    read_keypoints,
    read_labels,
)

# Derandomized: the same examples on every run (a stable, fast suite); no example database.
FUZZ = settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
LABEL_NAME = "labels.csv"
KP_NAME = "kp.json"


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


# --- shared checks -------------------------------------------------------------------------------


def _check_error(err: RSNAFormatError, file: str) -> None:
    """A rejection names the file, a row (0 = the file itself) and a field."""
    assert err.bad is not None, f"error without file/row/field: {err}"
    assert err.file == file and err.row >= 0 and err.field and err.bad.reason
    assert str(err).startswith(f"{file} row ")


def _first_problem(issues) -> object | None:
    return next((b for b in issues if b.action != ACTION_NOTE), None)


def _read_both(reader, path: Path, file: str, **kw):
    """Lenient and strict reads; checks strict raises exactly the first lenient problem."""
    try:
        lenient = reader(path, **kw)
    except RSNAFormatError as e:  # a file-level problem raises in both modes
        _check_error(e, file)
        with pytest.raises(RSNAFormatError) as strict_err:
            reader(path, strict=True, **kw)
        assert str(strict_err.value) == str(e)
        return None
    issues = lenient.issues if isinstance(lenient, KeypointFile) else lenient.attrs["bad_rows"]
    first = _first_problem(issues)
    if first is None:
        reader(path, strict=True, **kw)
    else:
        with pytest.raises(RSNAFormatError) as strict_err:
            reader(path, strict=True, **kw)
        _check_error(strict_err.value, file)
        assert strict_err.value.bad == first
    return lenient


# --- label files ---------------------------------------------------------------------------------

KNOWN_HEADERS = ID_HEADERS + AGE_HEADERS + MALE_HEADERS + SEX_HEADERS
PUBLISHED_HEADERS = [
    ["id", "boneage", "male"],
    ["Image ID", "male", "Bone Age (months)"],
    ["Case ID", "Sex"],
    ["Case ID", "Sex", "Ground truth bone age (months)"],
    ["ID", "Male", "Boneage", "extra"],
]
header_cell = st.one_of(
    st.sampled_from(KNOWN_HEADERS + ("ID", " BONEAGE ", "Male", "extra", "")),
    st.text(st.characters(blacklist_characters=",;\t\r\n\"'"), max_size=6),
)
# Odd text: anything but quotes and the line ends a text editor shows (\r, \n). Unicode line
# breaks (\x0b, \x0c, \x1c-\x1e, \x85, \u2028, \u2029) are ordinary characters in a CSV.
odd_text = st.text(
    st.one_of(
        st.sampled_from("\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029\x00 ,;\t.+-e_"),
        st.characters(blacklist_characters='"\r\n', blacklist_categories=("Cs",)),
    ),
    max_size=8,
)
odd_cell = st.one_of(
    st.sampled_from(
        [
            "0",
            "1.0",
            "+5",
            "-3",
            "007",
            "١٢٣",
            "abc",
            "",
            "NaN",
            "inf",
            "1e3",
            "1_0",
            "240.5",
            " 7 ",
            "TRUE",
            "0.0",
            "Female",
            "X",
        ]
    ),  # fmt: skip
    odd_text,
)
id_cell = st.one_of(
    st.integers(0, 5000).map(str),
    st.integers(0, 10**25).map(lambda n: f"{n}.0"),
    st.integers(2**53, 10**25).map(lambda n: f"{n | 1}.0"),  # odd > 2**53: no exact float
)
age_cell = st.one_of(st.floats(0, 240).map(lambda x: f"{x:.6g}"), st.integers(0, 240).map(str))
CELLS = {
    "id": id_cell,
    "age": age_cell,
    "male": st.sampled_from(["True", "False", "TRUE", "false", "1", "0"]),
    "sex": st.sampled_from(["M", "F", "male", "f"]),
}


def _kind(header: str) -> str:
    """Which plausible cells a column gets: by its header (unknown headers get ages)."""
    h = " ".join(header.strip().lower().split())
    for kind, names in (("id", ID_HEADERS), ("male", MALE_HEADERS), ("sex", SEX_HEADERS)):
        if h in {x.lower() for x in names}:
            return kind
    return "age"


@st.composite
def label_files(draw) -> tuple[str, list[str], list[list[str] | None], str]:
    """(file text, header cells, data rows (None = a blank line), delimiter): mostly published
    headers and plausible cells, with odd cells and blank lines mixed in."""
    delimiter = draw(st.sampled_from([",", ";", "\t"]))
    published = st.sampled_from(PUBLISHED_HEADERS)
    header = draw(st.one_of(published, published, st.lists(header_cell, min_size=1, max_size=5)))
    row = st.tuples(*(st.one_of(*[CELLS[_kind(h)]] * 3, odd_cell) for h in header))
    rows = draw(st.lists(st.one_of(st.none(), row.map(list), row.map(list)), max_size=8))
    lines = [delimiter.join(header)] + ["" if r is None else delimiter.join(r) for r in rows]
    bom = draw(st.sampled_from(["", "\ufeff"]))
    return bom + "\n".join(lines) + draw(st.sampled_from(["", "\n"])), header, rows, delimiter


def _check_labels(df, path: Path, header: list[str] | None = None, rows=None, delim=None):
    """The accepted frame is well-formed and every reported row exists and names a column."""
    assert list(df.columns) == ["id", "boneage", "male", "row"]
    assert df["id"].is_unique and all(s.isdigit() and s == str(int(s)) for s in df["id"])
    ages = df["boneage"].to_numpy()
    has_age = df.attrs["fields"]["boneage"] is not None
    if has_age:
        assert np.isfinite(ages).all() and ((ages >= 0) & (ages <= MAX_AGE_MONTHS)).all()
    else:
        assert np.isnan(ages).all()
    assert df["male"].dtype == bool
    assert df["row"].is_monotonic_increasing and (df["row"] >= 1).all()
    fields = {c.strip() for c in (header or [])}
    for b in df.attrs["bad_rows"]:
        assert b.file == path.name and b.row >= 1 and b.reason and b.action == ACTION_IMAGE_SKIPPED
        if header is not None:
            assert b.field in fields
    if rows is None:
        return
    # Row numbers are data lines of the file as an editor shows it (a blank line counts), and
    # an accepted row carries the id written on that line (split as the reader sniffs it).
    sniffed = delim if len(header) > 1 else ","
    id_col = next(i for i, c in enumerate(header) if c.strip() == df.attrs["fields"]["id"])
    for b in df.attrs["bad_rows"]:
        assert 1 <= b.row <= len(rows) and rows[b.row - 1] is not None, b
    for rid, row in zip(df["id"], df["row"]):
        assert 1 <= row <= len(rows) and rows[row - 1] is not None
        cell = delim.join(rows[row - 1]).split(sniffed)[id_col].strip()
        assert int(rid) == int(cell.split(".")[0]), (rid, cell)


@FUZZ
@given(label_files())
@example(("id,boneage,male\n12345678901234567890.0,10,True\n", None, None, None))
@example(("id,boneage,male\n1,1\x0c0,True\n2,abc,True\n", None, None, None))
def test_fuzz_read_labels_csv(work, case):
    text, header, rows, delim = case
    path = work / LABEL_NAME
    path.write_text(text, encoding="utf-8")
    df = _read_both(read_labels, path, LABEL_NAME)
    if df is not None:
        if header is None:  # an @example: parse the header and rows back from the text
            lines = text.split("\n")
            header, rows = lines[0].split(","), [ln.split(",") if ln else None for ln in lines[1:]]
        _check_labels(df, path, header, rows, delim or ",")


@FUZZ
@given(st.binary(max_size=300), st.sampled_from(["labels.csv", "labels.xlsx", "labels.xls"]))
def test_fuzz_read_labels_bytes(work, data, name):
    path = work / name
    path.write_bytes(data)
    df = _read_both(read_labels, path, name)
    if df is not None:
        _check_labels(df, path)


xlsx_cell = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**40), 2**40),
    st.floats(allow_nan=True, allow_infinity=True),
    odd_cell,
    id_cell,
    age_cell,
)


@settings(max_examples=25, deadline=None, derandomize=True, database=None)
@given(
    st.lists(st.sampled_from(KNOWN_HEADERS + ("extra",)), min_size=1, max_size=4, unique=True),
    st.lists(st.lists(xlsx_cell, min_size=0, max_size=4), max_size=5),
)
def test_fuzz_read_labels_xlsx(tmp_path_factory, header, rows):
    path = tmp_path_factory.mktemp("xlsx") / "labels.xlsx"
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(header)
    try:
        for r in rows:
            ws.append(r or [None])
        wb.save(path)
    except openpyxl.utils.exceptions.IllegalCharacterError:  # not a possible reader input
        return
    df = _read_both(read_labels, path, "labels.xlsx")
    if df is not None:
        _check_labels(df, path, header)


# --- keypoint json -------------------------------------------------------------------------------

number = st.one_of(
    st.integers(-5, 300),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0, 1, 2, 0.0, 2.0]),
)
junk = st.one_of(st.none(), st.booleans(), st.text(max_size=4), number, st.just({}), st.just([]))


def numbers(k: int) -> st.SearchStrategy:
    """A keypoint list of about 3 * k values, mostly valid, sometimes junk."""
    valid = st.lists(
        st.tuples(st.floats(0, 60), st.floats(0, 60), st.sampled_from([0, 1, 2])),
        min_size=k,
        max_size=k,
    ).map(lambda pts: [v for p in pts for v in p])
    return st.one_of(
        valid,
        st.lists(st.one_of(number, junk), min_size=3 * k - 3, max_size=3 * k + 3),
        st.lists(number, max_size=6),
        junk,
    )


image_entry = st.one_of(
    st.fixed_dictionaries(
        {
            "id": st.one_of(st.integers(0, 4), st.sampled_from(["1", 1.0, None, [1]])),
            "file_name": st.one_of(
                st.sampled_from(["101.png", "102.png", "5.png", "1.0.png", "+7.png", "a.png"]),
                st.text(max_size=6),
                junk,
            ),
        },
        optional={
            "width": st.one_of(st.integers(-1, 80), junk),
            "height": st.one_of(st.integers(-1, 80), junk),
        },
    ),
    junk,
)


@st.composite
def keypoint_jsons(draw) -> object:
    k = draw(st.sampled_from([17, 21, 2]))
    wholebody = draw(st.booleans())
    ann_keys = {"image_id": st.one_of(st.integers(0, 4), junk), "bbox": st.one_of(numbers(1), junk)}
    if wholebody:
        for side in ("left", "right"):
            ann_keys[f"{side}hand_kpts"] = numbers(k)
            ann_keys[f"{side}hand_valid"] = st.one_of(st.booleans(), junk)
            ann_keys[f"{side}hand_box"] = st.one_of(numbers(1), junk)
    else:
        ann_keys["keypoints"] = numbers(k)
    ann = st.one_of(st.fixed_dictionaries({}, optional=ann_keys), junk)
    category = st.fixed_dictionaries(
        {}, optional={"keypoints": st.one_of(st.lists(st.text(max_size=2), max_size=25), junk)}
    )
    parts = {
        "images": st.one_of(st.lists(image_entry, max_size=5), junk),
        "annotations": st.one_of(st.lists(ann, max_size=6), junk),
        "categories": st.one_of(st.lists(st.one_of(category, junk), max_size=2), junk),
    }
    valid_parts = {
        "images": st.lists(image_entry, max_size=5),
        "annotations": st.lists(ann, max_size=6),
    }
    return draw(
        st.one_of(
            st.fixed_dictionaries(valid_parts, optional={"categories": parts["categories"]}),
            st.fixed_dictionaries(valid_parts, optional={"categories": parts["categories"]}),
            st.fixed_dictionaries({}, optional=parts),
            junk,
        )
    )


def _check_keypoints(kp: KeypointFile, data: object) -> None:
    annotations = data["annotations"]  # type: ignore[index]
    assert kp.num_keypoints >= 1 and len(kp.keypoint_names) == kp.num_keypoints
    for b in kp.issues:
        assert b.file == KP_NAME and 1 <= b.row <= len(annotations) and b.field and b.reason
    for rid, hand in kp.hands.items():
        assert rid == hand.rsna_id and rid.isdigit() and rid == str(int(rid))
        assert 1 <= hand.row <= len(annotations)
        assert hand.keypoints.shape == (kp.num_keypoints, 3)
        assert np.isfinite(hand.keypoints).all() and hand.num_visible > 0
        assert set(hand.keypoints[:, 2].tolist()) <= {0.0, 1.0, 2.0}
        assert hand.bbox is None or (len(hand.bbox) == 4 and all(map(math.isfinite, hand.bbox)))
    assert not set(kp.hands) & set(kp.no_keypoints)


@FUZZ
@given(keypoint_jsons())
def test_fuzz_read_keypoints(work, data):
    path = work / KP_NAME
    path.write_text(json.dumps(data), encoding="utf-8")
    kp = _read_both(read_keypoints, path, KP_NAME)
    if kp is not None:
        _check_keypoints(kp, data)


@FUZZ
@given(st.binary(max_size=200))
@example(b"[" * 100_000)  # nesting deeper than the json module's recursion limit
@example(b'{"annotations": [], "images": [], "x": ' + b"1" * 5000 + b"}")  # > 4300 digits
@example(b'{"annotations": [], "images": [], "categories": 5}')
@example('{"annotations": [], "images": []}'.encode("utf-16"))
def test_fuzz_read_keypoints_bytes(work, data):
    path = work / KP_NAME
    path.write_bytes(data)
    kp = _read_both(read_keypoints, path, KP_NAME)
    if kp is not None:
        _check_keypoints(kp, json.loads(data))

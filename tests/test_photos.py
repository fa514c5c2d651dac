"""export/predict.py on photo-like images (tests/photos.py): MNIST test digits on plain, lined and grid
paper, in pen, pencil, thin ballpoint at a phone's resolution and marker, on desks, close up or at the
frame's edge, under uneven light and tinted white balance; blank photos; the generator itself
(tests/strokes.py too); --explain; the speed of a 12 MP JPEG; and that every number of the
preprocessing travels inside the model."""

import io
import json
import os
import shutil
import subprocess
import sys
from collections import Counter

import numpy as np
import pytest
from PIL import Image

from export.predict import PREPROCESSING, TILE, DigitClassifier, ImageError, preprocess
from src.data import load_mnist
from tests import photos, strokes
from tests.conftest import DATA, REPO, timed_on_one_core

FAST_N, SLOW_N, BLANKS = 300, 1200, 40  # digit photos in the default run / in `-m slow`; blank photos


def run(*args, cwd=REPO, timeout=300):
    proc = subprocess.run([sys.executable, *map(str, args)], cwd=cwd, capture_output=True, text=True, timeout=timeout)
    assert "Traceback" not in proc.stdout + proc.stderr, proc.stderr
    return proc


@pytest.fixture(scope="module")
def photo_files(tmp_path_factory):
    """FAST_N digit photos and BLANKS blank photos (seed 0) as JPEG files -> (photos, paths)."""
    ph = photos.photo_set(FAST_N, BLANKS, seed=0)
    return ph, photos.write(ph, tmp_path_factory.mktemp("photos"))


# Measured with the tests' 3-epoch model (99.38% on MNIST, trained with not-digits) on the 300 photos of
# seed 0: 97.3% overall, its weakest family 88.9% (red ink, 24 of 27). The default model reads the 1,200 of
# seed 0 at 97.1%, its weakest family 95.1% (docs/edge.md#photos).
def check_table(ph, predicted, overall=0.97, family=0.885):
    rows = photos.table(ph, predicted)
    report = "\n".join(f"{name:40s} {n:5d} {ok:5d} {ok / max(n, 1):.3f}" for name, n, ok in rows)
    assert rows[0][1] == sum(label is not None for _, label, _ in ph)
    assert rows[0][2] / rows[0][1] >= overall, report
    for name, n, ok in rows[1:]:
        assert n >= 20 and ok / n >= family, report  # every family is represented, and read
    return rows


# ------------------------------------------------------------------ the generator


def test_generator_is_seeded_covers_every_family_and_uses_test_digits(photo_files):
    a = photos.photo_set(6, 2, seed=3)
    assert [x[0] for x in a] == [x[0] for x in photos.photo_set(6, 2, seed=3)]  # same seed, same bytes
    assert [x[0] for x in photos.photo_set(2, 0, seed=4)] != [x[0] for x in a[:2]]
    ph, _ = photo_files
    _, labels = load_mnist(DATA, train=False)
    assert [lab for _, lab, _ in ph[:FAST_N]] == labels[:FAST_N].tolist()  # the first test digits, in order
    assert [lab for _, lab, _ in ph[FAST_N:]] == [None] * BLANKS
    for blob, label, attrs in ph:
        img = Image.open(io.BytesIO(blob))  # reads the header only
        lo, hi = (480, 800) if attrs["resolution"] == photos.LOW_RES else (1000, 4000)
        assert img.format == "JPEG" and img.mode == "RGB" and img.size == attrs["size"] and lo <= max(img.size) <= hi
        assert 50 <= attrs["quality"] <= 95 and abs(attrs["angle"]) <= 10
        if label is None:
            continue
        (w, h), (x0, y0, x1, y1) = img.size, attrs["digit_box"]
        ext = np.array([x1 - x0, y1 - y0])
        if attrs["pen"] == photos.THIN:  # a ballpoint's 1-4 px, in a phone's photo; the digit at most RATIO of them tall
            assert attrs["resolution"] == photos.PHONE_RES and attrs["ink"] in ("black", "blue")
            assert 1 <= attrs["pen_px"] <= 4 and ext.max() <= 1.1 * photos.RATIO * attrs["pen_px"], attrs
        if attrs["framing"] == photos.CLOSE:  # its longer side fills 60-95% of the frame, all inside it
            assert 0.58 <= max(ext / [w, h]) <= 0.97 and min(x0, y0, w - x1, h - y1) >= -2, attrs
        if attrs["framing"] == photos.EDGE:  # at most 1.5% of its extent short of the edge, or up to 6% cut off
            gap = {"left": x0, "right": w - x1, "top": y0, "bottom": h - y1}[attrs["edge"]]
            along = ext[0] if attrs["edge"] in ("left", "right") else ext[1]
            assert -0.07 * along - 2 <= gap <= 0.025 * along + 2, attrs
    count = Counter((k, v) for _, lab, attrs in ph[:FAST_N] for k, v in attrs.items() if k in photos.FAMILIES)
    assert set(count) == {(k, v) for k, vs in photos.FAMILIES.items() for v in vs}
    assert min(count.values()) >= 20, count  # every family is well represented (check_table asks as much)
    blanks = [attrs for _, lab, attrs in ph[FAST_N:]]
    assert {a["framing"] for a in blanks} >= {"desk only"}  # blank: desk alone, and paper
    assert {a["resolution"] for a in blanks} == set(photos.FAMILIES["resolution"])  # ... at both sizes


def test_thin_pen_is_1_to_4_px_wide_at_phone_resolution():
    """A thin pen's stroke, measured on the JPEG: dark area / its skeleton's length is the pen's width
    (about), and the digit is far taller than the stroke is wide (MNIST's ink: some 8 stroke widths)."""
    images, _ = load_mnist(DATA, train=False)
    rng = np.random.default_rng(0)
    clean = {"pen": photos.THIN, "paper": "plain", "framing": photos.FILLS, "light": "gradient", "marks": "digit only",
             "white balance": "neutral", "noise": "low"}
    for i in range(4):
        blob, a = photos.render(images[i].numpy(), rng, clean)
        x0, y0, x1, y1 = a["digit_box"]
        g = np.asarray(Image.open(io.BytesIO(blob)).convert("L"), np.float32)[max(0, y0 - 4):y1 + 4, max(0, x0 - 4):x1 + 4]
        paper, ink = np.percentile(g, 90), g.min()
        dark = g < (paper + ink) / 2
        width = dark.sum() / strokes.thin(dark).sum()
        assert 0.5 * a["pen_px"] <= width <= 1.5 * a["pen_px"] + 1, (a["pen_px"], width)
        assert max(x1 - x0, y1 - y0) >= 25 * a["pen_px"], a


def test_strokes_thin_a_bar_to_a_line_and_draw_it_at_its_width():
    bar = np.zeros((40, 60), bool)
    bar[15:26, 5:55] = True  # 11 px thick
    skel = strokes.thin(bar)
    assert 30 <= skel.sum() <= 50 and (skel.sum(axis=0)[12:45] == 1).all()  # 1 px across, its ends eroded
    nodes, edges = strokes.skeleton_graph(skel)
    assert len(edges) == len(nodes) - 1  # a chain: no loops at the staircase's corners
    for width in (1.0, 2.5, 4.0):
        cover = strokes.draw_segments((40, 200), np.array([[10.0, 20.3]]), np.array([[190.0, 20.3]]), width)
        assert cover.max() <= 1 and np.allclose(cover[:, 50:150].sum(axis=0), width, atol=0.05)
    assert strokes.dilate(np.pad(np.ones((1, 1)), 5), 3.0).sum() == 29  # a disc of radius 3: 29 px


# ------------------------------------------------------------------ accuracy


def test_photos_are_read_per_family(good_model, photo_files):
    ph, paths = photo_files
    predicted = photos.classify(good_model, paths[:FAST_N])
    check_table(ph[:FAST_N], predicted)


@pytest.mark.slow
def test_photos_are_read_per_family_1200(good_model, tmp_path):
    ph = photos.photo_set(SLOW_N, 0, seed=0)
    # Measured with the tests' model: 96.08% of the 1,200, its weakest family 94.1% (a digit at the edge).
    rows = check_table(ph, photos.classify(good_model, photos.write(ph, tmp_path)), overall=0.96, family=0.94)
    assert rows[0][1] == SLOW_N


def test_clean_renders_stay_at_99(good_model, tmp_path):
    """Dark digits on white, each a random 40-199 px square, saved as RGB PNG: as before the photo steps."""
    images, labels = load_mnist(DATA, train=False)
    rng = np.random.default_rng(0)
    n, paths = 600, []
    for i in range(n):
        size = int(rng.integers(40, 200))
        paths.append(tmp_path / f"{i}.png")
        Image.fromarray(255 - images[i].numpy()).resize((size, size), Image.BICUBIC).convert("RGB").save(paths[-1])
    digits = [p.digit for p in DigitClassifier(good_model).predict(paths)]
    assert np.mean(np.array(digits) == labels[:n].numpy()) >= 0.99


def test_blank_photos_answer_no_digit_found(good_model, photo_files):
    ph, paths = photo_files
    blanks = [p for p, (_, label, _) in zip(paths, ph) if label is None]
    assert len(blanks) == BLANKS
    proc = run("-m", "export.predict", "--model", good_model, "--threads", "1", *blanks)
    assert proc.returncode == 1 and proc.stdout == ""
    lines = proc.stderr.splitlines()
    assert len(lines) == BLANKS and all(": no digit found" in line for line in lines), proc.stderr


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5, 6, 7, 8])
def test_blank_photos_of_other_seeds_answer_no_digit_found(tmp_path, seed):
    """300 more blank photos per seed (the fast tests use seed 0): none gets a digit."""
    said = [path.name for path in photos.write(photos.photo_set(0, 300, seed=seed), tmp_path)
            if not _is_blank(path)]
    assert said == []


REGRESSIONS = sorted((REPO / "tests" / "data" / "blank-photos").glob("*.jpg"))


@pytest.mark.parametrize("path", REGRESSIONS, ids=lambda p: p.stem)
def test_blank_photos_that_once_got_a_digit(path):
    """Blank photos from tests/photos.py (seeds 0, 3, 4 and 8 of 300 blanks) that earlier versions, or
    rules tried and not kept, read as a digit: desk grain just off a sheet's edge (darkness 0.31 against
    the sheet's level), a sliver of desk two pixels deep in a corner of the frame, and grid paper whose
    squares read as 0.3 dark because JPEG ringing along the sheet's edge set the paper level; a sheet cut
    in two by a deep shadow, whose lit part the light-ink reading (tried because the polarity was unsure)
    took for a bold light digit; desk along a sheet's top edge in the middle of the frame (a step to 0.3
    beside it: no shadow); grid lines in a shadow along the frame's edge (0.2 darker than their ground: no
    cut digit)."""
    assert _is_blank(path)


SHADOWED = sorted((REPO / "tests" / "data" / "digit-photos").glob("*.jpg"))


@pytest.mark.parametrize("path", SHADOWED, ids=lambda p: p.stem)
def test_digits_beside_a_shadow_edge_are_found(path, good_model):
    """Digit photos (seed 0) in which an earlier step 4 found no digit. The paper level steps at a shadow's
    edge as it does at a sheet's, and the ink beside it was dropped as desk grain (ink lies on paper, its
    ground near 0; grain on desk). A marker close-up: the closing left its strokes' core at the ink's own
    level, a basin beside which the stroke looked like a sheet's edge; now the paper encloses the basin, so
    it is filled. A digit cut by the frame touches it as a strip of desk does, but darker and shorter
    along it. The file name starts with the digit."""
    x = preprocess(path)
    assert x.max() == 1 and 0.05 < x.mean() < 0.4  # a digit-like canvas, not a blank or a filled square
    assert DigitClassifier(good_model).predict([path])[0].digit == int(path.name[0])


def _is_blank(path) -> bool:
    try:
        preprocess(path)
    except ImageError as e:
        return "no digit found" in str(e)
    return False


def test_blank_photos_are_blank_for_the_api(photo_files):
    ph, paths = photo_files
    for path, (_, label, attrs) in zip(paths, ph):
        if label is None:
            with pytest.raises(ImageError, match="no digit found"):
                preprocess(path)


# ------------------------------------------------------------------ --explain


def test_explain_writes_what_the_model_saw(good_model, photo_files, tmp_path):
    ph, paths = photo_files
    chosen = [paths[0], paths[1], paths[FAST_N]]  # two digits and a blank photo
    (tmp_path / "in").mkdir()
    for p in chosen:
        shutil.copy(p, tmp_path / "in")
    out = tmp_path / "explain"
    proc = run("-m", "export.predict", "--model", good_model, "--json", "--explain", out, tmp_path / "in")
    assert proc.returncode == 1  # the blank one
    doc = {os.path.basename(o["path"]): o for o in json.loads(proc.stdout)}
    assert sorted(f.name for f in out.iterdir()) == sorted(f"{p.name}.png" for p in chosen)
    for p in chosen[:2]:
        panel = np.asarray(Image.open(out / f"{p.name}.png").convert("L")).astype(np.float32) / 255
        # The right-hand tile is the 28x28 input itself, each pixel a (TILE/28)-px square.
        seen = panel[:TILE, TILE + 12:2 * TILE + 12][TILE // 56::TILE // 28, TILE // 56::TILE // 28]
        x = preprocess(p)
        assert seen.shape == (28, 28) and np.abs(seen - x).max() <= 1 / 255 + 1e-6
        assert doc[p.name]["digit"] == DigitClassifier(good_model).predict_arrays(x[None])[0].digit
    blank = np.asarray(Image.open(out / f"{chosen[2].name}.png").convert("L"))
    assert blank[:TILE, TILE + 12:].min() == 255  # no 28x28 was made: that tile stays empty
    bad = run("-m", "export.predict", "--model", good_model, "--explain", tmp_path / "in" / chosen[0].name / "x", chosen[0])
    assert bad.returncode == 2 and bad.stderr.startswith("error: cannot create --explain folder")


# ------------------------------------------------------------------ speed and metadata


def test_twelve_megapixel_jpeg_in_300_ms_on_one_core(good_model, tmp_path):
    images, labels = load_mnist(DATA, train=False)
    kind = {"framing": "sheet on a desk", "paper": "grid", "pen": photos.MNIST_INK, "resolution": photos.LOW_RES}
    blob, _ = photos.render(images[7].numpy(), np.random.default_rng(1), kind)
    photo = tmp_path / "12mp.jpg"
    Image.open(io.BytesIO(blob)).convert("RGB").resize((4000, 3000), Image.BICUBIC).save(photo, quality=92)
    digit, seconds = timed_on_one_core(good_model, photo, "clf.predict([path])[0].digit")
    assert int(digit) == int(labels[7]) and seconds <= 0.3, (digit, seconds)


def test_every_preprocessing_number_travels_in_the_model(good_model, tmp_path):
    import onnx

    props = {p.key: p.value for p in onnx.load(str(good_model)).metadata_props}
    assert json.loads(props["preprocessing"]) == json.loads(json.dumps(PREPROCESSING))
    assert DigitClassifier(good_model).params == PREPROCESSING
    # The predictor takes the numbers from the model: a model that demands ink darker than black finds none.
    proto = onnx.load(str(good_model))
    for p in proto.metadata_props:
        if p.key == "preprocessing":
            p.value = json.dumps({**PREPROCESSING, "min_ink": 2.0, "fit": "not a number"})
    onnx.save(proto, tmp_path / "strict.onnx")
    strict = DigitClassifier(tmp_path / "strict.onnx")
    assert strict.params["min_ink"] == 2.0 and strict.params["fit"] == 20  # wrong kinds keep the default
    digit = Image.fromarray(255 - load_mnist(DATA, train=False)[0][0].numpy()).resize((112, 112))
    assert DigitClassifier(good_model).predict([digit])[0].digit == 7
    with pytest.raises(ImageError, match="no digit found"):
        strict.predict([digit])

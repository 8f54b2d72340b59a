"""Family ``boxes``: the stored centre matches the drawn pixels, the CoordConv splits and bad input."""

import json

import h5py
import numpy as np
import pytest
from click.testing import CliRunner

from cnnbench.cli import main
from cnnbench.data import noise as gaussian
from cnnbench.data.families import get_family
from cnnbench.data.generate import build_spec, generate_arrays, write_dataset
from cnnbench.data.presets import get_preset

FAMILY = get_family("boxes")
SIZES = {"n_train": 300, "n_val": 20, "n_test": 200}


def arrays(which="train", **params):
    return generate_arrays(build_spec("boxes", {"seed": 5, **SIZES, **params}), which)


def weighted_centroid(images, background):
    """Centroid (n, 2) of |image - background| summed over channels, in (x, y) pixel coordinates."""
    w = np.abs(images.astype(np.float64) - background[:, None, None, :].astype(np.float64)).sum(axis=3)
    rows, cols = np.indices(w.shape[1:])
    total = w.sum(axis=(1, 2))
    return np.stack([(w * cols).sum(axis=(1, 2)) / total, (w * rows).sum(axis=(1, 2)) / total], axis=1)


# The pixel-weighted centroid of an anti-aliased square is its centre exactly when the side is
# an integer; for other sides it is off by at most 0.125 / side px (the two partly covered edge
# pixels put their area at the pixel centre, not at the centre of the covered part).
@pytest.mark.parametrize("params, tolerance", [
    ({"size": 32, "channels": 1, "box_size": 1}, 0.01),  # one pixel's area at sub-pixel places
    ({"size": 32, "channels": 1, "box_size": 8}, 0.01),
    ({"size": 32, "channels": 1, "box_size": (3.0, 9.0)}, 0.05),  # sub-pixel centres and sides
    ({"size": 24, "box_size": (3.0, 6.0), "color": True, "value": (100, 255), "background": (0, 90)}, 0.05),
    ({"size": 20, "box_size": (3.0, 7.0), "value": (0, 40), "background": (200, 255)}, 0.05),  # dark on light
    ({"size": 20, "box_size": (1.0, 7.0), "subpixel": False}, 1e-6),
])
def test_stored_centre_is_the_centroid_of_the_drawn_square(params, tolerance):
    a = arrays(**params)
    centroid = weighted_centroid(a["images"], a["background"])
    # Sub-pixel positions really occur, and the pixels show them.
    if params.get("subpixel", True):
        assert np.abs(a["targets"] - np.rint(a["targets"])).max() > 0.4
    error = np.abs(centroid - a["targets"]).max(axis=1)
    assert error.max() < tolerance
    assert (error <= 0.125 / a["box_size"] + 0.01).all()
    boxes, side = a["boxes"], a["box_size"]
    np.testing.assert_allclose((boxes[:, :2] + boxes[:, 2:]) / 2, a["targets"], atol=1e-4)
    np.testing.assert_allclose(boxes[:, 2] - boxes[:, 0], side, atol=1e-4)
    np.testing.assert_allclose(boxes[:, 3] - boxes[:, 1], side, atol=1e-4)
    # Entirely inside the image: edges within [-0.5, size - 0.5].
    assert boxes.min() >= -0.5 - 1e-4 and boxes.max() <= params["size"] - 0.5 + 1e-4


def test_square_at_a_known_place_lights_exactly_its_pixels():
    # Grid layout with 3x3 crisp squares: the centre is an integer pixel (x=col, y=row) and
    # the lit pixels are cols x-1..x+1, rows y-1..y+1, value 255 on 0; nothing else is lit.
    a = arrays(size=10, channels=1, box_size=3, subpixel=False, positions="grid")
    x, y = a["targets"].astype(int).T
    expected = np.zeros((len(x), 10, 10), dtype=np.uint8)
    rows, cols = np.indices((10, 10))
    inside = (np.abs(cols[None] - x[:, None, None]) <= 1) & (np.abs(rows[None] - y[:, None, None]) <= 1)
    expected[inside] = 255
    np.testing.assert_array_equal(a["images"][..., 0], expected)
    np.testing.assert_array_equal(a["boxes"], np.stack([x - 1.5, y - 1.5, x + 1.5, y + 1.5], axis=1))


def test_half_pixel_shift_shows_as_half_covered_edge_pixels():
    # A 2-px square on the integer-centre grid has edges through pixel centres: edge pixels
    # are half covered (corners a quarter), so the position is visible below one pixel.
    a = arrays(size=8, channels=1, box_size=2, positions="grid")
    img, (x, y) = a["images"][0, ..., 0], a["targets"][0].astype(int)
    assert img[y, x] == 255
    assert img[y, x - 1] == img[y, x + 1] == img[y - 1, x] == img[y + 1, x] == 128
    assert img[y - 1, x - 1] == 64
    assert img.astype(int).sum() == 255 + 4 * 128 + 4 * 64  # 127.5 and 63.75, rounded


@pytest.mark.parametrize("subpixel", [True, False])
def test_quadrant_split_holds_out_one_quadrant(subpixel):
    params = {"size": 16, "box_size": (2.0, 5.0), "split": "quadrant", "subpixel": subpixel}
    t = (16 - 1) / 2
    test = arrays("test", **params)["targets"]
    assert ((test[:, 0] > t) & (test[:, 1] > t)).all()
    for split in ("train", "val"):
        c = arrays(split, **params)["targets"]
        assert not ((c[:, 0] > t) & (c[:, 1] > t)).any()
    # Train covers all three other quadrants.
    c = arrays("train", **params)["targets"]
    low_x, low_y = c[:, 0] <= t, c[:, 1] <= t
    assert (low_x & low_y).any() and (low_x & ~low_y).any() and (~low_x & low_y).any()


def test_grid_partition_does_not_depend_on_the_seed():
    params = {"size": 12, "positions": "grid", "box_size": 3}
    a = generate_arrays(build_spec("boxes", {"seed": 1, **params}), "test")["targets"]
    b = generate_arrays(build_spec("boxes", {"seed": 2, **params}), "test")["targets"]
    assert not np.array_equal(a, b)  # the order is shuffled per seed...
    assert set(map(tuple, a)) == set(map(tuple, b))  # ...the set of positions is not


def test_clutter_adds_other_shapes_and_leaves_the_target_alone():
    params = {"size": 32, "box_size": (4.0, 8.0), "color": True}
    plain = arrays(**params)
    cluttered = arrays(**params, clutter=3, clutter_shape="square", clutter_value=(60, 120))
    for k in ("targets", "boxes", "color", "background"):
        np.testing.assert_array_equal(plain[k], cluttered[k])
    assert cluttered["clutter_boxes"].shape == (SIZES["n_train"], 3, 4)
    assert cluttered["clutter_color"].shape == (SIZES["n_train"], 3, 3)
    assert not np.array_equal(plain["images"], cluttered["images"])
    # The target is drawn on top: wherever the two images differ, it is clutter, not the square.
    changed = (plain["images"] != cluttered["images"]).any(axis=3)
    rows, cols = np.indices((32, 32))
    b = cluttered["boxes"][:, :, None, None]

    def within(pad):  # pixels whose centre lies within ``pad`` of the square's edges
        return ((cols >= b[:, 0] - pad) & (cols <= b[:, 2] + pad)
                & (rows >= b[:, 1] - pad) & (rows <= b[:, 3] + pad))
    assert not (changed & within(-0.5)).any()  # fully covered pixels are untouched
    # Away from the square's anti-aliased rim, a changed pixel is clutter: its colour is in the
    # clutter range, never the target's 255.
    assert (changed & ~within(0.5)).sum() > 1000
    assert cluttered["images"][changed & ~within(0.5)].max() <= 120


def test_occlusion_hides_part_of_the_square_but_not_the_target():
    params = {"size": 24, "channels": 1, "box_size": (6.0, 10.0)}
    plain, hidden = arrays(**params), arrays(**params, occlusion=(0.3, 0.5))
    np.testing.assert_array_equal(plain["targets"], hidden["targets"])
    lit_plain = (plain["images"] > 0).sum(axis=(1, 2, 3))
    lit_hidden = (hidden["images"] > 0).sum(axis=(1, 2, 3))
    assert (lit_hidden < lit_plain).all()
    bar, box = hidden["occluder"], hidden["boxes"]
    assert (bar[:, :2] >= box[:, :2] - 1e-4).all() and (bar[:, 2:] <= box[:, 2:] + 1e-4).all()


def test_the_bar_covers_whatever_lies_under_it():
    # Every pixel that lies inside the bar across its width, and that the bar reaches along the
    # square, shows the background: even the square's anti-aliased edge pixels (part square,
    # part background before the bar was drawn) are pure background under it.
    a = arrays(size=32, box_size=(4.0, 16.0), color=True, background=(0, 64), value=(128, 255),
               occlusion=(0.3, 0.6))
    bar, box = a["occluder"].astype(np.float64), a["boxes"].astype(np.float64)
    centres = np.arange(32)[None, :]
    under, edge = [], []
    for axis in (0, 1):  # x (columns), then y (rows)
        lo, hi = bar[:, axis, None], bar[:, axis + 2, None]
        within = (centres - 0.5 >= lo) & (centres + 0.5 <= hi)
        touches = (centres + 0.5 > lo) & (centres - 0.5 < hi)
        spans_square = (np.abs(lo - box[:, axis, None]) < 1e-4) & (np.abs(hi - box[:, axis + 2, None]) < 1e-4)
        under.append(within | (spans_square & touches))
        edge.append(touches & ~within)  # partly outside the bar, hence partly outside the square
    hidden = under[1][:, :, None] & under[0][:, None, :]  # (n, rows, columns)
    hidden_edge = hidden & (edge[1][:, :, None] | edge[0][:, None, :])
    assert hidden.sum() > 1000 and hidden_edge.sum() > 100
    background = np.broadcast_to(a["background"][:, None, None, :], a["images"].shape)
    np.testing.assert_array_equal(a["images"][hidden], background[hidden])


def test_optimum():
    def optimum(**given):
        spec = build_spec("boxes", given)
        return FAMILY.optimum(spec.params)
    assert optimum(subpixel=False).as_dict() == {**optimum(subpixel=False).as_dict(), "value": 0.0, "exact": True}
    assert optimum(positions="grid", margin=4, box_size=1).exact
    sub = optimum()
    assert sub.value == 0.0 and not sub.exact and "0.00196" in sub.why
    assert optimum(box_size=(1.0, 3.0)) is None  # under 2 px, intensity and edges can be confounded
    assert optimum(noise=1.0) is None and optimum(clutter=1) is None and optimum(occlusion=(0, 0.1)) is None
    for name in ("boxes-64-medium", "boxes-64-hard"):
        assert FAMILY.optimum(get_preset(name).spec().params) is None


def test_presets_are_valid_and_ranked():
    rungs = {name: get_preset(name).rung for name in ("boxes-64", "boxes-64-medium", "boxes-64-hard")}
    assert rungs == {"boxes-64": "easy", "boxes-64-medium": "medium", "boxes-64-hard": "hard"}
    assert get_preset("boxes-64").quick
    spec = get_preset("boxes-64").spec()
    assert spec.sizes == {"train": 10000, "val": 2000, "test": 2000}
    assert spec.params["size"] == 64 and spec.params["channels"] == 3
    for name in ("boxes-64-quadrant", "notsoclevr-squares-uniform", "notsoclevr-squares-quadrant"):
        get_preset(name).spec()


@pytest.mark.parametrize("args, match", [
    (["--size", 16, "--box-size", 20], "box_size: 20 is larger than the image size 16"),
    (["--size", 8, "--box-size", 8, "--split", "quadrant"], "split: quadrant needs centres on both sides"),
    (["--size", 12, "--box-size", 3, "--margin", 5, "--positions", "grid", "--split", "quadrant"],
     "positions:"),
    (["--size", 16, "--box-size", 16, "--positions", "grid"],
     "positions: grid centres are integers, and a 16-px square fits in 16 px only with its centre in 7.5..7.5"),
    (["--size", 16, "--box-size", 4, "--margin", 8, "--positions", "grid"], "margin: 8 leaves no centre"),
    (["--size", 0], "size: 0 is below the minimum"),
    (["--box-size", 0], "box_size: 0.0 must be greater than 0"),
    (["--box-size", "-2:4"], "box_size: -2.0 must be greater than 0"),
    (["--n-train", 0], "n_train: 0 is below the minimum"),
    (["--noise", -1], "noise: -1.0 is below the minimum"),
    (["--channels", 2], "channels: 2 must be 1 or 3"),
    (["--value", 100, "--background", "50:150"], "value: 100:100 overlaps background"),
    (["--split", "corner"], "split: 'corner' is not one of"),
])
def test_bad_input_is_one_line_and_writes_nothing(tmp_path, args, match):
    out = tmp_path / "bad.h5"
    result = CliRunner().invoke(main, ["generate", "boxes", "--out", str(out), *map(str, args)])
    assert result.exit_code != 0
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and match in lines[0], result.output
    assert not out.exists() and not list(tmp_path.iterdir())


def test_cli_generates_a_file(tmp_path):
    out = tmp_path / "ok.h5"
    result = CliRunner().invoke(main, ["generate", "boxes", "--out", str(out), "--size", 16,
                                       "--box-size", "2:4", "--n-train", 8, "--n-val", 4, "--n-test", 4,
                                       "--split", "quadrant", "-q"])
    assert result.exit_code == 0, result.output
    assert out.exists()


HARD_SMALL = {"size": 32, "box_size": (4.0, 10.0), "color": True, "value": (128, 255), "background": (0, 64),
              "clutter": 2, "clutter_size": (4.0, 10.0), "clutter_value": (72, 120), "occlusion": (0.0, 0.3)}


def oracle_rmse(**params):
    spec = build_spec("boxes", {"seed": 5, **SIZES, **params})
    return float(np.sqrt(FAMILY.oracle(spec.params, generate_arrays(spec, "test")).mean()))


def test_oracle_recovers_the_centre_without_noise_and_degrades_with_it():
    # Noise-free, with clutter and occlusion: only uint8 rounding is left.
    assert oracle_rmse(**HARD_SMALL) < 0.005
    assert oracle_rmse(size=24, channels=1, box_size=(2.0, 7.0), subpixel=False, noise=0.0) == 0.0
    noisy = [oracle_rmse(**HARD_SMALL, noise=s) for s in (10.0, 40.0)]
    assert 0.001 < noisy[0] < noisy[1] < 0.2  # about noise / (contrast * sqrt(edge pixels))


def test_small_noise_free_squares_record_the_oracle_estimate(tmp_path):
    # Under 2 px no floor follows from the rendering (optimum None): the oracle estimates it.
    out = tmp_path / "tiny.h5"
    write_dataset(build_spec("boxes", {"size": 12, "box_size": (1.0, 3.0), "n_train": 4, "n_val": 4,
                                       "n_test": 50}), out)
    optimum = json.loads(h5py.File(out, "r").attrs["optimum"])
    assert optimum["exact"] is False and 0 <= optimum["value"] < 0.1


def test_noisy_file_records_the_oracle_as_an_estimated_optimum(tmp_path):
    out = tmp_path / "hard.h5"
    spec = build_spec("boxes", {"seed": 1, "n_train": 4, "n_val": 4, "n_test": 100, **HARD_SMALL, "noise": 25.0})
    write_dataset(spec, out)
    optimum = json.loads(h5py.File(out, "r").attrs["optimum"])
    assert optimum["metric"] == "rmse" and optimum["exact"] is False
    assert 0.005 < optimum["value"] < 0.2


@pytest.mark.parametrize("given", [
    {"size": 40, "box_size": (1.0, 9.0)},
    {"size": 40, "box_size": (3.0, 12.0), "color": True, "background": (0, 60), "value": (100, 255),
     "clutter": 3, "clutter_size": (2.0, 10.0), "clutter_value": (61, 99), "occlusion": (0.0, 0.6)},
    {"size": 30, "channels": 1, "box_size": (2.0, 8.0), "clutter": 4, "clutter_shape": "square",
     "clutter_value": (30, 90), "noise": 6.0},
    {"size": 24, "box_size": (2.0, 9.0), "subpixel": False, "clutter": 2, "occlusion": (0.2, 0.5)},
    {"size": 16, "box_size": (10.0, 16.0), "clutter": 1},  # windows as large as the image
])
def test_windowed_rendering_is_the_whole_image_rendering(given):
    """Only windows around the shapes are painted: every pixel a shape reaches must be in one,
    with the same bytes as painting every shape over the whole image (edges of the image
    included: shapes are drawn up against them)."""
    from cnnbench.data.families import boxes as B

    p = build_spec("boxes", {"n_train": 400, **given}).params
    rng = np.random.default_rng(1)
    out = B._draw(p, "train", 0, 400, rng, None)
    # The factors as _draw drew them, in float64, from the same generator.
    rng = np.random.default_rng(1)
    n, size = 400, p["size"]
    side = B._sides(p, rng, p["box_size"], n)
    centres = B._random_centres(p, "train", side, rng)
    f = {"boxes": np.concatenate([centres - side[:, None] / 2, centres + side[:, None] / 2], axis=1),
         "color": B._colours(p, rng, p["value"], n), "background": B._colours(p, rng, p["background"], n)}
    assert np.array_equal(f["boxes"].astype(np.float32), out["boxes"])
    if p["clutter"]:
        k = p["clutter"]
        c_size = B._sides(p, rng, p["clutter_size"], n * k).reshape(n, k)
        f["clutter_centre"] = c_size[..., None] / 2 - 0.5 + rng.random((n, k, 2)) * (size - c_size[..., None])
        f["clutter_size"], f["clutter_color"] = c_size, B._colours(p, rng, p["clutter_value"], n, k)
    if p["occlusion"][1] > 0:
        width = rng.uniform(*p["occlusion"], n) * side
        offset = rng.random(n) * (side - width)
        vertical = rng.random(n) < 0.5
        b = f["boxes"]
        along0 = np.where(vertical, b[:, 0], b[:, 1]) + offset
        f["bar"] = np.where(vertical[:, None], np.stack([along0, b[:, 1], along0 + width, b[:, 3]], axis=1),
                            np.stack([b[:, 0], along0, b[:, 2], along0 + width], axis=1))
    whole = B._scene(p, f, size)  # every shape over the whole image
    if p["noise"] > 0:
        whole = whole + p["noise"] * gaussian.standard_normal(rng, (n, size, size, p["channels"]))
    expected = np.clip(np.rint(whole), 0, 255).astype(np.uint8)
    expected = np.broadcast_to(expected, out["images"].shape)
    assert np.array_equal(out["images"], expected)
    # Not a vacuous check: some shapes reach the top row, up against the window clamp.
    assert (out["images"][:, 0] != f["background"][:, None, :]).any()

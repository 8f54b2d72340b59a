"""Family ``patches``: invariances, the colour model, the lighting reference, each knob, bad input."""

import numpy as np
import pytest
from click.testing import CliRunner

from cnnbench.cli import main
from cnnbench.data.families import patches as P
from cnnbench.data.generate import build_spec, generate_arrays

# A clean camera: no gamma, shift, noise or translation, so pixels compare exactly.
CLEAN = {"render_size": 48, "output_size": 16, "translate": 0.0, "brightness": 0.0, "gamma": 1.0,
         "noise": 0.0}


def params(**given):
    return build_spec("patches", {**CLEAN, **given}).params


def factors(p, n=1, seed=0, **fixed):
    """Scene and pose factors of n images, with some of them fixed."""
    rng = np.random.default_rng(seed)
    f = P.draw_scene(rng, n, p)
    f.update(P.draw_pose(rng, n, p))
    for name, value in fixed.items():
        f[name] = np.broadcast_to(np.asarray(value, dtype=f[name].dtype), f[name].shape).copy()
    return f


def render(p, f):
    return P.render_images(f, p).astype(int)


def small(**given):
    return build_spec("patches", {"n_train": 12, "n_val": 2, "n_test": 2, **P.FAMILY.small, **given})


@pytest.mark.parametrize("angle", [0.0, 17.0, 123.4])
def test_quarter_turn_and_flips_equal_rendering_with_that_pose(angle):
    p = params()
    base = render(p, factors(p, angle=angle, hflip=False, vflip=False))
    turned = render(p, factors(p, angle=angle + 90, hflip=False, vflip=False))
    assert np.abs(turned - np.rot90(base, 1, axes=(1, 2))).max() <= 1
    mirrored = render(p, factors(p, angle=-angle, hflip=True, vflip=False))
    assert np.abs(mirrored - base[:, :, ::-1]).max() <= 1
    upside = render(p, factors(p, angle=-angle, hflip=False, vflip=True))
    assert np.abs(upside - base[:, ::-1]).max() <= 1
    both = render(p, factors(p, angle=angle, hflip=True, vflip=True))
    assert np.abs(both - np.rot90(base, 2, axes=(1, 2))).max() <= 1


def test_the_asymmetric_features_make_a_mirror_image_differ_from_every_turn():
    p = params(texture=0.0, render_size=64, output_size=32)
    base = render(p, factors(p, angle=0.0, hflip=False, vflip=False))
    mirrored = render(p, factors(p, angle=0.0, hflip=True, vflip=False))
    for k in range(4):
        assert np.abs(mirrored - np.rot90(base, k, axes=(1, 2))).max() > 40
    plain = params(texture=0.0, render_size=64, output_size=32, asymmetric=False)
    a = render(plain, factors(plain, angle=0.0, hflip=False, vflip=False))
    b = render(plain, factors(plain, angle=0.0, hflip=True, vflip=False))
    yy, xx = np.mgrid[:32, :32] - 15.5
    well = np.hypot(xx, yy) < 0.25 * 32
    assert np.abs(a - b)[:, well].max() <= 1  # a plain well: nothing inside it shows the flip


def test_mean_well_colour_is_monotone_in_concentration():
    p = params(texture=0.0, asymmetric=False, rotate=False)
    c = np.linspace(80, 350, 10)
    images = render(p, factors(p, n=10, concentration=c, dye2=0.0))
    yy, xx = np.mgrid[:16, :16] - 7.5
    centre = np.hypot(xx, yy) < 3
    mean = images[:, centre].mean(axis=1)  # (10, 3)
    assert (np.diff(mean, axis=0) < 0).all(), mean
    # Non-linear (Beer-Lambert): equal steps in c give shrinking steps in the blue channel.
    blue = np.diff(mean[:, 2])
    assert abs(blue[-1]) < 0.6 * abs(blue[0])


def test_reference_spot_keeps_the_well_to_reference_ratio_under_any_illuminant():
    p = params(render_size=100, output_size=100, spot=True, bench_jitter=0.3, texture=0.0, asymmetric=False,
               rotate=False)
    f = factors(p, n=3, angle=0.0, hflip=False, vflip=False, offset=0.0, concentration=200.0)
    f["illuminant"] = np.array([[1.0, 1.0, 1.0], [0.5, 0.8, 0.3], [0.9, 0.4, 0.7]])
    scene = P.render_scene(f, p)  # (3, 3, 100, 100), linear light
    well, spot = scene[:, :, 49, 49], scene[:, :, 77, 22]
    assert np.allclose(spot[0], P.SPOT_REFLECT) and np.allclose(spot, P.SPOT_REFLECT * f["illuminant"])
    ratio = well / spot
    assert np.allclose(ratio, ratio[0], rtol=1e-5)
    assert np.abs(well - well[0]).max() > 0.1  # the well alone changes with the light


def test_second_dye_shifts_the_hue_towards_green():
    p = params(texture=0.0, asymmetric=False, rotate=False, dye2=300.0)
    f = factors(p, n=2, concentration=200.0, dye2=[0.0, 200.0])
    scene = P.render_scene(f, p)[:, :, 8, 8]  # the well's centre at 16 px
    change = scene[1] / scene[0]  # per channel: the dye absorbs red most, blue least
    assert change[0] < change[1] < change[2] < 1


def test_lighting_bench_jitter_and_label_noise_are_drawn_as_documented():
    rng = np.random.default_rng(0)
    assert (P.draw_scene(rng, 100, params())["illuminant"] == 1).all()
    f = P.draw_scene(rng, 4000, params(lighting=0.5, bench_jitter=0.2, label_noise=3.0))
    assert f["illuminant"].min() >= np.exp(-0.5) and f["illuminant"].max() <= 1
    assert f["illuminant"].std() > 0.05
    gain = f["bench"] / P.BENCH
    assert gain.min() >= np.exp(-0.2) - 1e-9 and gain.max() <= np.exp(0.2) + 1e-9
    assert np.std(f["targets"] - f["concentration"]) == pytest.approx(3.0, rel=0.05)
    assert f["concentration"].min() >= 80 and f["concentration"].max() <= 350


def test_glare_bubbles_and_grayscale_change_the_images():
    base = generate_arrays(small(glare=0.0, bubbles=0), "train")
    glare = generate_arrays(small(glare=1.0, bubbles=0), "train")
    assert (glare["glare"][:, 2] == 0.9).all() and (base["glare"][:, 2] == 0).all()
    assert np.array_equal(glare["concentration"], base["concentration"])
    assert glare["images"].astype(int).sum() > base["images"].astype(int).sum()
    bubbles = generate_arrays(small(glare=0.0, bubbles=5), "train")
    assert bubbles["n_bubbles"].max() <= 5 and bubbles["n_bubbles"].sum() > 0
    assert bubbles["bubble_xyr"].shape == (12, 5, 3)
    assert not np.array_equal(bubbles["images"], base["images"])
    gray = generate_arrays(small(channels="gray"), "train")
    assert gray["images"].shape == (12, 16, 16, 1)


def test_nuisance_arrays_and_targets():
    out = generate_arrays(small(label_noise=0.0), "train")
    assert out["targets"].shape == (12, 1) and out["targets"].dtype == np.float32
    assert np.array_equal(out["targets"][:, 0], out["concentration"])
    for name in ("angle", "brightness", "gamma", "noise"):
        assert out[name].shape == (12,) and len(np.unique(out[name])) > 1
    assert out["offset"].shape == (12, 2) and np.abs(out["offset"]).max() <= 0.05
    assert set(np.unique(out["hflip"])) <= {0, 1}


def test_augmented_copies_share_the_scene_and_the_label():
    plain = generate_arrays(small(noise=0.0), "train")
    copies = generate_arrays(small(noise=0.0, augment_copies=2), "train")
    # n_train originals, each followed by its 2 copies: train grows to 3 * n_train rows.
    assert np.array_equal(copies["copy"], np.tile([0, 1, 2], 12))
    assert np.array_equal(copies["copy_of"], np.repeat(np.arange(0, 36, 3), 3))
    for name in ("targets", "concentration", "dye2", "illuminant", "texture"):
        grouped = copies[name].reshape((12, 3) + copies[name].shape[1:])
        assert (grouped == grouped[:, :1]).all(), name
        assert np.array_equal(grouped[:, 0], plain[name]), name
    # The originals are the plain dataset's scenes, pixel for pixel; copies are new poses.
    assert np.array_equal(copies["images"][::3], plain["images"])
    assert not np.array_equal(copies["angle"][1::3], copies["angle"][::3])
    val = generate_arrays(small(augment_copies=2), "val")
    assert "copy" not in val and len(val["images"]) == 2


def test_optimum_is_the_label_noise_and_says_when_it_is_only_a_bound():
    opt = P.FAMILY.optimum(params(label_noise=2.5))
    assert (opt.metric, opt.value, opt.exact) == ("rmse", 2.5, False)
    assert P.identifiable(params(lighting=0.5, spot=True, bench_jitter=0.3))
    assert P.identifiable(params(lighting=0.5))
    hidden = params(lighting=0.5, bench_jitter=0.3)
    assert not P.identifiable(hidden) and "lower bound" in P.FAMILY.optimum(hidden).why


@pytest.mark.parametrize("args, message", [
    (["--concentration", "200:200"], "concentration"),
    (["--concentration", "350:80"], "concentration"),
    (["--render-size", "32", "--output-size", "48"], "output_size: 48 is larger than render_size 32"),
    (["--flip-prob", "1.5"], "flip_prob: 1.5"),
    (["--glare", "-0.1"], "glare: -0.1"),
    (["--noise", "-0.01:0.02"], "noise: -0.01"),
    (["--label-noise", "-1"], "label_noise: -1"),
    (["--augment-copies", "-1"], "augment_copies: -1"),
])
def test_bad_input_is_one_line_error_and_no_file(tmp_path, args, message):
    out = tmp_path / "p.h5"
    result = CliRunner().invoke(main, ["generate", "patches", "--out", str(out), *args])
    assert result.exit_code != 0
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error:") and message in lines[0], result.output
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_cli_writes_a_small_file(tmp_path):
    out = tmp_path / "p.h5"
    result = CliRunner().invoke(main, ["generate", "patches", "--out", str(out), "--n-train", "8",
                                       "--n-val", "2", "--n-test", "2", "--render-size", "32",
                                       "--output-size", "16", "-q"])
    assert result.exit_code == 0, result.output and out.exists()


def test_the_image_is_the_area_average_of_a_fine_rendering():
    """Rendered directly at 64 px, the scene matches a 256-px rendering averaged over 4x4
    blocks (what the family rendered before, at 250 px, and area-averaged): anti-aliased edges,
    pixel-filtered texture and glints, so mostly under one level of 255."""
    given = {**CLEAN, "translate": 0.05, "bubbles": 4, "glare": 1.0, "spot": True, "render_size": 256}
    fine, coarse = params(**{**given, "output_size": 256}), params(**{**given, "output_size": 64})
    f = factors(fine, n=6, seed=3)
    averaged = P.render_scene(f, fine).reshape(6, 3, 64, 4, 64, 4).mean(axis=(3, 5))
    error = np.abs(P.render_scene(f, coarse) - averaged) * 255
    assert error.mean() < 0.3 and np.percentile(error, 99) < 4, (error.mean(), np.percentile(error, 99))

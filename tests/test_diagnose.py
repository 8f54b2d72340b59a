"""cnnbench diagnose: the seed reproductions are caught, their fixes pass, bad input is one line.

Measured before asserting (docs/diagnose.md has the numbers): on ``lines-3x3`` the seed-000
reproduction fails input scale, output/loss and the overfit probe for every seed 0..9, and
the fix passes all three. On the small boxes file below (16x16, 200 train images, 20 probe
steps) the seed-001 reproduction fails the dead-ReLU and collapse checks for seeds 0-7 and 9
(seed 8 only warns), so the tests use seeds 0 and 1; its fix passes both for seeds 0..9.
"""

from __future__ import annotations

import json
import math

import h5py
import pytest
import torch
from click.testing import CliRunner
from cnnbench.baselines import get_baseline
from torch import nn

from cnnbench.bench.diagnose import FAIL, PASS, SKIP, DiagnoseError, diagnose, relu_activity, render_text, resolve_model
from cnnbench.cli import main
from cnnbench.data.generate import build_spec, write_dataset
from cnnbench.errors import CnnbenchError, ParamError, UnknownNameError

STEPS = 20  # training probe steps in these tests; the overfit probe runs up to 120


def boxes_file(tmp_path_factory, size: int, box_size: int):
    """A boxes file of 200 train images of side ``size``, written once per module."""
    path = tmp_path_factory.mktemp("dg") / f"boxes{size}.h5"
    write_dataset(build_spec("boxes", {"size": size, "box_size": box_size, "channels": 3, "n_train": 200,
                                       "n_val": 20, "n_test": 20}), path)
    return path


@pytest.fixture(scope="module")
def boxes16(tmp_path_factory):
    return boxes_file(tmp_path_factory, 16, 2)


@pytest.fixture(scope="module")
def boxes32(tmp_path_factory):
    # Seed 001's targets are unscaled pixel offsets: on 32x32 their std (about 8 px) is large
    # enough for Adam 0.01's first steps to kill the ReLUs; on 16x16 (std 4) it often is not.
    return boxes_file(tmp_path_factory, 32, 4)


def run_baseline(path, name, seed=0, **kwargs):
    return diagnose(path, get_baseline(name).make, name=name, seed=seed, steps=STEPS, **kwargs)


def status(d, check):
    return d.check(check).status


def cli(*args):
    return CliRunner().invoke(main, ["diagnose", *map(str, args)])


def assert_one_line_error(result, match):
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error:") and match in lines[0], result.output


# -- seed 000 -----------------------------------------------------------------------------------

@pytest.mark.parametrize("seed", [0, 1, 2])
def test_lines_cnn_reproduction_fails_input_scale_and_loss(lines3, seed):
    d = run_baseline(lines3, "lines-cnn-as-asked", seed)
    assert status(d, "input scale") == FAIL and d.check("input scale").values["max"] == 255
    out = d.check("output/loss")
    assert out.status == FAIL and out.values["probabilities"] and "softmax applied twice" in out.advice
    assert status(d, "overfit tiny subset") == FAIL


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_lines_cnn_fix_passes_and_overfits(lines3, seed):
    d = run_baseline(lines3, "lines-cnn-fixed", seed)
    for check in ("input scale", "output/loss", "overfit tiny subset", "collapse"):
        assert status(d, check) == PASS, render_text(d)
    assert d.check("overfit tiny subset").values["score"] == 1.0
    assert not d.check("output/loss").values["probabilities"]


# -- seed 001 -----------------------------------------------------------------------------------

@pytest.mark.parametrize("seed", [0, 1])
def test_boxes_cnn_reproduction_dies_and_predicts_the_mean(boxes32, seed):
    d = run_baseline(boxes32, "boxes-cnn-as-asked", seed)
    assert status(d, "dead ReLUs") == FAIL, render_text(d)
    assert status(d, "collapse") == FAIL and min(d.check("collapse").values["std_ratio"]) < 0.1
    assert status(d, "target scale") != PASS  # unscaled pixel offsets: RMS about 8 on 32x32


def test_boxes_cnn_fix_and_ridge_pass(boxes16):
    fix = run_baseline(boxes16, "boxes-cnn-fixed")
    for check in ("input scale", "target scale", "output/loss", "gradient flow", "weights update",
                  "dead ReLUs", "loss trend", "collapse"):
        assert status(fix, check) == PASS, render_text(fix)
    assert min(fix.check("collapse").values["std_ratio"]) > 0.5
    ridge = run_baseline(boxes16, "ridge")
    assert status(ridge, "collapse") == PASS and status(ridge, "overfit tiny subset") == PASS
    assert status(ridge, "gradient flow") == SKIP  # closed form: nothing to probe
    mean = run_baseline(boxes16, "mean")
    assert status(mean, "collapse") == FAIL  # the constant predictor is the mean, by definition


# -- determinism, JSON, user files --------------------------------------------------------------

def comparable(d):
    out = d.as_dict()
    out.pop("wall_time_s")
    for check in out["checks"]:
        if check["name"] == "overfit tiny subset":
            check["values"].pop("seconds", None)  # the overfit probe's wall and CPU time
            check["values"].pop("cpu_seconds", None)
    return out


def test_same_seed_same_checklist_and_global_rng_untouched(lines3):
    torch.manual_seed(123)
    state = torch.get_rng_state()
    a = run_baseline(lines3, "lines-cnn-as-asked", 3)
    assert torch.equal(torch.get_rng_state(), state)
    b = run_baseline(lines3, "lines-cnn-as-asked", 3)
    assert comparable(a) == comparable(b)
    c = run_baseline(lines3, "lines-cnn-as-asked", 4)
    assert comparable(a) != comparable(c)
    assert json.loads(a.to_json())["checks"][0]["name"] == "input scale"


USER_FILE = '''
import torch
from torch import nn

def make(info):
    h, w, c = info.image_shape
    return nn.Sequential(nn.Flatten(), nn.Linear(h * w * c, 32), nn.ReLU(),
                         nn.Linear(32, info.num_outputs))

class Shared(nn.Module):
    """One nn.ReLU module used twice, and functional relus in forward."""
    def __init__(self, info):
        super().__init__()
        self.a = nn.Linear(info.image_shape[0] * info.image_shape[1] * info.channels, 8)
        self.b = nn.Linear(8, 4)
        self.act = nn.ReLU()
        self.out = nn.Linear(4, info.num_outputs)
    def forward(self, x):
        x = self.act(self.a(x.flatten(1)))
        x = self.act(self.b(x))
        return self.out(torch.relu(x).relu())

def shared(info):
    return Shared(info)

def wrong_shape(info):
    return nn.Sequential(nn.Flatten(), nn.Linear(9, 3))

def frozen(info):
    m = nn.Sequential(nn.Flatten(), nn.Linear(9, info.num_outputs))
    for p in m.parameters():
        p.requires_grad_(False)
    return m

def raises(info):
    raise RuntimeError("no GPU here")

def forward_raises(info):
    class M(nn.Module):
        def forward(self, x):
            raise ValueError("bad reshape")
    return M()

not_callable = 3
'''


@pytest.fixture(scope="module")
def user_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("user") / "mynet.py"
    path.write_text(USER_FILE)
    return path


def test_user_factory_returning_a_bare_module(lines3, user_file):
    factory, name = resolve_model(model=f"{user_file}:make")
    d = diagnose(lines3, factory, name=name, steps=STEPS)
    assert [c.name for c in d.checks][:3] == ["input scale", "target scale", "output/loss"]
    assert status(d, "input scale") == PASS and status(d, "output/loss") == PASS  # default recipe
    assert status(d, "overfit tiny subset") == PASS
    assert d.params == 9 * 32 + 32 + 32 * 2 + 2


def test_cli_text_and_json(lines3, user_file, tmp_path):
    result = cli(lines3, "--model", f"{user_file}:shared", "--steps", 5, "--db", tmp_path / "none.sqlite")
    assert result.exit_code == 0, result.output
    assert "PASS  input scale" in result.output and "baseline context" in result.output
    result = cli(lines3, "-b", "lines-cnn-as-asked", "--steps", 5, "--json", "--db", tmp_path / "none.sqlite")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["model"] == "lines-cnn-as-asked" and data["counts"]["FAIL"] >= 2
    assert {c["name"]: c["status"] for c in data["checks"]}["output/loss"] == "FAIL"


def test_wrong_output_shape_and_frozen_model_are_checks_not_errors(lines3, user_file):
    d = diagnose(lines3, resolve_model(model=f"{user_file}:wrong_shape")[0], steps=STEPS)
    assert status(d, "output/loss") == FAIL and "(6, 3)" in d.check("output/loss").evidence
    assert status(d, "gradient flow") == SKIP and status(d, "overfit tiny subset") == SKIP
    d = diagnose(lines3, resolve_model(model=f"{user_file}:frozen")[0], steps=STEPS)
    assert status(d, "gradient flow") == FAIL and status(d, "overfit tiny subset") == SKIP


def test_relu_activity_sees_modules_reused_and_functional_relus():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(3, 4)
            self.act = nn.ReLU()
            with torch.no_grad():
                self.lin.bias.copy_(torch.tensor([-100.0, -100.0, 100.0, 100.0]))

        def forward(self, x):
            h = self.act(self.lin(x))
            return torch.relu(self.act(h - 200.0)) + nn.functional.relu(h)

    sites = relu_activity(Net(), torch.randn(16, 3))
    assert sites["act"] == {"units": 4, "dead": 0.5}
    assert sites["act (call 2)"]["dead"] == 1.0
    assert sites["Net.forward relu 1"]["dead"] == 1.0 and sites["Net.forward relu 2"]["dead"] == 0.5


def test_lines_cnn_net_uses_functional_relu_and_is_still_probed(lines3):
    d = run_baseline(lines3, "lines-cnn-fixed")
    assert "TwoFilterNet.forward relu 1" in d.check("dead ReLUs").evidence


def test_public_copy_is_enough_and_test_is_never_needed(lines3, tmp_path):
    from cnnbench.board.public import export_public

    public = tmp_path / "public.h5"
    export_public(lines3, public, allow_guessable_seed=True)
    d = run_baseline(public, "lines-cnn-fixed")
    assert status(d, "overfit tiny subset") == PASS


def test_baseline_context_from_the_leaderboard(boxes16, tmp_path):
    from cnnbench.bench.protocol import run
    from cnnbench.board.store import Leaderboard

    db = tmp_path / "board.sqlite"
    with Leaderboard(db) as board:
        for name in ("mean", "ridge", "boxes-cnn-fixed"):
            b = get_baseline(name)
            board.add(run(boxes16, b.make, name=name, source=b.source, epochs=1, device="cpu").record)
    d = run_baseline(boxes16, "boxes-cnn-fixed", db=db)
    ctx = d.check("baseline context")
    assert ctx.status == "INFO" and {"mean", "ridge"} <= set(ctx.values["reference"])
    assert ctx.values["best_baseline"]["name"] == "boxes-cnn-fixed"
    assert math.isfinite(ctx.values["best_baseline"]["score"]) and "rmse" in ctx.evidence
    assert status(run_baseline(boxes16, "ridge", db=tmp_path / "absent.sqlite"), "baseline context") == SKIP


# -- bad input ----------------------------------------------------------------------------------

def test_library_errors_are_cnnbench_errors(lines3, boxes16, user_file, tmp_path):
    with pytest.raises(UnknownNameError, match="unknown baseline"):
        resolve_model(baseline="nope")
    with pytest.raises(ParamError, match="does not apply"):
        from cnnbench.data.h5file import open_dataset
        resolve_model(baseline="boxes-cnn-as-asked", dataset=open_dataset(lines3))
    with pytest.raises(ParamError, match="exactly one"):
        resolve_model()
    with pytest.raises(DiagnoseError, match="forward pass failed: ValueError: bad reshape"):
        diagnose(lines3, resolve_model(model=f"{user_file}:forward_raises")[0], name="m", steps=2)
    with pytest.raises(ParamError, match="steps"):
        diagnose(lines3, get_baseline("lines-cnn-fixed").make, steps=0)
    assert issubclass(DiagnoseError, CnnbenchError)


def test_cli_bad_inputs_give_one_line(lines3, user_file, tmp_path):
    not_h5 = tmp_path / "notes.h5"
    not_h5.write_text("hello")
    no_targets = tmp_path / "no-targets.h5"
    no_targets.write_bytes(lines3.read_bytes())
    with h5py.File(no_targets, "a") as f:
        del f["train/targets"]
    db = ["--db", tmp_path / "none.sqlite"]
    assert_one_line_error(cli(not_h5, "-b", "lines-cnn-fixed", *db), "not a readable HDF5 file")
    assert_one_line_error(cli(tmp_path / "missing.h5", "-b", "lines-cnn-fixed", *db), "no such file")
    assert_one_line_error(cli(no_targets, "-b", "lines-cnn-fixed", *db), "train split has no targets")
    assert_one_line_error(cli(lines3, "-b", "nope", *db), "unknown baseline 'nope'")
    assert_one_line_error(cli(lines3, "-b", "boxes-cnn-as-asked", *db), "does not apply to lines")
    assert_one_line_error(cli(lines3, *db), "exactly one of --model")
    assert_one_line_error(cli(lines3, "-b", "ridge", "--model", f"{user_file}:make", *db), "exactly one")
    assert_one_line_error(cli(lines3, "--model", f"{user_file}:missing", *db), "has no 'missing'")
    assert_one_line_error(cli(lines3, "--model", f"{user_file}:not_callable", *db), "not a function")
    assert_one_line_error(cli(lines3, "--model", f"{user_file}:raises", *db), "raises() raised RuntimeError")
    assert_one_line_error(cli(lines3, "--model", f"{tmp_path}/absent.py:make", *db), "no such file")
    assert_one_line_error(cli(lines3, "--model", "nocolon", *db), "expected FILE.py:FACTORY")
    assert_one_line_error(cli(lines3, "--model", f"{user_file}:forward_raises", *db), "forward pass failed")

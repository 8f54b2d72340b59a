"""The training protocol: selection on val, whole-split metrics in the targets' units, seeds."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from cnnbench.bench.protocol import DataInfo, Recipe, TargetScaler, parse_seeds, resolve_device, run
from cnnbench.data.generate import build_spec, write_dataset
from cnnbench.data.h5file import DatasetWriter, open_dataset
from cnnbench.errors import CnnbenchError, ParamError


def write_regression(path, train, val, test, image_side=4):
    """A regression file with the given (n, 1) targets and blank 4x4x1 images."""
    attrs = {"family": "toy", "task": "regression", "spec": '{"family": "toy"}', "optimum": "null"}
    with DatasetWriter(path, attrs) as w:
        for split, y in (("train", train), ("val", val), ("test", test)):
            y = np.asarray(y, dtype=np.float32).reshape(len(y), -1)
            block = {"images": np.zeros((len(y), image_side, image_side, 1), np.uint8), "targets": y}
            w.create_split(split, len(y), block, {"targets": {"names": [f"t{i}" for i in range(y.shape[1])]}})
            w.write(split, 0, block)
    return open_dataset(path)


def write_classification(path, train, val, test, images=None):
    attrs = {"family": "toy", "task": "classification", "spec": '{"family": "toy"}', "optimum": "null"}
    with DatasetWriter(path, attrs) as w:
        for split, y in (("train", train), ("val", val), ("test", test)):
            y = np.asarray(y, dtype=np.int64)
            block = {"images": np.zeros((len(y), 2, 2, 1), np.uint8) if images is None else images[split],
                     "targets": y}
            w.create_split(split, len(y), block, {"targets": {"names": ["a", "b", "c"]}})
            w.write(split, 0, block)
    return open_dataset(path)


class Output(nn.Module):
    """Ignores the image; outputs one learnable vector."""

    def __init__(self, k=1):
        super().__init__()
        self.value = nn.Parameter(torch.zeros(k))

    def forward(self, x):
        return self.value.expand(len(x), -1)


class Scripted(torch.optim.Optimizer):
    """Sets the (only) parameter to the next value of a script at each step: one per epoch."""

    def __init__(self, params, script):
        super().__init__(params, {})
        self.script = list(script)

    def step(self):
        with torch.no_grad():
            self.param_groups[0]["params"][0].fill_(self.script.pop(0))


def test_epoch_is_selected_on_val_not_last_and_test_scored_for_it(tmp_path):
    ds = write_regression(tmp_path / "r.h5", train=[0.0, 0.0], val=[10.0, 10.0], test=[12.0, 8.0])
    script = [0.0, 10.0, 3.0, 5.0]  # val RMSE 10, 0, 7, 5: epoch 2 is best, epoch 4 last

    def factory(info):
        return Recipe(model=Output(), optimizer=lambda p: Scripted(p, script), target_scaling="none",
                      epochs=4, batch_size=16)

    rec = run(ds, factory, name="scripted", seed=0, device="cpu").record
    assert rec.best_epoch == 2 and rec.epochs == 4
    assert rec.curves["val_rmse"] == pytest.approx([10.0, 0.0, 7.0, 5.0])
    assert rec.val_metrics["rmse"] == pytest.approx(0.0)
    # Test scored for the weights of epoch 2 (prediction 10), not the last (5): errors +-2.
    assert rec.metrics["rmse"] == pytest.approx(2.0)
    assert rec.metrics["mae"] == pytest.approx(2.0)
    assert rec.metrics["r2"] == pytest.approx(1 - 8 / 8)  # SST 8, SSE 8: R2 0 for the mean


def test_regression_targets_are_scored_in_their_own_units(tmp_path):
    # Standardised targets: a model outputting 0 (scaled) predicts the train mean, 3.0.
    ds = write_regression(tmp_path / "r.h5", train=[1.0, 5.0], val=[3.0, 3.0], test=[0.0, 2.0, 10.0])

    def factory(info):
        return Recipe(model=Output(), optimizer=lambda p: torch.optim.SGD(p, lr=0.0), epochs=1)

    rec = run(ds, factory, name="zero", device="cpu").record
    errors = np.array([0.0, 2.0, 10.0]) - 3.0
    assert rec.metrics["mse"] == pytest.approx(np.mean(errors ** 2))
    assert rec.metrics["mae"] == pytest.approx(np.mean(np.abs(errors)))
    test = np.array([0.0, 2.0, 10.0])
    assert rec.metrics["r2"] == pytest.approx(1 - np.sum(errors ** 2) / np.sum((test - test.mean()) ** 2))


def test_target_scaler_round_trip():
    y = np.array([[1.0, 100.0], [3.0, 300.0], [5.0, 200.0]])
    s = TargetScaler.fit(y, "standard")
    assert s.forward(y).mean(axis=0) == pytest.approx([0, 0], abs=1e-6)
    assert s.inverse(s.forward(y)) == pytest.approx(y, rel=1e-6)
    assert TargetScaler.fit(y, "none").forward(y) == pytest.approx(y)


def test_classification_accuracy_and_per_class_by_hand(tmp_path):
    # The majority of train is class 1; test has 2 of class 0, 3 of class 1, 1 of class 2.
    ds = write_classification(tmp_path / "c.h5", train=[1, 1, 0], val=[1, 0], test=[0, 0, 1, 1, 1, 2])
    from cnnbench.baselines import get_baseline

    rec = run(ds, get_baseline("majority").make, name="majority", device="cpu").record
    assert rec.metrics["accuracy"] == pytest.approx(3 / 6)
    assert rec.metrics["per_class_accuracy"] == [0.0, 1.0, 0.0]
    assert rec.val_metrics["accuracy"] == pytest.approx(0.5)
    assert rec.split_sizes == {"train": 3, "val": 2, "test": 6}


def test_record_fields(tmp_path):
    path = tmp_path / "l.h5"
    write_dataset(build_spec("lines", {"size": 4, "n_train": 32, "n_val": 16, "n_test": 16}), path)
    from cnnbench.baselines import get_baseline

    rec = run(path, get_baseline("mlp").make, name="mlp", seed=3, epochs=2, device="cpu").record
    ds = open_dataset(path)
    assert rec.fingerprint == ds.fingerprint and rec.family == "lines" and rec.seed == 3
    assert rec.epochs == 2 and len(rec.curves["train_loss"]) == 2 and len(rec.curves["val_accuracy"]) == 2
    assert rec.params == 16 * 256 + 256 + 256 * 2 + 2
    assert rec.device == "cpu" and rec.torch_version == torch.__version__ and rec.timestamp
    assert rec.config["optimizer"] == "Adam(lr=0.001)" and rec.wall_time_s >= 0


def test_same_seed_same_run_other_seed_other_run(tmp_path):
    path = tmp_path / "l.h5"
    write_dataset(build_spec("lines", {"size": 6, "noise": 30.0, "n_train": 64, "n_val": 32,
                                       "n_test": 32}), path)
    from cnnbench.baselines import get_baseline

    make = get_baseline("lines-cnn-fixed").make
    before = torch.random.get_rng_state()
    a = run(path, make, name="x", seed=5, epochs=2, device="cpu").record
    b = run(path, make, name="x", seed=5, epochs=2, device="cpu").record
    c = run(path, make, name="x", seed=6, epochs=2, device="cpu").record
    assert a.curves == b.curves and a.metrics == b.metrics
    assert a.curves["train_loss"] != c.curves["train_loss"]
    assert torch.equal(torch.random.get_rng_state(), before)  # the caller's RNG is untouched


def test_bad_inputs(tmp_path):
    ds = write_regression(tmp_path / "r.h5", train=[0.0, 1.0], val=[0.0], test=[1.0])
    ok = lambda info: Recipe(model=Output())  # noqa: E731
    with pytest.raises(ParamError, match="epochs"):
        run(ds, ok, name="x", epochs=0)
    with pytest.raises(CnnbenchError, match="Module or a cnnbench Recipe"):
        run(ds, lambda info: "not a model", name="x")
    with pytest.raises(ParamError, match="target_scaling"):
        run(ds, lambda info: Recipe(model=Output(), target_scaling="log"), name="x")
    with pytest.raises(ParamError, match="device"):
        run(ds, ok, name="x", device="nonsense")


def test_public_file_without_test_targets_is_refused(tmp_path):
    from cnnbench.board.public import export_public

    path = tmp_path / "l.h5"
    write_dataset(build_spec("lines", {"size": 4, "n_train": 8, "n_val": 8, "n_test": 8}), path)
    export_public(path, tmp_path / "pub.h5", allow_guessable_seed=True)
    with pytest.raises(CnnbenchError, match="withheld"):
        run(tmp_path / "pub.h5", lambda info: Recipe(model=Output(2)), name="x")


def test_bare_module_gets_the_default_recipe(tmp_path):
    ds = write_regression(tmp_path / "r.h5", train=[0.0, 2.0, 4.0], val=[2.0], test=[2.0])
    info_seen = {}

    def factory(info: DataInfo):
        info_seen["info"] = info
        return Output()

    rec = run(ds, factory, name="bare", epochs=1, device="cpu").record
    assert info_seen["info"].num_outputs == 1 and info_seen["info"].image_shape == (4, 4, 1)
    assert rec.config["optimizer"] == "Adam(lr=0.001)" and rec.config["target_scaling"] == "standard"
    assert math.isfinite(rec.metrics["rmse"])


def test_parse_seeds_and_device():
    assert parse_seeds("0-9") == list(range(10))
    assert parse_seeds("3") == [3]
    assert parse_seeds("0,4, 7") == [0, 4, 7]
    for bad in ("x", "5-2", "-1", ""):
        with pytest.raises(ParamError):
            parse_seeds(bad)
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")


def test_diagnostics_show_a_collapsed_model(tmp_path):
    ds = write_regression(tmp_path / "r.h5", train=[1.0, 5.0], val=[3.0, 3.0], test=[0.0, 2.0, 10.0])
    rec = run(ds, lambda info: Recipe(model=Output(), optimizer=lambda p: torch.optim.SGD(p, lr=0.0), epochs=1),
              name="constant", device="cpu").record
    assert rec.diagnostics["prediction_std"] == [0.0]
    assert rec.diagnostics["target_std"] == [pytest.approx(np.std([0.0, 2.0, 10.0]), abs=1e-5)]


def test_metrics_cover_the_whole_split_not_an_average_of_batches(tmp_path):
    # Test has 700 images, more than one 512-image prediction batch: the first batch is all
    # class 0 (right), the rest class 1 (wrong). Averaging per batch would give 0.5.
    test = [0] * 512 + [1] * 188
    ds = write_classification(tmp_path / "c.h5", train=[0, 1], val=[0, 1], test=test,
                              images={s: np.zeros((n, 2, 2, 1), np.uint8)
                                      for s, n in (("train", 2), ("val", 2), ("test", 700))})
    model = Output(3)
    with torch.no_grad():
        model.value.copy_(torch.tensor([1.0, 0.0, 0.0]))
    rec = run(ds, lambda info: Recipe(model=model, optimizer=lambda p: torch.optim.SGD(p, lr=0.0), epochs=1),
              name="zeros", device="cpu").record
    assert rec.metrics["accuracy"] == pytest.approx(512 / 700)


def test_a_nan_epoch_never_blocks_a_later_finite_one(tmp_path):
    ds = write_regression(tmp_path / "r.h5", train=[0.0, 0.0], val=[10.0, 10.0], test=[12.0, 8.0])
    script = [math.nan, 4.0, 10.0]  # val RMSE nan, 6, 0: epoch 3 is best

    def factory(info):
        return Recipe(model=Output(), optimizer=lambda p: Scripted(p, script), target_scaling="none",
                      epochs=3, batch_size=16)

    rec = run(ds, factory, name="scripted", device="cpu").record
    assert math.isnan(rec.curves["val_rmse"][0])
    assert rec.best_epoch == 3 and rec.metrics["rmse"] == pytest.approx(2.0)


def test_a_modified_file_is_refused(tmp_path):
    import h5py

    path = tmp_path / "l.h5"
    write_dataset(build_spec("lines", {"size": 4, "n_train": 8, "n_val": 4, "n_test": 4}), path)
    from cnnbench.baselines import get_baseline

    run(path, get_baseline("majority").make, name="majority", device="cpu")  # intact: accepted
    with h5py.File(path, "r+") as f:
        f["test/targets"][0] = 1 - f["test/targets"][0]
    with pytest.raises(CnnbenchError, match="do not match its recorded fingerprint"):
        run(path, get_baseline("majority").make, name="majority", device="cpu")


@pytest.mark.parametrize("outputs, match", [
    (7, r"outputs shape \(2, 7\).*needs \(2, 3\)"),
    (1, r"outputs shape \(2, 1\).*needs \(2, 3\)"),
])
def test_a_model_with_the_wrong_number_of_outputs_is_refused(tmp_path, outputs, match):
    ds = write_classification(tmp_path / "c.h5", train=[0, 1, 2], val=[0, 1], test=[0, 2])
    with pytest.raises(CnnbenchError, match=match):
        run(ds, lambda info: Output(outputs), name="wrong", device="cpu")


def test_a_regression_model_with_the_wrong_number_of_outputs_is_refused(tmp_path):
    ds = write_regression(tmp_path / "r.h5", train=[[1.0, 2.0]] * 2, val=[[3.0, 3.0]] * 2, test=[[0.0, 2.0]] * 2)
    with pytest.raises(CnnbenchError, match=r"outputs shape \(2, 1\).*needs \(2, 2\): t0, t1"):
        run(ds, lambda info: Output(1), name="wrong", device="cpu")
    run(ds, lambda info: Output(2), name="right", epochs=1, device="cpu")


def test_seeds_and_devices_out_of_range_are_refused():
    with pytest.raises(ParamError, match="above"):
        parse_seeds(f"0,{2**63}")
    # Every valid seed as one range: refused by its length, without building a list of 2^31.
    with pytest.raises(ParamError, match="more than 10,000 seeds"):
        parse_seeds("0-2147483647")
    assert len(parse_seeds("0-9999")) == 10_000
    with pytest.raises(ParamError, match="more than 10,000 seeds"):
        parse_seeds("0-9999,20000")
    assert len(parse_seeds("0-9999,0,5000-9999")) == 10_000  # repeats count once
    for bad in ("meta", "xpu", "cuda:99" if torch.cuda.is_available() else "cuda"):
        with pytest.raises(ParamError, match="device"):
            resolve_device(bad)
    assert resolve_device("cpu").type == "cpu"

"""A file read with plain h5py and hashlib holds what docs/format.md says, nothing from cnnbench."""

import hashlib
import json

import h5py
import numpy as np

from cnnbench.data.generate import build_spec, spec_from_dict, write_dataset


def test_plain_h5py_finds_what_the_doc_says(tmp_path):
    path = tmp_path / "d.h5"
    write_dataset(build_spec("lines", {"size": 6, "n_train": 20, "n_val": 5, "n_test": 5}), path)
    with h5py.File(path, "r") as f:
        attrs = dict(f.attrs)
        assert attrs["format_version"] == 2
        assert attrs["task"] == "classification" and attrs["family"] == "lines"
        spec = json.loads(attrs["spec"])
        assert {"family", "seed", "n_train", "n_val", "n_test", "params", "block_size"} <= set(spec)
        assert json.loads(attrs["optimum"])["metric"] == "accuracy"
        # docs/format.md#fingerprint, step by step: the identity line, then one line per array.
        outer = hashlib.sha256(b"cnnbench fingerprint v2\n")
        identity = {"family": attrs["family"], "task": attrs["task"], "spec": spec,
                    "optimum": json.loads(attrs["optimum"]),
                    "target_names": list(f["train/targets"].attrs["names"])}
        outer.update(b"identity|" + json.dumps(identity, sort_keys=True, separators=(",", ":"),
                                               ensure_ascii=True).encode() + b"\n")
        for split in ("train", "val", "test"):
            group = f[split]
            assert group["images"].dtype == np.uint8 and group["images"].shape[1:] == (6, 6, 1)
            assert list(group["targets"].attrs["names"]) == ["row", "column"]
            assert group["images"].compression == "gzip" and group["images"].shuffle  # noise-free: halves
            for name in sorted(group):
                array = group[name][()]
                digest = hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()
                shape = ",".join(map(str, array.shape))
                outer.update(f"{split}/{name}|{array.dtype.str}|{shape}|{digest}\n".encode())
        assert attrs["fingerprint"] == outer.hexdigest()


def test_spec_attribute_regenerates_the_same_bytes(tmp_path):
    first = tmp_path / "a.h5"
    write_dataset(build_spec("lines", {"size": 9, "noise": 7.5, "length": "0.5:1", "n_train": 50}), first)
    with h5py.File(first, "r") as f:
        spec = json.loads(f.attrs["spec"])
    second = tmp_path / "b.h5"
    write_dataset(spec_from_dict(spec), second)
    assert first.read_bytes() == second.read_bytes()


def test_an_augmented_file_records_the_requested_sizes_and_regenerates_byte_for_byte(tmp_path):
    first = tmp_path / "a.h5"
    given = {"n_train": 5, "n_val": 2, "n_test": 2, "render_size": 32, "output_size": 8,
             "augment_copies": 2}
    write_dataset(build_spec("patches", given), first)
    with h5py.File(first, "r") as f:
        spec = json.loads(f.attrs["spec"])
        assert f["train/images"].shape[0] == 15  # 5 originals, each followed by 2 copies
    assert (spec["n_train"], spec["params"]["augment_copies"]) == (5, 2)
    second = tmp_path / "b.h5"
    write_dataset(spec_from_dict(spec), second)
    assert first.read_bytes() == second.read_bytes()


def test_images_gzip_does_not_halve_are_stored_raw(tmp_path):
    """Flat images are gzip-compressed (to a fraction); noisy ones are stored raw, where gzip
    would cost far more time than the little it saves; float arrays are always compressed."""
    sizes = {"n_train": 300, "n_val": 10, "n_test": 10}
    for noise, expected in ((0.0, "gzip"), (80.0, None)):
        path = tmp_path / f"noise{noise:g}.h5"
        write_dataset(build_spec("boxes", {"size": 32, **sizes, "noise": noise}), path)
        with h5py.File(path, "r") as f:
            images = f["train"]["images"]
            assert images.compression == expected, noise
            assert f["train"]["targets"].compression == "gzip"
            stored = images.id.get_storage_size()
            assert (stored < images.nbytes / 10) if expected else (stored >= images.nbytes)

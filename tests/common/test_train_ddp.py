"""DDP under torchrun (gloo on the CPU): 2 processes end with identical weights, equal to one process's."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from hyperplex.common.models import load_model
from hyperplex.common.train import train, write_tiles


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    rng = np.random.default_rng(0)
    image = rng.normal(size=(8, 4, 16, 16)).astype(np.float32)
    label = (image[:, 0].mean(axis=(1, 2)) > 0).astype(int)
    path = tmp_path_factory.mktemp("ddp") / "tiles.zarr"
    return write_tiles(path, image, ["a", "b", "c", "d"], label=label, label_classes=["neg", "pos"])


def test_two_processes_stay_in_sync_and_match_one_process(store, tmp_path):
    common = ["--model", "chadavit_test", "--data", str(store), "--task", "classify", "--max-steps", "2",
              "--device", "cpu", "--quiet", "--set", "img_size=16"]  # fmt: skip
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "hyperplex.common.train", *common, "--batch-size", "2", "--out", str(tmp_path / "ddp")]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads((tmp_path / "ddp" / "summary.json").read_text())
    assert summary["world_size"] == 2 and summary["step"] == 2
    digests = summary["rank_weight_digests"]
    assert len(digests) == 2 and digests[0] == digests[1]
    # one process with the global batch (2 x 2) sees the same tiles per step: same weights up to float reduction order
    train(model="chadavit_test", data=str(store), task="classify", max_steps=2, batch_size=4, device="cpu",
          quiet=True, model_args={"img_size": 16}, out=str(tmp_path / "single"))  # fmt: skip
    ddp = load_model(tmp_path / "ddp" / "model.safetensors").state_dict()
    single = load_model(tmp_path / "single" / "model.safetensors").state_dict()
    for key, value in single.items():
        torch.testing.assert_close(ddp[key], value, rtol=1e-5, atol=1e-5, msg=key)

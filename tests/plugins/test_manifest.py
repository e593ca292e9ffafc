"""Packaging of the napari plugin: a valid npe2 manifest, importable commands, and a torch-free start-up."""

from __future__ import annotations

import importlib
import inspect
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import tifffile

npe2 = pytest.importorskip("npe2")


def test_npe2_validate_passes():
    run = subprocess.run([sys.executable, "-m", "npe2", "validate", "hyperplex"], capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "valid" in run.stdout


def test_manifest_is_discovered_under_the_distribution_name():
    manifest = npe2.PluginManifest.from_distribution("hyperplex")
    assert manifest.name == "hyperplex"
    contributions = manifest.contributions
    assert {w.display_name for w in contributions.widgets} == {"Inspector", "Methane", "Models"}
    assert {s.key for s in contributions.sample_data} == {"emit", "tissue"}
    assert {tuple(w.filename_extensions) for w in contributions.writers} == {
        (".ome.tif", ".ome.tiff"),
        (".ome.zarr", ".zarr"),
    }
    assert contributions.readers[0].accepts_directories


def _resolve(manifest, command_id):
    command = next(c for c in manifest.contributions.commands if c.id == command_id)
    module, _, attr = command.python_name.partition(":")
    return getattr(importlib.import_module(module), attr)


def test_every_command_is_used_by_a_contribution():
    manifest = npe2.PluginManifest.from_distribution("hyperplex")
    c = manifest.contributions
    used = {r.command for r in c.readers} | {w.command for w in c.writers} | {w.command for w in c.widgets}
    used |= {s.command for s in c.sample_data}
    assert used == {command.id for command in c.commands}


def test_reader_command_follows_the_reader_contract(tmp_path):
    """npe2 calls ``get_reader(path)``: None for what it cannot read (never raises), else a function of the path."""
    manifest = npe2.PluginManifest.from_distribution("hyperplex")
    get_reader = _resolve(manifest, manifest.contributions.readers[0].command)
    junk = tmp_path / "junk.tif"
    junk.write_bytes(b"not a tiff at all")
    assert get_reader(str(junk)) is None
    assert get_reader(str(tmp_path / "missing.nc")) is None
    image = tmp_path / "cube.ome.tif"
    tifffile.imwrite(image, np.arange(2 * 8 * 8, dtype=np.uint16).reshape(2, 8, 8), ome=True, metadata={"axes": "CYX"})
    layers = get_reader(str(image))(str(image))
    data, meta, kind = layers[0]
    assert kind == "image" and np.asarray(data[0] if meta.get("multiscale") else data).shape[-2:] == (8, 8)


@pytest.mark.parametrize("index", [0, 1])
def test_writer_commands_write_what_they_are_given(tmp_path, index):
    """npe2 calls ``writer(path, [(data, meta, layer_type), ...])`` and expects the written paths back."""
    manifest = npe2.PluginManifest.from_distribution("hyperplex")
    writer = manifest.contributions.writers[index]
    target = tmp_path / f"out{writer.filename_extensions[0]}"
    layer = (np.full((8, 8), 7, dtype=np.uint16), {"name": "CD3"}, "image")
    written = _resolve(manifest, writer.command)(str(target), [layer])
    assert [Path(p) for p in written] == [target] and target.exists()


def test_sample_data_commands_return_layer_data(tmp_path):
    manifest = npe2.PluginManifest.from_distribution("hyperplex")
    for sample in manifest.contributions.sample_data:
        layers = _resolve(manifest, sample.command)()
        assert layers, sample.key
        for _data, meta, kind in layers:
            assert kind in {"image", "labels", "shapes", "points"} and isinstance(meta, dict), sample.key


def test_widget_commands_take_the_viewer():
    """napari injects the viewer into a widget's ``napari_viewer`` parameter."""
    manifest = npe2.PluginManifest.from_distribution("hyperplex")
    for widget in manifest.contributions.widgets:
        factory = _resolve(manifest, widget.command)
        assert "napari_viewer" in inspect.signature(factory).parameters, widget.display_name


def test_plugin_and_reader_import_without_torch_or_napari(tmp_path):
    """napari start-up cost: discovering the plugin and sniffing files must not import torch (or napari)."""
    from hyperplex.geo.synth import emit_scene, write_emit_scene

    emit = write_emit_scene(emit_scene(lines=32, samples=32, plumes=1, plume_size=2.0, seed=0), tmp_path)["radiance"]
    code = textwrap.dedent(f"""
        import sys
        import npe2
        import hyperplex.plugins
        from hyperplex.plugins import _reader, _sample_data, _writer, _methane, _models, _embedding
        npe2.PluginManifest.from_distribution("hyperplex")
        assert _reader.get_reader({str(emit)!r}) is not None
        heavy = sorted(m for m in ("torch", "napari", "qtpy", "hyperplex.common.models") if m in sys.modules)
        print(heavy)
    """)
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip().splitlines()[-1] == "[]"

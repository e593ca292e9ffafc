"""Packaging of the napari plugin: a valid npe2 manifest, importable commands, and a torch-free start-up."""

from __future__ import annotations

import importlib
import subprocess
import sys
import textwrap

import pytest

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


def test_every_command_resolves_to_a_callable():
    manifest = npe2.PluginManifest.from_distribution("hyperplex")
    for command in manifest.contributions.commands:
        module, _, attr = command.python_name.partition(":")
        assert callable(getattr(importlib.import_module(module), attr)), command.id


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

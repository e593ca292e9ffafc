"""Property-based fuzzing of every reader: damaged bytes end in a result or a HyperplexError, nothing else.

Each reader gets valid small files (written by the package's own writers) with random bytes replaced
or cut off, and pure noise. Opening must either succeed or raise a
:class:`~hyperplex.common.errors.HyperplexError` (a clear error naming the file), and the napari
reader's ``get_reader`` must never raise. Readers are lazy, so every value is also read: damaged
compressed pixel data (a GeoTIFF or OME-TIFF tile, a NetCDF chunk) surfaces then, as a HyperplexError
naming the file (:mod:`hyperplex.common.lazyread`).
The budget is bounded (``max_examples`` per reader, no deadline): the module runs in about a minute.
"""

from __future__ import annotations

import json
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hyperplex.common.errors import HyperplexError

FUZZ = settings(max_examples=10, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)


@st.composite
def damaged(draw: st.DrawFn, original: bytes, protect: int = 0) -> bytes:
    """``original`` with a few bytes replaced (after the first ``protect``), then maybe truncated."""
    data = bytearray(original)
    for _ in range(draw(st.integers(0, 8))):
        pos = draw(st.integers(protect, len(data) - 1))
        data[pos] = draw(st.integers(0, 255))
    if draw(st.booleans()):
        data = data[: draw(st.integers(0, len(data)))]
    return bytes(data)


def _opens_or_refuses(open_fn: Callable[[Path], Any], path: Path) -> None:
    """The contract: a result or a HyperplexError (lazy readers: for the headers and layout they read on open)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            open_fn(path)
        except HyperplexError as err:
            assert str(err)


class _Samples:
    """Valid small files of every format, written once, as bytes (and their file names)."""

    def __init__(self, folder: Path) -> None:
        self.dir = folder
        rng = np.random.default_rng(0)
        self.cube = rng.uniform(0.1, 2.0, (6, 8, 8)).astype(np.float32)
        self.wavelengths = np.linspace(2100, 2400, 6)

    def envi(self) -> tuple[bytes, bytes]:
        from hyperplex.common.channels import ChannelSet
        from hyperplex.geo.io.envi import envi_header_fields

        fields = envi_header_fields(ChannelSet.from_wavelengths(self.wavelengths, np.full(6, 8.0)))
        lines = ["ENVI", "samples = 8", "lines = 8", "bands = 6", "header offset = 0", "data type = 4",
                 "interleave = bsq", "byte order = 0"]  # fmt: skip
        for key, value in fields.items():
            lines.append(f"{key} = {{{', '.join(map(str, value))}}}" if isinstance(value, list) else f"{key} = {value}")
        return ("\n".join(lines) + "\n").encode(), self.cube.astype("<f4").tobytes()

    def geotiff(self) -> bytes:
        from hyperplex.common.channels import ChannelSet
        from hyperplex.geo.io import write_geotiff_cube

        path = self.dir / "cube.tif"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            write_geotiff_cube(self.cube, ChannelSet.from_wavelengths(self.wavelengths, np.full(6, 8.0)), path,
                               crs="EPSG:32613", transform=(60.0, 0.0, 500000.0, 0.0, -60.0, 3600000.0))  # fmt: skip
        return path.read_bytes()

    def emit(self) -> bytes:
        from hyperplex.geo.synth import emit_scene, write_emit_scene

        paths = write_emit_scene(emit_scene(lines=16, samples=16, plumes=0, seed=2), self.dir, "g")
        return paths["radiance"].read_bytes()

    def ome_tiff(self) -> bytes:
        from hyperplex.bio import write_ome_tiff
        from hyperplex.common.channels import ChannelSet

        data = (self.cube[:3] * 1000).astype(np.uint16)
        path = write_ome_tiff(self.dir / "x.ome.tif", data, ChannelSet.from_names(["a", "b", "c"]), levels=1, tile=16)
        return path.read_bytes()

    def ome_zarr(self) -> Path:
        from hyperplex.bio import write_ome_zarr
        from hyperplex.common.channels import ChannelSet

        data = (self.cube[:2] * 1000).astype(np.uint16)
        return write_ome_zarr(self.dir / "x.ome.zarr", data, ChannelSet.from_names(["a", "b"]), levels=1)

    def model(self) -> bytes:
        from hyperplex.common.models import create_model

        path = self.dir / "m.safetensors"
        create_model("lessvit_test").save(path)
        return path.read_bytes()


@pytest.fixture(scope="module")
def samples(tmp_path_factory: pytest.TempPathFactory) -> _Samples:
    global _CASES
    _CASES = tmp_path_factory.mktemp("fuzz_cases")
    return _Samples(tmp_path_factory.mktemp("fuzz_samples"))


_CASES: Path | None = None


def _write(data: bytes, name: str) -> Path:
    """``data`` as ``name`` in a fresh folder under the module's temporary folder."""
    folder = Path(tempfile.mkdtemp(dir=_CASES))
    path = folder / name
    path.write_bytes(data)
    return path


def _read_all(open_fn: Callable[[Path], Any]) -> Callable[[Path], Any]:
    """Open, then read every value (a damaged compressed tile or chunk must also end in a HyperplexError)."""

    def run(path: Path) -> Any:
        result = open_fn(path)  # a HyperplexError here: the header or layout is damaged
        values = getattr(result, "values", None)
        if values is None and hasattr(result, "levels"):
            values = [np.asarray(level) for level in result.levels]
        return values

    return run


def _open_cube(path: Path) -> Any:
    from hyperplex.geo.io import open_cube

    return open_cube(path)


def _open_image(path: Path) -> Any:
    from hyperplex.bio import open_image

    return open_image(path)


def test_envi_headers(samples: _Samples) -> None:
    header, data = samples.envi()

    @FUZZ
    @given(st.data())
    def check(draw: st.DataObject) -> None:
        hdr = _write(draw.draw(damaged(header, protect=4)), "cube.hdr")
        (hdr.parent / "cube.img").write_bytes(draw.draw(damaged(data)))
        _opens_or_refuses(_read_all(_open_cube), hdr)

    check()


def test_envi_header_text(samples: _Samples) -> None:
    """Header values replaced by arbitrary text (numbers, negatives, huge, junk)."""
    header, data = samples.envi()
    lines = header.decode().splitlines()

    @FUZZ
    @given(st.integers(1, len(lines) - 1), st.one_of(st.integers(-(2**63), 2**63), st.text(max_size=12)))
    def check(line: int, value: Any) -> None:
        edited = [*lines]
        edited[line] = f"{edited[line].split('=')[0]}= {value}"
        hdr = _write(("\n".join(edited) + "\n").encode(), "cube.hdr")
        (hdr.parent / "cube.img").write_bytes(data)
        _opens_or_refuses(_read_all(_open_cube), hdr)

    check()


def test_geotiff_bytes(samples: _Samples) -> None:
    original = samples.geotiff()

    @FUZZ
    @given(st.data())
    def check(draw: st.DataObject) -> None:
        _opens_or_refuses(_read_all(_open_cube), _write(draw.draw(damaged(original, protect=4)), "cube.tif"))

    check()


def test_emit_bytes(samples: _Samples) -> None:
    original = samples.emit()

    @FUZZ
    @given(st.data())
    def check(draw: st.DataObject) -> None:
        _opens_or_refuses(_read_all(_open_cube), _write(draw.draw(damaged(original, protect=8)), "g.nc"))

    check()


def test_ome_tiff_bytes(samples: _Samples) -> None:
    original = samples.ome_tiff()

    @FUZZ
    @given(st.data())
    def check(draw: st.DataObject) -> None:
        _opens_or_refuses(_read_all(_open_image), _write(draw.draw(damaged(original, protect=4)), "x.ome.tif"))

    check()


def test_ome_zarr_metadata(samples: _Samples) -> None:
    store = samples.ome_zarr()
    meta = json.loads((store / "zarr.json").read_text())
    leaves = ["multiscales", "omero"]

    @FUZZ
    @given(st.sampled_from(leaves), st.recursive(st.none() | st.integers() | st.text(max_size=5),
                                                 lambda kids: st.lists(kids, max_size=3)
                                                 | st.dictionaries(st.text(max_size=5), kids, max_size=3),
                                                 max_leaves=6))  # fmt: skip
    def check(key: str, value: Any) -> None:
        import shutil

        copy = Path(tempfile.mkdtemp(dir=_CASES)) / "x.ome.zarr"
        shutil.copytree(store, copy)
        edited = json.loads(json.dumps(meta))
        edited["attributes"]["ome"][key] = value
        (copy / "zarr.json").write_text(json.dumps(edited))
        _opens_or_refuses(_open_image, copy)

    check()


def test_model_files(samples: _Samples) -> None:
    original = samples.model()

    @FUZZ
    @given(st.data())
    def check(draw: st.DataObject) -> None:
        from hyperplex.common.models import load_model

        _opens_or_refuses(load_model, _write(draw.draw(damaged(original)), "m.safetensors"))

    check()


def test_napari_reader_never_raises_on_noise(samples: _Samples) -> None:
    from hyperplex.plugins._reader import get_reader

    @FUZZ
    @given(st.binary(max_size=512), st.sampled_from(["x.tif", "x.ome.tif", "x.nc", "x.hdr", "x.zarr", "x.img"]))
    def check(data: bytes, name: str) -> None:
        get_reader(str(_write(data, name)))

    check()

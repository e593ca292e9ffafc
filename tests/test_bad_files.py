"""The bad-file and fault corpus: every entry point, fed damaged, doubtful or hostile input.

Each case builds its input with the code below (seeded, small) and asserts one outcome:

* ``error``: the API raises a :class:`~hyperplex.common.errors.HyperplexError` subclass whose message
  names the file (or parameter) and the problem; the CLI prints one ``Error:``/``FAILED`` line, exits
  non-zero and shows no traceback;
* ``warning``: the input is doubtful, the result is correct and a warning says why;
* ``result``: the input is unusual but valid, and the result is right.

The command-line options themselves (ranges, unwritable outputs, input lists) are covered by
``tests/test_cli_bad_input.py``; this corpus covers files, data and the library entry points.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from hyperplex.common.errors import (
    ChannelMismatchError,
    DataNotFoundError,
    FileFormatError,
    HyperplexError,
    InvalidParameterError,
    ModelCompatibilityError,
    NoValidDataError,
)


# ----------------------------------------------------------------------------------------------- the corpus
@dataclass(frozen=True)
class Case:
    """One corpus entry: what it feeds (``entry``), what it expects (``outcome``) and how (``run``)."""

    entry: str
    name: str
    outcome: str  # "error", "warning" or "result"
    run: Callable[[Path, Any], None]

    @property
    def id(self) -> str:
        return f"{self.entry}: {self.name}"


CASES: list[Case] = []


def case(entry: str, name: str, outcome: str) -> Callable[[Callable[[Path, Any], None]], Callable[[Path, Any], None]]:
    def register(fn: Callable[[Path, Any], None]) -> Callable[[Path, Any], None]:
        CASES.append(Case(entry, name, outcome, fn))
        return fn

    return register


def refuses(call: Callable[[], Any], exc: type[Exception], *says: str, file: Path | str | None = None) -> str:
    """``call`` raises ``exc`` (a HyperplexError) naming ``file`` and every phrase of ``says`` (any case)."""
    with pytest.raises(exc) as info:
        call()
    assert isinstance(info.value, HyperplexError), repr(info.value)
    message = str(info.value)
    if file is not None:
        assert str(file) in message, message
    for phrase in says:
        assert phrase.lower() in message.lower(), message
    return message


def warns(call: Callable[[], Any], *says: str) -> Any:
    """``call`` returns, warning with a message holding every phrase of ``says``; returns the result."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = call()
    messages = [str(w.message) for w in caught]
    assert any(all(p.lower() in m.lower() for p in says) for m in messages), messages
    return result


# ----------------------------------------------------------------------------------------------- generators
@dataclass
class Scene:
    """A small synthetic radiance scene with one strong plume, channel-first, and its channels."""

    cube: np.ndarray  # (C, H, W) float32
    wavelengths: np.ndarray
    fwhm: np.ndarray
    emit_path: Path
    plume_peak: float
    truth: np.ndarray  # (H, W) plume enhancement, ppm·m


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> Scene:
    from hyperplex.geo.synth import emit_scene, write_emit_scene

    synth = emit_scene(lines=32, samples=32, plumes=1, plume_strength=3000.0, plume_size=4.0, seed=1)
    path = write_emit_scene(synth, tmp_path_factory.mktemp("corpus_emit"), "scene")["radiance"]
    cube = np.ascontiguousarray(np.moveaxis(synth.radiance, 2, 0))
    wavelengths, fwhm = synth.wavelengths.astype(float), synth.fwhm.astype(float)
    return Scene(cube, wavelengths, fwhm, path, float(synth.truth.max()), synth.truth)


def swir(scene: Scene, step: int = 4) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every ``step``-th band from 2100 nm up: a small cube for files (C about 25)."""
    idx = np.flatnonzero(scene.wavelengths >= 2100)[::step]
    return scene.cube[idx], scene.wavelengths[idx], scene.fwhm[idx]


def envi_pair(folder: Path, data: np.ndarray, wavelengths: Any = None, fwhm: Any = None, *, dtype: str = "<f4",
              header: dict[str, Any] | None = None, name: str = "cube") -> Path:  # fmt: skip
    """Write ``data`` (C, H, W) as ``name.img`` (BSQ) with a header ``name.hdr``; returns the header."""
    codes = {"f4": 4, "f8": 5, "u2": 12, "i2": 2}
    arr = np.asarray(data).astype(dtype)
    fields: dict[str, Any] = {"samples": arr.shape[2], "lines": arr.shape[1], "bands": arr.shape[0],
                              "header offset": 0, "file type": "ENVI Standard", "data type": codes[dtype[1:]],
                              "interleave": "bsq", "byte order": 1 if dtype[0] == ">" else 0}  # fmt: skip
    if wavelengths is not None:
        fields["wavelength"] = wavelengths
        fields["wavelength units"] = "Nanometers"
    if fwhm is not None:
        fields["fwhm"] = fwhm
    fields.update(header or {})
    lines = ["ENVI"]
    for key, value in fields.items():
        if value is None:
            continue
        text = "{" + ", ".join(str(v) for v in value) + "}" if isinstance(value, (list, tuple, np.ndarray)) else value
        lines.append(f"{key} = {text}")
    (folder / f"{name}.img").write_bytes(arr.tobytes())
    hdr = folder / f"{name}.hdr"
    hdr.write_text("\n".join(lines) + "\n")
    return hdr


def geotiff(folder: Path, data: np.ndarray, tags: list[dict[str, str]] | None, *, crs: bool = True,
            name: str = "cube.tif") -> Path:  # fmt: skip
    """A float32 GeoTIFF cube with per-band tags (``wavelength``, ``fwhm``), optionally without CRS."""
    import rasterio
    from rasterio.transform import from_origin

    path = folder / name
    profile = {"driver": "GTiff", "height": data.shape[1], "width": data.shape[2], "count": data.shape[0],
               "dtype": "float32", "tiled": True, "blockxsize": 16, "blockysize": 16}  # fmt: skip
    if crs:
        profile.update(crs="EPSG:32613", transform=from_origin(500000, 3600000, 60, 60))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with rasterio.open(path, "w", **profile) as dst:
            dst.write(data.astype(np.float32))
            for i, band_tags in enumerate(tags or []):
                dst.update_tags(i + 1, **band_tags)
    return path


def band_tags(wavelengths: np.ndarray, fwhm: np.ndarray | None) -> list[dict[str, str]]:
    return [{"wavelength": f"{w:.3f}", **({} if fwhm is None else {"fwhm": f"{f:.3f}"})}
            for w, f in zip(wavelengths, fwhm if fwhm is not None else wavelengths)]  # fmt: skip


def truncate(path: Path, fraction: float = 0.5) -> Path:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * fraction)])
    return path


def edit_emit(src: Path, dst: Path, edit: Callable[[Any], None]) -> Path:
    import h5py

    shutil.copy(src, dst)
    with h5py.File(dst, "r+") as f:
        edit(f)
    return dst


def ome_tiff(folder: Path, name: str = "img.ome.tif", channels: int = 3, size: int = 64) -> Path:
    from hyperplex.bio import write_ome_tiff
    from hyperplex.common.channels import ChannelSet

    data = np.random.default_rng(0).integers(0, 1000, (channels, size, size)).astype(np.uint16)
    names = [f"M{i}" for i in range(channels)]
    return write_ome_tiff(folder / name, data, ChannelSet.from_names(names), pixel_size_um=0.5, levels=1, tile=32)


def ome_zarr(folder: Path, name: str = "img.ome.zarr", channels: int = 2) -> Path:
    from hyperplex.bio import write_ome_zarr
    from hyperplex.common.channels import ChannelSet

    data = np.random.default_rng(0).integers(0, 1000, (channels, 64, 64)).astype(np.uint16)
    return write_ome_zarr(folder / name, data, ChannelSet.from_names([f"M{i}" for i in range(channels)]), levels=2)


def zarr_attrs(store: Path) -> tuple[Path, dict[str, Any]]:
    meta_file = store / "zarr.json"
    return meta_file, json.loads(meta_file.read_text())


def multipage_rgb() -> Path:
    import skimage

    path = Path(skimage.__file__).parent / "data" / "multipage_rgb.tif"
    if not path.is_file():
        pytest.skip("scikit-image's multipage_rgb.tif is not installed")
    return path


def saved_model(folder: Path, meta_edit: Callable[[dict[str, str]], None] | None = None, name: str = "m") -> Path:
    """A small saved model, its safetensors metadata edited by ``meta_edit``."""
    from safetensors.torch import load_file, save_file

    from hyperplex.common.models import create_model

    path = folder / f"{name}.safetensors"
    model = create_model("lessvit_test")
    model.save(path)
    if meta_edit is not None:
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as handle:
            meta = dict(handle.metadata())
        meta_edit(meta)
        save_file(load_file(str(path)), str(path), metadata=meta)
    return path


def cli(args: list[str]) -> Any:
    from click.testing import CliRunner

    from hyperplex.common.cli import main

    return CliRunner().invoke(main, [str(a) for a in args])


def cli_fails(args: list[str], *says: str) -> str:
    """Non-zero exit, no traceback, one line (``Error:`` or a batch's ``FAILED``) naming every phrase."""
    result = cli(args)
    assert result.exit_code != 0, result.output
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    lines = [ln for ln in result.output.splitlines() if ln.startswith(("Error:", "FAILED"))]
    assert len(lines) == 1, result.output
    for phrase in says:
        assert phrase.lower() in lines[0].lower(), lines[0]
    return lines[0]


# ----------------------------------------------------------------------------------------------- ENVI
def _open_envi(hdr: Path) -> Any:
    from hyperplex.geo.io import open_envi

    return open_envi(hdr)


@case("open_envi", "header without a data file", "error")
def _(tmp: Path, s: Scene) -> None:
    hdr = envi_pair(tmp, *swir(s))
    (tmp / "cube.img").unlink()
    refuses(lambda: _open_envi(hdr), DataNotFoundError, "no data file", file=hdr)


@case("open_envi", "data file truncated to half", "error")
def _(tmp: Path, s: Scene) -> None:
    hdr = envi_pair(tmp, *swir(s))
    truncate(tmp / "cube.img")
    refuses(lambda: _open_envi(hdr), FileFormatError, "truncated", file=tmp / "cube.img")


@case("open_envi", "header declares 0 lines", "error")
def _(tmp: Path, s: Scene) -> None:
    hdr = envi_pair(tmp, *swir(s), header={"lines": 0})
    refuses(lambda: _open_envi(hdr), FileFormatError, "positive", file=tmp / "cube.img")


@case("open_envi", "header declares a huge cube for a small file", "error")
def _(tmp: Path, s: Scene) -> None:
    hdr = envi_pair(tmp, *swir(s), header={"lines": 10**7, "samples": 10**5})
    refuses(lambda: _open_envi(hdr), FileFormatError, "bytes", file=tmp / "cube.img")


@case("open_envi", "header offset past the end of the file", "error")
def _(tmp: Path, s: Scene) -> None:
    hdr = envi_pair(tmp, *swir(s), header={"header offset": 10**6})
    refuses(lambda: _open_envi(hdr), FileFormatError, "truncated", file=tmp / "cube.img")


@case("open_envi", "non-numeric band count", "error")
def _(tmp: Path, s: Scene) -> None:
    hdr = envi_pair(tmp, *swir(s), header={"bands": "many"})
    refuses(lambda: _open_envi(hdr), FileFormatError, "not a readable ENVI header", file=hdr)


@case("open_envi", "header without 'data type'", "error")
def _(tmp: Path, s: Scene) -> None:
    hdr = envi_pair(tmp, *swir(s), header={"data type": None})
    refuses(lambda: _open_envi(hdr), FileFormatError, "data type", file=hdr)


@case("open_envi", "unknown data type code", "error")
def _(tmp: Path, s: Scene) -> None:
    hdr = envi_pair(tmp, *swir(s), header={"data type": 99})
    refuses(lambda: _open_envi(hdr), FileFormatError, file=hdr)


@case("open_envi", "big-endian data with 'byte order = 0' (+-3.4e38 values)", "error")
def _(tmp: Path, s: Scene) -> None:
    hdr = envi_pair(tmp, *swir(s), dtype=">f4", header={"byte order": 0})
    refuses(lambda: _open_envi(hdr), FileFormatError, "byte order", file=hdr)


@case("open_envi", "big-endian data with 'byte order = 1'", "result")
def _(tmp: Path, s: Scene) -> None:
    data, wl, fw = swir(s)
    cube = _open_envi(envi_pair(tmp, data, wl, fw, dtype=">f4"))
    np.testing.assert_allclose(cube.values, data, rtol=1e-6)


@case("open_envi", "fewer wavelengths than bands", "error")
def _(tmp: Path, s: Scene) -> None:
    data, wl, fw = swir(s)
    hdr = envi_pair(tmp, data, wl[:-1], fw[:-1])
    refuses(lambda: _open_envi(hdr), ChannelMismatchError, file=hdr)


@case("open_envi", "a repeated wavelength", "error")
def _(tmp: Path, s: Scene) -> None:
    data, wl, fw = swir(s)
    wl = wl.copy()
    wl[3] = wl[2]
    hdr = envi_pair(tmp, data, wl, fw)
    refuses(lambda: _open_envi(hdr), FileFormatError, "repeat", file=hdr)


@case("open_envi", "wavelengths in decreasing order", "warning")
def _(tmp: Path, s: Scene) -> None:
    data, wl, fw = swir(s)
    cube = warns(lambda: _open_envi(envi_pair(tmp, data[::-1], wl[::-1], fw[::-1])), "increasing wavelength order")
    np.testing.assert_allclose(cube["wavelength"].values, wl[::-1], rtol=1e-6)


@case("open_envi", "a non-numeric wavelength", "error")
def _(tmp: Path, s: Scene) -> None:
    data, wl, fw = swir(s)
    hdr = envi_pair(tmp, data, [*wl[:-1], "n/a"], fw)
    refuses(lambda: _open_envi(hdr), FileFormatError, "wavelength", file=hdr)


@case("open_envi", "a negative FWHM", "error")
def _(tmp: Path, s: Scene) -> None:
    data, wl, fw = swir(s)
    hdr = envi_pair(tmp, data, wl, -fw)
    refuses(lambda: _open_envi(hdr), FileFormatError, "fwhm", file=hdr)


@case("open_envi", "trailing bytes after the declared data", "warning")
def _(tmp: Path, s: Scene) -> None:
    data, wl, fw = swir(s)
    hdr = envi_pair(tmp, data, wl, fw)
    with open(tmp / "cube.img", "ab") as fh:
        fh.write(b"\0" * 100)
    cube = warns(lambda: _open_envi(hdr), "100 bytes", "ignored")
    np.testing.assert_allclose(cube.values, data)


@case("open_envi", "uint16 with 'reflectance scale factor = 10000'", "result")
def _(tmp: Path, s: Scene) -> None:
    data, wl, fw = swir(s)
    refl = np.clip(data / data.max(), 0, 1)
    hdr = envi_pair(tmp, np.round(refl * 10000), wl, fw, dtype="<u2", header={"reflectance scale factor": 10000})
    cube = _open_envi(hdr)
    assert cube.attrs["units"] == "reflectance" and cube.dtype == np.float32
    np.testing.assert_allclose(cube.values, refl, atol=1e-4)


@case("open_envi", "no FWHM in the header", "warning")
def _(tmp: Path, s: Scene) -> None:
    data, wl, _ = swir(s)
    cube = warns(lambda: _open_envi(envi_pair(tmp, data, wl)), "no FWHM", "band spacing")
    assert cube.attrs["fwhm_source"] == "band spacing"
    np.testing.assert_allclose(cube["fwhm"].values[1:-1], np.diff(wl)[1:], rtol=0.2)


@case("open_envi", "empty header file", "error")
def _(tmp: Path, s: Scene) -> None:
    hdr = envi_pair(tmp, *swir(s))
    hdr.write_text("ENVI\n")
    refuses(lambda: _open_envi(hdr), FileFormatError, file=hdr)


@case("open_cube", "a text file that is not an ENVI header", "error")
def _(tmp: Path, s: Scene) -> None:
    from hyperplex.geo.io import open_cube

    path = tmp / "notes.hdr"
    path.write_text("lines = 3\n")
    refuses(lambda: open_cube(path), FileFormatError, "unknown format", file=path)


# ----------------------------------------------------------------------------------------------- GeoTIFF
def _open_geotiff(path: Path) -> Any:
    from hyperplex.geo.io import open_geotiff

    return open_geotiff(path)


@case("open_geotiff", "truncated to half", "error")
def _(tmp: Path, s: Scene) -> None:
    data, wl, fw = swir(s)
    path = truncate(geotiff(tmp, data, band_tags(wl, fw)))
    refuses(lambda: _open_geotiff(path), FileFormatError, "truncated", file=path)


@case("open_geotiff", "no CRS (pixel coordinates only)", "warning")
def _(tmp: Path, s: Scene) -> None:
    data, wl, fw = swir(s)
    cube = warns(lambda: _open_geotiff(geotiff(tmp, data, band_tags(wl, fw), crs=False)), "no CRS")
    assert cube.attrs["crs"] is None and cube.attrs["geotransform"] is None


@case("open_geotiff", "wavelengths without FWHM", "warning")
def _(tmp: Path, s: Scene) -> None:
    data, wl, _ = swir(s)
    cube = warns(lambda: _open_geotiff(geotiff(tmp, data, band_tags(wl, None))), "no FWHM")
    assert cube.attrs["fwhm_source"] == "band spacing" and np.all(cube["fwhm"].values > 0)


@case("open_geotiff", "a repeated wavelength tag", "error")
def _(tmp: Path, s: Scene) -> None:
    data, wl, fw = swir(s)
    wl = wl.copy()
    wl[5] = wl[4]
    path = geotiff(tmp, data, band_tags(wl, fw))
    refuses(lambda: _open_geotiff(path), FileFormatError, "repeat", file=path)


@case("open_geotiff", "a non-numeric wavelength tag", "error")
def _(tmp: Path, s: Scene) -> None:
    data, wl, fw = swir(s)
    tags = band_tags(wl, fw)
    tags[2]["wavelength"] = "two thousand"
    path = geotiff(tmp, data, tags)
    refuses(lambda: _open_geotiff(path), FileFormatError, "wavelength", file=path)


@case("open_geotiff", "missing file", "error")
def _(tmp: Path, s: Scene) -> None:
    refuses(lambda: _open_geotiff(tmp / "none.tif"), DataNotFoundError, file=tmp / "none.tif")


@case("open_geotiff", "a text file named .tif", "error")
def _(tmp: Path, s: Scene) -> None:
    path = tmp / "text.tif"
    path.write_text("hello")
    refuses(lambda: _open_geotiff(path), FileFormatError, file=path)


@case("open_cube", "a plain (non-Geo) TIFF", "error")
def _(tmp: Path, s: Scene) -> None:
    import tifffile

    import hyperplex.bio  # noqa: F401  (registers the microscopy formats: the message then says which it is)
    from hyperplex.geo.io import open_cube

    path = tmp / "plain.tif"
    tifffile.imwrite(path, np.zeros((3, 16, 16), np.uint8))
    refuses(lambda: open_cube(path), FileFormatError, "unknown format", "microscopy", file=path)


@case("open_cube", "an OME-TIFF", "error")
def _(tmp: Path, s: Scene) -> None:
    from hyperplex.geo.io import open_cube

    path = ome_tiff(tmp)
    refuses(lambda: open_cube(path), FileFormatError, "OME-TIFF", file=path)


@case("open_cube", "missing file", "error")
def _(tmp: Path, s: Scene) -> None:
    from hyperplex.geo.io import open_cube

    refuses(lambda: open_cube(tmp / "x.nc"), DataNotFoundError, file=tmp / "x.nc")


# ----------------------------------------------------------------------------------------------- EMIT
def _open_emit(path: Path, **kw: Any) -> Any:
    from hyperplex.geo.io import open_emit

    return open_emit(path, **kw)


@case("open_emit", "missing file", "error")
def _(tmp: Path, s: Scene) -> None:
    refuses(lambda: _open_emit(tmp / "g.nc"), DataNotFoundError, file=tmp / "g.nc")


@case("open_emit", "a directory", "error")
def _(tmp: Path, s: Scene) -> None:
    refuses(lambda: _open_emit(tmp), FileFormatError, "directory", file=tmp)


@case("open_emit", "no sensor_band_parameters group", "error")
def _(tmp: Path, s: Scene) -> None:
    path = edit_emit(s.emit_path, tmp / "g.nc", lambda f: f.__delitem__("sensor_band_parameters"))
    refuses(lambda: _open_emit(path), FileFormatError, "sensor_band_parameters", file=path)


@case("open_emit", "no location/glt_x", "error")
def _(tmp: Path, s: Scene) -> None:
    path = edit_emit(s.emit_path, tmp / "g.nc", lambda f: f["location"].__delitem__("glt_x"))
    refuses(lambda: _open_emit(path), FileFormatError, "glt_x", file=path)


@case("open_emit", "GLT pointing outside the swath", "error")
def _(tmp: Path, s: Scene) -> None:
    def edit(f: Any) -> None:
        f["location/glt_x"][0, 0] = 10_000

    path = edit_emit(s.emit_path, tmp / "g.nc", edit)
    refuses(lambda: _open_emit(path), FileFormatError, "outside the swath", file=path)


@case("open_emit", "all-zero GLT, ortho=True", "error")
def _(tmp: Path, s: Scene) -> None:
    path = edit_emit(s.emit_path, tmp / "g.nc", _zero_glt)
    refuses(lambda: _open_emit(path, ortho=True), FileFormatError, "GLT", "no valid entry", file=path)


def _zero_glt(f: Any) -> None:
    f["location/glt_x"][...] = 0
    f["location/glt_y"][...] = 0


@case("open_emit", "all-zero GLT, sensor geometry", "result")
def _(tmp: Path, s: Scene) -> None:
    ds = _open_emit(edit_emit(s.emit_path, tmp / "g.nc", _zero_glt))
    np.testing.assert_allclose(ds["radiance"].values[:, 3, 4], s.cube[:, 3, 4], rtol=1e-6)


@case("open_emit", "a repeated band wavelength", "error")
def _(tmp: Path, s: Scene) -> None:
    def edit(f: Any) -> None:
        f["sensor_band_parameters/wavelengths"][10] = f["sensor_band_parameters/wavelengths"][9]

    path = edit_emit(s.emit_path, tmp / "g.nc", edit)
    refuses(lambda: _open_emit(path), FileFormatError, "repeat", file=path)


@case("open_emit", "a negative FWHM", "error")
def _(tmp: Path, s: Scene) -> None:
    def edit(f: Any) -> None:
        f["sensor_band_parameters/fwhm"][10] = -1.0

    path = edit_emit(s.emit_path, tmp / "g.nc", edit)
    refuses(lambda: _open_emit(path), FileFormatError, "fwhm", file=path)


@case("open_cube", "an EMIT granule truncated to half", "error")
def _(tmp: Path, s: Scene) -> None:
    from hyperplex.geo.io import open_cube

    path = tmp / "g.nc"
    shutil.copy(s.emit_path, path)
    truncate(path)
    refuses(lambda: open_cube(path), FileFormatError, file=path)


@case("open_cube", "an empty .nc file", "error")
def _(tmp: Path, s: Scene) -> None:
    from hyperplex.geo.io import open_cube

    path = tmp / "g.nc"
    path.write_bytes(b"")
    refuses(lambda: open_cube(path), FileFormatError, "unknown format", file=path)


@case("open_cube", "a NetCDF granule named .tif", "error")
def _(tmp: Path, s: Scene) -> None:
    from hyperplex.geo.io import open_cube

    path = tmp / "granule.tif"
    shutil.copy(s.emit_path, path)
    refuses(lambda: open_cube(path), FileFormatError, "unknown format", file=path)


@case("open_image", "a NetCDF granule named .tif", "error")
def _(tmp: Path, s: Scene) -> None:
    from hyperplex.bio import open_image

    path = tmp / "granule.tif"
    shutil.copy(s.emit_path, path)
    refuses(lambda: open_image(path), FileFormatError, "unknown format", file=path)


# ----------------------------------------------------------------------------------------------- microscopy
def _open_image(path: Path, **kw: Any) -> Any:
    from hyperplex.bio import open_image

    return open_image(path, **kw)


@case("open_image", "OME-TIFF with half its OME-XML cut", "error")
def _(tmp: Path, s: Scene) -> None:
    import tifffile

    src = ome_tiff(tmp)
    with tifffile.TiffFile(src) as tif:
        xml, data = tif.ome_metadata, tif.series[0].asarray()
    path = tmp / "cut.ome.tif"
    tifffile.imwrite(path, data, description=xml[: len(xml) // 2], metadata=None)
    refuses(lambda: _open_image(path), FileFormatError, "cut off", file=path)


@case("open_image", "OME-TIFF truncated to 60%", "error")
def _(tmp: Path, s: Scene) -> None:
    path = truncate(ome_tiff(tmp), 0.6)
    refuses(lambda: _open_image(path), FileFormatError, "truncated", file=path)


@case("open_image", "OME-TIFF, a series that does not exist", "error")
def _(tmp: Path, s: Scene) -> None:
    path = ome_tiff(tmp)
    refuses(lambda: _open_image(path, series=5), FileFormatError, "series", file=path)


@case("open_image", "OME-XML naming more channels than planes", "error")
def _(tmp: Path, s: Scene) -> None:
    import tifffile

    src = ome_tiff(tmp, channels=3)
    with tifffile.TiffFile(src) as tif:
        xml, data = tif.ome_metadata, tif.series[0].asarray()
    extra = re.sub(r'(<Channel ID="Channel:0:2"[^>]*?)(/?>)', r"\1\2", xml)
    extra = extra.replace("</Pixels>", '<Channel ID="Channel:0:9" Name="ghost" SamplesPerPixel="1"/></Pixels>', 1)
    extra = extra.replace('SizeC="3"', 'SizeC="4"').encode("ascii", "xmlcharrefreplace").decode()
    path = tmp / "ghost.ome.tif"
    tifffile.imwrite(path, data, description=extra, metadata=None)
    with pytest.raises(HyperplexError) as info:
        _open_image(path)
    assert str(path) in str(info.value) or "OME-XML" in str(info.value), str(info.value)


@case("open_image", "OME-Zarr whose multiscales name a missing array", "error")
def _(tmp: Path, s: Scene) -> None:
    store = ome_zarr(tmp)
    shutil.rmtree(store / "0")
    refuses(lambda: _open_image(store), FileFormatError, "missing", "'0'", file=store)


@case("open_image", "OME-Zarr multiscales without datasets", "error")
def _(tmp: Path, s: Scene) -> None:
    store = ome_zarr(tmp)
    meta_file, meta = zarr_attrs(store)
    meta["attributes"]["ome"]["multiscales"][0]["datasets"] = []
    meta_file.write_text(json.dumps(meta))
    refuses(lambda: _open_image(store), FileFormatError, "datasets", file=store)


@case("open_image", "OME-Zarr omero naming 3 channels for 2", "error")
def _(tmp: Path, s: Scene) -> None:
    store = ome_zarr(tmp, channels=2)
    meta_file, meta = zarr_attrs(store)
    channels = meta["attributes"]["ome"]["omero"]["channels"]
    channels.append(dict(channels[0], label="ghost"))
    meta_file.write_text(json.dumps(meta))
    refuses(lambda: _open_image(store), ChannelMismatchError)


@case("open_image", "a zarr group without multiscales", "error")
def _(tmp: Path, s: Scene) -> None:
    import zarr

    store = tmp / "plain.zarr"
    zarr.open_group(store, mode="w").create_array("a", shape=(4, 4), dtype="u1")
    refuses(lambda: _open_image(store), FileFormatError, file=store)


@case("open_image", "scikit-image multipage_rgb.tif (axes QSYX)", "error")
def _(tmp: Path, s: Scene) -> None:
    path = multipage_rgb()
    message = refuses(lambda: _open_image(path), FileFormatError, "QSYX", "'Q'", file=path)
    assert "'Z'" not in message and "'T'" not in message, message


@case("open_image", "scikit-image multipage_rgb.tif with select={'Q': 1}", "result")
def _(tmp: Path, s: Scene) -> None:
    import tifffile

    path = multipage_rgb()
    image = _open_image(path, select={"Q": 1})
    expected = np.moveaxis(tifffile.imread(path)[1], -1, 0) if tifffile.imread(path).shape[-1] == 3 else None
    assert image.shape[0] == 3
    if expected is not None:
        np.testing.assert_array_equal(np.asarray(image.levels[0]), expected)


@case("open_image", "missing path", "error")
def _(tmp: Path, s: Scene) -> None:
    refuses(lambda: _open_image(tmp / "none.ome.tif"), DataNotFoundError, file=tmp / "none.ome.tif")


@case("open_image", "a PNG file (an RGB image, not a stack)", "result")
def _(tmp: Path, s: Scene) -> None:
    from PIL import Image

    from hyperplex.bio.rgb import is_rgb

    path = tmp / "a.png"
    pixels = (np.arange(8 * 8 * 3) % 251).astype(np.uint8).reshape(8, 8, 3)
    Image.fromarray(pixels).save(path)
    image = _open_image(path)
    assert is_rgb(image)
    np.testing.assert_array_equal(np.asarray(image.levels[0]), pixels.transpose(2, 0, 1))


@case("open_image", "a file with a PNG name and other bytes", "error")
def _(tmp: Path, s: Scene) -> None:
    path = tmp / "b.png"
    path.write_bytes(b"not an image at all" * 8)
    with pytest.raises(HyperplexError) as info:
        _open_image(path)
    assert str(path) in str(info.value)


@case("open_image", "an empty folder", "error")
def _(tmp: Path, s: Scene) -> None:
    folder = tmp / "empty"
    folder.mkdir()
    refuses(lambda: _open_image(folder), FileFormatError, file=folder)


@case("open_image", "a zero-byte .tif", "error")
def _(tmp: Path, s: Scene) -> None:
    path = tmp / "zero.tif"
    path.write_bytes(b"")
    refuses(lambda: _open_image(path), FileFormatError, file=path)


# ------------------------------------------------------------------------------------- napari reader and writers
def _get_reader(path: Any) -> Any:
    from hyperplex.plugins._reader import get_reader

    return get_reader(path)


@case("napari reader", "multipage_rgb.tif (QSYX) gives None", "result")
def _(tmp: Path, s: Scene) -> None:
    assert _get_reader(str(multipage_rgb())) is None


@case("napari reader", "OME-Zarr with a missing level array gives None", "result")
def _(tmp: Path, s: Scene) -> None:
    store = ome_zarr(tmp)
    shutil.rmtree(store / "0")
    assert _get_reader(str(store)) is None


@case("napari reader", "read_path on an OME-Zarr with a missing level array", "error")
def _(tmp: Path, s: Scene) -> None:
    from hyperplex.plugins._reader import read_path

    store = ome_zarr(tmp)
    shutil.rmtree(store / "0")
    refuses(lambda: read_path(str(store)), FileFormatError, "missing", file=store)


@case("napari reader", "truncated OME-TIFF gives None", "result")
def _(tmp: Path, s: Scene) -> None:
    assert _get_reader(str(truncate(ome_tiff(tmp), 0.6))) is None


@case("napari reader", "NetCDF named .tif gives None", "result")
def _(tmp: Path, s: Scene) -> None:
    path = tmp / "granule.tif"
    shutil.copy(s.emit_path, path)
    assert _get_reader(str(path)) is None


@case("napari reader", "two paths at once give None", "result")
def _(tmp: Path, s: Scene) -> None:
    path = str(ome_tiff(tmp))
    assert _get_reader([path, path]) is None


@case("napari reader", "a missing path gives None", "result")
def _(tmp: Path, s: Scene) -> None:
    assert _get_reader(str(tmp / "none.ome.tif")) is None


@case("napari reader", "ENVI cube with a truncated data file gives None", "result")
def _(tmp: Path, s: Scene) -> None:
    hdr = envi_pair(tmp, *swir(s))
    truncate(tmp / "cube.img")
    assert _get_reader(str(hdr)) is None


@case("napari writer", "no image layer", "error")
def _(tmp: Path, s: Scene) -> None:
    from hyperplex.plugins._writer import write_ome_tiff

    layers = [(np.zeros((4, 4), np.uint16), {"name": "lbl"}, "labels")]
    refuses(lambda: write_ome_tiff(str(tmp / "o.ome.tif"), layers), InvalidParameterError, "image layer")


@case("napari writer", "layers of different shapes", "error")
def _(tmp: Path, s: Scene) -> None:
    from hyperplex.plugins._writer import write_ome_zarr

    layers = [(np.zeros(shape, np.uint16), {"name": n}, "image") for n, shape in (("a", (8, 8)), ("b", (9, 8)))]
    refuses(lambda: write_ome_zarr(str(tmp / "o.ome.zarr"), layers), ChannelMismatchError, "one shape")


@case("napari writer", "an RGB layer", "error")
def _(tmp: Path, s: Scene) -> None:
    from hyperplex.plugins._writer import write_ome_tiff

    layers = [(np.zeros((8, 8, 3), np.uint8), {"name": "rgb", "rgb": True}, "image")]
    refuses(lambda: write_ome_tiff(str(tmp / "o.ome.tif"), layers), InvalidParameterError, "RGB")


@case("napari writer", "two layers written and read back", "result")
def _(tmp: Path, s: Scene) -> None:
    from hyperplex.plugins._writer import write_ome_tiff

    planes = np.random.default_rng(2).integers(0, 500, (2, 32, 32)).astype(np.uint16)
    layers = [(planes[i], {"name": n}, "image") for i, n in enumerate(("DAPI", "CD3"))]
    (path,) = write_ome_tiff(str(tmp / "o.ome.tif"), layers)
    image = _open_image(Path(path))
    assert list(image.channels.names) == ["DAPI", "CD3"]
    np.testing.assert_array_equal(np.asarray(image.levels[0]), planes)


# ----------------------------------------------------------------------------------------------- models
def _load(path: Path) -> Any:
    from hyperplex.common.models import load_model

    return load_model(path)


@case("load_model", "random bytes", "error")
def _(tmp: Path, s: Scene) -> None:
    path = tmp / "m.safetensors"
    path.write_bytes(os.urandom(256))
    refuses(lambda: _load(path), FileFormatError, "safetensors", file=path)


@case("load_model", "missing file", "error")
def _(tmp: Path, s: Scene) -> None:
    refuses(lambda: _load(tmp / "m.safetensors"), DataNotFoundError, file=tmp / "m.safetensors")


@case("load_model", "truncated to half", "error")
def _(tmp: Path, s: Scene) -> None:
    path = truncate(saved_model(tmp))
    refuses(lambda: _load(path), FileFormatError, file=path)


@case("load_model", "safetensors without hyperplex metadata", "error")
def _(tmp: Path, s: Scene) -> None:
    import torch
    from safetensors.torch import save_file

    path = tmp / "m.safetensors"
    save_file({"w": torch.zeros(2)}, str(path))
    refuses(lambda: _load(path), FileFormatError, "metadata", file=path)


@case("load_model", "metadata without class", "error")
def _(tmp: Path, s: Scene) -> None:
    path = saved_model(tmp, lambda m: m.pop("class"))
    refuses(lambda: _load(path), FileFormatError, "class", file=path)


@case("load_model", "config that is not JSON", "error")
def _(tmp: Path, s: Scene) -> None:
    path = saved_model(tmp, lambda m: m.update(config="{embed_dim: 32,"))
    refuses(lambda: _load(path), FileFormatError, "config", "JSON", file=path)


@case("load_model", "config that is a list", "error")
def _(tmp: Path, s: Scene) -> None:
    path = saved_model(tmp, lambda m: m.update(config="[1, 2]"))
    refuses(lambda: _load(path), FileFormatError, "config", file=path)


@case("load_model", "config inflated to a huge model (no allocation)", "error")
def _(tmp: Path, s: Scene) -> None:
    import time

    def inflate(meta: dict[str, str]) -> None:
        config = json.loads(meta["config"])
        config.update(embed_dim=8192, depth=24)  # about 19e9 weights, 77 GB as float32
        meta["config"] = json.dumps(config)

    path = saved_model(tmp, inflate)
    start = time.perf_counter()
    refuses(lambda: _load(path), ModelCompatibilityError, "config", "weight values", file=path)
    assert time.perf_counter() - start < 120


@case("load_model", "config with an unknown argument", "error")
def _(tmp: Path, s: Scene) -> None:
    def add(meta: dict[str, str]) -> None:
        meta["config"] = json.dumps({**json.loads(meta["config"]), "wings": 2})

    path = saved_model(tmp, add)
    refuses(lambda: _load(path), ModelCompatibilityError, "wings", file=path)


@case("load_model", "an unknown model class", "error")
def _(tmp: Path, s: Scene) -> None:
    path = saved_model(tmp, lambda m: m.update({"class": "elsewhere.Model"}))
    refuses(lambda: _load(path), ModelCompatibilityError, "elsewhere.Model", file=path)


@case("load_model", "channels metadata that is not JSON", "error")
def _(tmp: Path, s: Scene) -> None:
    path = saved_model(tmp, lambda m: m.update(channels="{oops"))
    refuses(lambda: _load(path), FileFormatError, "channels", file=path)


def _create(*args: Any, **kwargs: Any) -> Any:
    from hyperplex.common.models import create_model

    return create_model(*args, **kwargs)


@case("create_model", "an override of the wrong type", "error")
def _(tmp: Path, s: Scene) -> None:
    refuses(lambda: _create("lessvit_test", embed_dim="wide"), InvalidParameterError, "lessvit_test", "embed_dim")


@case("create_model", "a negative size", "error")
def _(tmp: Path, s: Scene) -> None:
    refuses(lambda: _create("lessvit_test", depth=-2), InvalidParameterError, "lessvit_test", "depth")


@case("create_model", "an unknown override", "error")
def _(tmp: Path, s: Scene) -> None:
    refuses(lambda: _create("lessvit_test", wings=2), InvalidParameterError, "lessvit_test", "wings")


@case("create_model", "an unknown preset", "error")
def _(tmp: Path, s: Scene) -> None:
    refuses(lambda: _create("no_such_model"), InvalidParameterError, "no_such_model")


@case("create_model", "pretrained with overrides", "error")
def _(tmp: Path, s: Scene) -> None:
    from hyperplex.common.models import list_models

    shipped = list_models(pretrained=True)
    if not shipped:
        pytest.skip("no shipped weights")
    refuses(lambda: _create(shipped[0], pretrained=True, depth=3), InvalidParameterError, "overrides")


@case("model forward", "one NaN pixel in the input", "warning")
def _(tmp: Path, s: Scene) -> None:
    import torch

    model = _create("chadavit_test").eval()
    x = torch.rand(1, 3, 32, 32)
    channels = ["DAPI", "CD3", "CD8"]
    with torch.no_grad():
        clean = model.feature_map(x, channels)
        x[0, 1, 5, 7] = float("nan")
        out = warns(lambda: model.feature_map(x, channels), "non-finite", "replaced by 0")
    assert torch.isfinite(out).all()
    far = (slice(None), slice(None), slice(clean.shape[2] - 1, None), slice(clean.shape[3] - 1, None))
    assert out.shape == clean.shape and torch.isfinite(out[far]).all()


# ----------------------------------------------------------------------------------------------- filters
FILTERS = ("mag1c", "matched_filter", "cem", "ace", "mag1c_sas")


def _filter(name: str) -> Callable[..., Any]:
    import hyperplex.geo.methane as methane

    return getattr(methane, name)


def _plume_recovered(enh: np.ndarray, s: Scene) -> None:
    assert np.nanmax(enh) > 0.3 * s.plume_peak, (np.nanmax(enh), s.plume_peak)


for _name in ("mag1c", "matched_filter"):

    @case(_name, "one zero-variance band in the window", "warning")
    def _(tmp: Path, s: Scene, name: str = _name) -> None:
        cube = s.cube.copy()
        cube[int(np.argmin(abs(s.wavelengths - 2300)))] = 1.0
        enh = warns(lambda: _filter(name)(cube, s.wavelengths, s.fwhm), "constant", "2299")
        _plume_recovered(enh, s)

    @case(_name, "three bands of zeros (dead detector rows)", "warning")
    def _(tmp: Path, s: Scene, name: str = _name) -> None:
        cube = s.cube.copy()
        cube[np.flatnonzero(s.wavelengths > 2150)[:3]] = 0.0
        enh = warns(lambda: _filter(name)(cube, s.wavelengths, s.fwhm), "3 band(s) are constant")
        _plume_recovered(enh, s)

    @case(_name, "a band constant in the sampled rows but not elsewhere", "result")
    def _(tmp: Path, s: Scene, name: str = _name) -> None:
        cube, band = s.cube.copy(), int(np.argmin(abs(s.wavelengths - 2300)))
        varying = np.zeros(cube.shape[1], bool)
        varying[[5, 17]] = True  # two rows between the sampled ones (every other row and the last)
        cube[band, ~varying] = 1.0
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            enh = _filter(name)(cube, s.wavelengths, s.fwhm)
        assert not [w for w in caught if "constant" in str(w.message)], [str(w.message) for w in caught]
        _plume_recovered(enh, s)

    @case(_name, "a band that varies only at masked pixels", "warning")
    def _(tmp: Path, s: Scene, name: str = _name) -> None:
        cube, band = s.cube.copy(), int(np.argmin(abs(s.wavelengths - 2300)))
        mask = np.zeros(cube.shape[1:], bool)
        mask[::2, :3] = True  # in the sampled rows
        cube[band][~mask] = 1.0
        enh = warns(lambda: _filter(name)(cube, s.wavelengths, s.fwhm, mask=mask), "constant", "2299")
        _plume_recovered(enh, s)

    @case(_name, "a dead band in a lazy (dask) cube", "warning")
    def _(tmp: Path, s: Scene, name: str = _name) -> None:
        import dask.array as da

        cube = s.cube.copy()
        cube[int(np.argmin(abs(s.wavelengths - 2300)))] = 1.0
        lazy = da.from_array(cube, chunks=(16, 8, -1))
        enh = warns(lambda: _filter(name)(lazy, s.wavelengths, s.fwhm), "constant", "2299")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            np.testing.assert_allclose(enh, _filter(name)(cube, s.wavelengths, s.fwhm), rtol=1e-5, atol=1e-3)


for _name in FILTERS:

    @case(_name, "repeated wavelengths", "error")
    def _(tmp: Path, s: Scene, name: str = _name) -> None:
        wl = s.wavelengths.copy()
        wl[-10] = wl[-11]
        refuses(lambda: _filter(name)(s.cube, wl, s.fwhm), InvalidParameterError, "repeat", "wavelengths")

    @case(_name, "every pixel NaN", "error")
    def _(tmp: Path, s: Scene, name: str = _name) -> None:
        cube = np.full_like(s.cube, np.nan)
        refuses(lambda: _filter(name)(cube, s.wavelengths, s.fwhm), NoValidDataError, "no valid pixel")


@case("matched_filter", "every pixel fill (-9999)", "error")
def _(tmp: Path, s: Scene) -> None:
    cube = np.full_like(s.cube, -9999.0)
    refuses(lambda: _filter("matched_filter")(cube, s.wavelengths, s.fwhm), NoValidDataError, "fill")


@case("matched_filter", "a 2-D array", "error")
def _(tmp: Path, s: Scene) -> None:
    refuses(lambda: _filter("matched_filter")(s.cube[0], s.wavelengths, s.fwhm), InvalidParameterError, "cube")


@case("mag1c", "fewer wavelengths than bands", "error")
def _(tmp: Path, s: Scene) -> None:
    refuses(lambda: _filter("mag1c")(s.cube, s.wavelengths[:-1], s.fwhm[:-1]), ChannelMismatchError, "bands")


@case("cem", "a window outside the cube", "error")
def _(tmp: Path, s: Scene) -> None:
    call = lambda: _filter("cem")(s.cube, s.wavelengths, s.fwhm, window=(3000, 3100))  # noqa: E731
    refuses(call, InvalidParameterError, "window")


@case("ace", "a mask of the wrong shape", "error")
def _(tmp: Path, s: Scene) -> None:
    call = lambda: _filter("ace")(s.cube, s.wavelengths, s.fwhm, mask=np.zeros((3, 3), bool))  # noqa: E731
    refuses(call, InvalidParameterError, "mask")


@case("mag1c", "only two bands of the window vary", "error")
def _(tmp: Path, s: Scene) -> None:
    cube = s.cube.copy()
    window = np.flatnonzero((s.wavelengths >= 2122) & (s.wavelengths <= 2488))
    cube[window[2:]] = 2.0
    refuses(lambda: _filter("mag1c")(cube, s.wavelengths, s.fwhm), InvalidParameterError, "vary")


@case("matched_filter", "a 1x1 scene", "warning")
def _(tmp: Path, s: Scene) -> None:
    out = warns(lambda: _filter("matched_filter")(s.cube[:, :1, :1], s.wavelengths, s.fwhm), "fewer valid pixels")
    assert out.shape == (1, 1)


@case("mag1c", "one NaN pixel", "result")
def _(tmp: Path, s: Scene) -> None:
    cube = s.cube.copy()
    cube[:, 4, 5] = np.nan
    enh = _filter("mag1c")(cube, s.wavelengths, s.fwhm)
    assert np.isnan(enh[4, 5]) and np.isfinite(enh).sum() == enh.size - 1
    _plume_recovered(enh, s)


@case("mag1c_sas", "an unknown option", "error")
def _(tmp: Path, s: Scene) -> None:
    with pytest.raises((TypeError, HyperplexError)):
        _filter("mag1c_sas")(s.cube, s.wavelengths, s.fwhm, wings=2)


@case("matched_filter", "a NaN FWHM", "error")
def _(tmp: Path, s: Scene) -> None:
    fwhm = s.fwhm.copy()
    fwhm[3] = np.nan
    refuses(lambda: _filter("matched_filter")(s.cube, s.wavelengths, fwhm), InvalidParameterError, "fwhm")


# ----------------------------------------------------------------------------------------------- CLI
@case("cli methane detect", "a truncated ENVI cube", "error")
def _(tmp: Path, s: Scene) -> None:
    data, wl, fw = s.cube, s.wavelengths, s.fwhm
    envi_pair(tmp, data, wl, fw)
    truncate(tmp / "cube.img")
    cli_fails(["methane", "detect", tmp / "cube.img", "--out", tmp / "o", "-q"], "cube", "truncated")


@case("cli methane detect", "integer counts, not radiance (everything saturated)", "error")
def _(tmp: Path, s: Scene) -> None:
    envi_pair(tmp, np.round(s.cube * 1000), s.wavelengths, s.fwhm, dtype="<u2")
    cli_fails(["methane", "detect", tmp / "cube.img", "--out", tmp / "o", "-q"], "not radiance", "--flare-threshold")


@case("cli methane detect", "an all-zero GLT", "error")
def _(tmp: Path, s: Scene) -> None:
    path = edit_emit(s.emit_path, tmp / "g.nc", _zero_glt)
    cli_fails(["methane", "detect", path, "--out", tmp / "o", "-q"], "GLT", "--no-ortho")


@case("cli methane detect", "a symbolic link loop", "error")
def _(tmp: Path, s: Scene) -> None:
    (tmp / "a.nc").symlink_to(tmp / "b.nc")
    (tmp / "b.nc").symlink_to(tmp / "a.nc")
    cli_fails(["methane", "detect", tmp / "a.nc", "--out", tmp / "o", "-q"], "symbolic link loop")


@case("cli methane detect", "a broken symbolic link", "error")
def _(tmp: Path, s: Scene) -> None:
    (tmp / "a.nc").symlink_to(tmp / "gone.nc")
    cli_fails(["methane", "detect", tmp / "a.nc", "--out", tmp / "o", "-q"], "broken symbolic link", "gone.nc")


@case("cli methane detect", "--workers far above the CPU count", "error")
def _(tmp: Path, s: Scene) -> None:
    cli_fails(["methane", "detect", s.emit_path, "--out", tmp / "o", "--workers", "100000"], "--workers")


@case("cli methane detect", "a reversed --window names the option", "error")
def _(tmp: Path, s: Scene) -> None:
    line = cli_fails(["methane", "detect", s.emit_path, "--out", tmp / "o", "--window", "2400", "2100"], "--window")
    assert "`window`" not in line


@case("cli methane detect", "a GeoTIFF without CRS: no lon/lat in the GeoJSON", "warning")
def _(tmp: Path, s: Scene) -> None:
    from hyperplex.geo.detect import detect_scene

    path = geotiff(tmp, s.cube, band_tags(s.wavelengths, s.fwhm), crs=False)
    summary = warns(lambda: detect_scene(path, tmp / "o"), "no ground pixel size", "ime_kg", "null")
    features = json.loads(Path(summary["outputs"]["plumes_vector"]).read_text())["features"]
    assert summary["plume_count"] >= 1
    assert all(f["geometry"] is None and f["properties"].get("centroid_lon") is None for f in features)
    assert all(f["properties"]["ime_kg"] is None and "no CRS" in f["properties"]["ime_null_reason"] for f in features)
    run = json.loads(Path(summary["outputs"]["run"]).read_text())
    assert run["ime_method"].startswith("none: no ground pixel size") and "no CRS" in run["ime_method"]


@case("methane detect", "a georeferenced GeoTIFF: IME given, no null reason", "result")
def _(tmp: Path, s: Scene) -> None:
    from hyperplex.geo.detect import detect_scene

    summary = detect_scene(geotiff(tmp, s.cube, band_tags(s.wavelengths, s.fwhm)), tmp / "o")
    assert summary["plume_count"] >= 1 and not summary["ime_method"].startswith("none")
    assert all(p["ime_kg"] > 0 and p["ime_null_reason"] is None for p in summary["plumes"])


@case("cli methane detect", "scaled-integer reflectance ENVI", "result")
def _(tmp: Path, s: Scene) -> None:
    from hyperplex.geo.detect import detect_scene

    refl = np.round(np.clip(s.cube / s.cube.max(), 0, 1) * 10000)
    hdr = envi_pair(tmp, refl, s.wavelengths, s.fwhm, dtype="<u2", header={"reflectance scale factor": 10000})
    summary = detect_scene(hdr.with_suffix(".img"), tmp / "o")
    assert summary["status"] == "complete"
    assert summary["masked_pixels"]["saturated"] == 0 and summary["masked_pixels"]["flare"] == 0


@case("cli methane detect", "a missing --l2a-mask", "error")
def _(tmp: Path, s: Scene) -> None:
    result = cli(["methane", "detect", s.emit_path, "--out", tmp / "o", "--l2a-mask", tmp / "none.nc"])
    assert result.exit_code == 2 and "Traceback" not in result.output and "none.nc" in result.output


@case("cli synth emit", "--out inside a file", "error")
def _(tmp: Path, s: Scene) -> None:
    (tmp / "f").write_text("x")
    cli_fails(["synth", "emit", "--out", tmp / "f" / "o", "--lines", "16", "--samples", "16"], "f")


@case("cli models info", "an unknown preset", "error")
def _(tmp: Path, s: Scene) -> None:
    cli_fails(["models", "info", "no_such_model"], "no_such_model")


@case("cli train", "a missing tile store", "error")
def _(tmp: Path, s: Scene) -> None:
    args = ["train", "--model", "lessvit_test", "--data", tmp / "none.zarr", "--task", "mae", "--out", tmp / "run"]
    cli_fails(args, "none.zarr")


@case("cli train", "a config file that is not YAML", "error")
def _(tmp: Path, s: Scene) -> None:
    (tmp / "c.yaml").write_text("model: [unclosed\n")
    cli_fails(["train", "--config", tmp / "c.yaml"], "c.yaml")


TRAIN_OUT_OF_RANGE = [("--lr", "0"), ("--batch-size", "0"), ("--val-fraction", "1"), ("--num-workers", "-1")]
TRAIN_OUT_OF_RANGE += [("--weight-decay", "-0.1"), ("--seed", "-1"), ("--epochs", "0"), ("--warmup-steps", "-1")]


@pytest.mark.parametrize("option", TRAIN_OUT_OF_RANGE, ids=lambda o: " ".join(o))
def test_train_options_outside_their_range_are_refused(option: tuple[str, str], tmp_path: Path) -> None:
    result = cli(["train", "--model", "lessvit_test", "--data", tmp_path, "--task", "mae", *option])
    assert result.exit_code == 2 and "Traceback" not in result.output and option[0] in result.output


# ----------------------------------------------------------------------------------------------- damaged chunks
def corrupt_bytes(path: Path, offset: int, size: int) -> Path:
    """Overwrite ``size`` bytes at ``offset`` with a pattern no compressor produces there."""
    with open(path, "r+b") as fh:
        fh.seek(offset)
        fh.write(bytes([0xFF, 0x00]) * (size // 2))
    return path


def corrupt_tiff_tile(path: Path, tile: int = 0) -> Path:
    """Damage the middle of one compressed tile of the first page (the file still opens)."""
    import tifffile

    with tifffile.TiffFile(path) as tif:
        offset, count = tif.pages[0].dataoffsets[tile], tif.pages[0].databytecounts[tile]
    return corrupt_bytes(path, offset + count // 3, min(64, count // 3))


def emit_chunked(folder: Path, s: Scene) -> Path:
    """The corpus scene as a granule with gzip-compressed radiance chunks of 16 x 16 pixels."""
    from hyperplex.geo.synth import emit_scene, write_emit_scene

    synth = emit_scene(lines=32, samples=32, plumes=1, plume_strength=3000.0, plume_size=4.0, seed=1)
    return write_emit_scene(synth, folder, "chunked", chunks=(16, 16, 285), compression=4)["radiance"]


def corrupt_h5_chunk(path: Path, dataset: str = "radiance", chunk: int = 1) -> Path:
    import h5py

    with h5py.File(path, "r") as f:
        info = f[dataset].id.get_chunk_info(chunk)
    return corrupt_bytes(path, info.byte_offset + info.size // 2, 64)


def damaged_read(call: Callable[[], Any], path: Path, *says: str) -> None:
    """``call`` (a computation on a lazily opened file) raises a FileFormatError naming ``path`` and a block."""
    refuses(call, FileFormatError, "damaged", "block", *says, file=path)


@case("open_geotiff", "a corrupt deflate tile, found when computing", "error")
def _(tmp: Path, s: Scene) -> None:
    from hyperplex.common.channels import ChannelSet
    from hyperplex.geo.io import write_geotiff_cube

    data, wl, fw = swir(s)
    from rasterio.transform import from_origin

    path = write_geotiff_cube(data, ChannelSet.from_wavelengths(wl, fw), tmp / "cube.tif", crs="EPSG:32613",
                              transform=from_origin(500000, 3600000, 60, 60))  # fmt: skip
    cube = _open_geotiff(corrupt_tiff_tile(path))  # opens: the tile is read only on compute
    damaged_read(lambda: cube.values, path)
    damaged_read(lambda: _filter("matched_filter")(cube), path)


@case("cli methane detect", "a GeoTIFF with a corrupt deflate tile", "error")
def _(tmp: Path, s: Scene) -> None:
    from hyperplex.common.channels import ChannelSet
    from hyperplex.geo.io import write_geotiff_cube

    path = write_geotiff_cube(s.cube, ChannelSet.from_wavelengths(s.wavelengths, s.fwhm), tmp / "cube.tif")
    corrupt_tiff_tile(path)
    cli_fails(["methane", "detect", path, "--out", tmp / "o", "-q"], str(path), "damaged", "block")


@case("open_emit", "a corrupt gzip chunk, found when computing (lazily indexed)", "error")
def _(tmp: Path, s: Scene) -> None:
    path = corrupt_h5_chunk(emit_chunked(tmp, s))
    ds = _open_emit(path)
    assert np.isfinite(ds["radiance"][:, :16, :16].values).all()  # the chunks left whole still read
    damaged_read(lambda: ds["radiance"].values, path, "'radiance'")


@case("open_emit", "a corrupt gzip chunk, found when computing (dask)", "error")
def _(tmp: Path, s: Scene) -> None:
    path = corrupt_h5_chunk(emit_chunked(tmp, s))
    ds = _open_emit(path, chunks={})
    damaged_read(lambda: ds["radiance"].values, path)
    damaged_read(lambda: _filter("mag1c")(ds["radiance"]), path)


@case("open_emit", "a damaged object header (a group's HDF5 metadata)", "error")
def _(tmp: Path, s: Scene) -> None:
    import h5py

    path = tmp / "g.nc"
    shutil.copy(s.emit_path, path)
    with h5py.File(path, "r") as f:
        header = h5py.h5o.get_info(f["sensor_band_parameters"].id).addr
    corrupt_bytes(path, header + 4, 16)
    refuses(lambda: _open_emit(path), FileFormatError, "damaged", "HDF5", file=path)
    cli_fails(["methane", "detect", path, "--out", tmp / "o", "-q"], str(path), "damaged")


@case("cli methane detect", "an EMIT granule with a corrupt gzip chunk", "error")
def _(tmp: Path, s: Scene) -> None:
    path = corrupt_h5_chunk(emit_chunked(tmp, s))
    cli_fails(["methane", "detect", path, "--out", tmp / "o", "-q"], str(path), "damaged", "radiance")
    assert not list((tmp / "o").glob("chunked_*"))


@case("open_image", "an OME-Zarr with a corrupt chunk, found when computing", "error")
def _(tmp: Path, s: Scene) -> None:
    store = ome_zarr(tmp)
    (store / "0" / "c" / "1" / "0" / "0").write_bytes(b"not a zstd frame" * 4)
    image = _open_image(store)
    assert np.asarray(image.levels[0][0]).shape == (64, 64)  # the other channel still reads
    damaged_read(lambda: np.asarray(image.levels[0]), store, "array '0'")


@case("open_image", "an OME-TIFF with a corrupt compressed tile, found when computing", "error")
def _(tmp: Path, s: Scene) -> None:
    path = corrupt_tiff_tile(ome_tiff(tmp))
    image = _open_image(path)
    damaged_read(lambda: np.asarray(image.levels[0]), path)


# ----------------------------------------------------------------------------------------------- degenerate sizes
TINY_SCENES = {"a 1x1 scene": (1, 1), "one line": (1, 32), "one sample": (32, 1), "a 2x2 scene": (2, 2)}

for _name, _size in TINY_SCENES.items():

    @case("cli methane detect", _name, "error")
    def _(tmp: Path, s: Scene, size: tuple[int, int] = _size) -> None:
        envi_pair(tmp, s.cube[:, : size[0], : size[1]], s.wavelengths, s.fwhm)
        args = ["methane", "detect", tmp / "cube.img", "--out", tmp / "o", "-q"]
        cli_fails(args, str(tmp / "cube.img"), "too few pixels for background statistics", "need >= 50")
        assert not list((tmp / "o").glob("cube_*"))


@case("cli methane detect", "one line of 64 samples, per-column statistics", "error")
def _(tmp: Path, s: Scene) -> None:
    envi_pair(tmp, np.concatenate([s.cube[:, :1], s.cube[:, 1:2]], axis=2), s.wavelengths, s.fwhm)
    cli_fails(["methane", "detect", tmp / "cube.img", "--out", tmp / "o", "-q"], "cube.img", "too few lines",
              "--group tile")  # fmt: skip


@case("methane detect", "a 16x16 crop around the plume (short detector columns)", "warning")
def _(tmp: Path, s: Scene) -> None:
    from hyperplex.geo.detect import detect_scene

    row, col = np.unravel_index(np.argmax(s.truth), s.truth.shape)
    r0, c0 = (int(np.clip(v - 8, 0, n - 16)) for v, n in zip((row, col), s.cube.shape[1:]))
    hdr = envi_pair(tmp, s.cube[:, r0 : r0 + 16, c0 : c0 + 16], s.wavelengths, s.fwhm)
    summary = warns(lambda: detect_scene(hdr.with_suffix(".img"), tmp / "o"), "fewer valid pixels than bands")
    assert summary["plume_count"] == 1 and summary["plumes"][0]["max_ppmm"] > 0.5 * s.plume_peak


def he_tiff(folder: Path, height: int, width: int) -> Path:
    """An RGB TIFF of H&E-like colours (pink stroma, purple nuclei), ``height`` x ``width`` pixels."""
    import tifffile

    rng = np.random.default_rng(3)
    pixels = np.array([230, 150, 190]) - rng.integers(0, 60, (height, width, 1)) * np.array([1, 1.5, 0.5])
    path = folder / f"he_{height}x{width}.tif"
    tifffile.imwrite(path, np.clip(pixels, 0, 255).astype(np.uint8), photometric="rgb")
    return path


for _size in ((1, 1), (8, 8), (1, 40)):

    @case("cli bio predict-mif", f"a {_size[0]}x{_size[1]} H&E image", "error")
    def _(tmp: Path, s: Scene, size: tuple[int, int] = _size) -> None:
        path = he_tiff(tmp, *size)
        cli_fails(["bio", "predict-mif", path, "--out", tmp / "p.ome.zarr", "--quiet"], str(path),
                  "too few pixels", "need >= 16x16")  # fmt: skip
        assert not list(tmp.glob("p.*"))


@case("cli bio predict-mif", "a 24x24 H&E image (smaller than one tile)", "warning")
def _(tmp: Path, s: Scene) -> None:
    from hyperplex.bio.mif_pairs import intensity
    from hyperplex.bio.predict_mif import load_mif_model, predict_mif
    from hyperplex.common.models import predict_markers

    path, model = he_tiff(tmp, 24, 24), load_mif_model()
    result = warns(lambda: predict_mif(path, tmp / "p.ome.zarr", model=model), "smaller than one", "tile")
    got = np.asarray(_open_image(result.zarr).levels[0]).astype(float)
    want, _ = predict_markers(model, np.asarray(_open_image(path).levels[0]), 32, 0)
    assert got.shape == (len(result.markers), 24, 24)
    np.testing.assert_allclose(got, np.rint(intensity(want) * 255), atol=1)


# ----------------------------------------------------------------------------------------------- output folders
@case("cli methane detect", "--out holds another method's products", "error")
def _(tmp: Path, s: Scene) -> None:
    from hyperplex.common.errors import OutputExistsError
    from hyperplex.geo.detect import DetectConfig, detect_scene

    out = tmp / "o"
    out.mkdir()
    (out / "scene_run.json").write_text(json.dumps({"method": "mag1c", "status": "complete"}))
    refuses(lambda: detect_scene(s.emit_path, out, DetectConfig(method="cem")), OutputExistsError, "'mag1c'",
            "--overwrite", "--out", file=out)  # fmt: skip
    cli_fails(["methane", "detect", s.emit_path, "--out", out, "--method", "cem", "-q"], str(out), "'mag1c'",
              "--overwrite", "another --out")  # fmt: skip


# ----------------------------------------------------------------------------------------------- the tests
@pytest.mark.parametrize("entry", CASES, ids=[c.id for c in CASES])
def test_corpus_case(entry: Case, tmp_path: Path, scene: Scene) -> None:
    entry.run(tmp_path, scene)


def test_the_corpus_is_large_and_covers_every_entry_point() -> None:
    entries = {c.entry for c in CASES}
    assert len(CASES) >= 80, len(CASES)
    expected = {"open_envi", "open_geotiff", "open_emit", "open_cube", "open_image", "napari reader", "napari writer",
                "load_model", "create_model", "cli methane detect", "cli train", "cli models info", "cli synth emit",
                *FILTERS}  # fmt: skip
    assert expected <= entries, expected - entries
    assert {c.outcome for c in CASES} == {"error", "warning", "result"}

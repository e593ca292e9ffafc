"""The synthetic tissue's truth is consistent with its pixels, and the generator is deterministic."""

import numpy as np
import pytest

from hyperplex.bio.synth import MARKERS, marker_panel, tissue
from hyperplex.bio.synth.render import compartment_labels
from hyperplex.common.errors import InvalidParameterError


@pytest.fixture(scope="module")
def small():
    return tissue(size=192, markers=12, seed=3)


def _cell_means(image, cells, count):
    area = np.bincount(cells.ravel(), minlength=count + 1)[1:]
    return np.stack(
        [np.bincount(cells.ravel(), ch.ravel().astype(float), minlength=count + 1)[1:] / area for ch in image], axis=1
    )


def test_shapes_types_and_channels(small):
    c, h, w = small.image.shape
    assert (c, h, w) == (12, 192, 192) and small.image.dtype == np.uint16
    assert small.he.shape == (3, 192, 192) and small.he.dtype == np.uint8
    assert list(small.channels) == [m.name for m in MARKERS[:12]] and small.channels.colors is not None
    assert small.expression.shape == (small.count, 12) and small.count > 50
    assert set(np.unique(small.cells)) == set(range(small.count + 1))
    # nuclei sit inside their own cell
    inside = small.nuclei > 0
    assert np.all(small.cells[inside] == small.nuclei[inside])


def test_measured_cell_means_match_known_expression_without_blur():
    """No PSF: the per-cell mean over the mask minus background equals the truth within shot/read noise."""
    sharp = tissue(size=160, markers=12, seed=3, he=False, psf_sigma_px=0)
    measured = sharp.cell_means()
    area = np.bincount(sharp.cells.ravel())[1:, None]
    # standard error of a cell mean: sqrt(shot variance (signal + background) + read variance 9) / sqrt(area)
    sigma = np.sqrt(sharp.expression + sharp.background + 9) / np.sqrt(area)
    z = (measured - sharp.expression) / sigma
    assert np.all(np.abs(z) < 5.5)  # rounding to integer counts adds a little
    assert abs(z.mean()) < 0.2 and 0.8 < z.std() < 1.2  # unbiased, and the noise is what the model says


def test_measured_cell_means_with_blur_keep_the_known_ranking(small):
    """With the PSF, cell means still follow the truth (r > 0.98); blur costs membrane markers about 20%."""
    measured = small.cell_means()
    np.testing.assert_allclose(measured, _cell_means(small.image, small.cells, small.count) - small.background)
    truth = small.expression
    for j, name in enumerate(small.channels):
        assert np.corrcoef(measured[:, j], truth[:, j])[0, 1] > 0.98, name
        bright = truth[:, j] > 0.3 * truth[:, j].max()
        ratio = np.median(measured[bright, j] / truth[bright, j])
        assert 0.72 < ratio < 1.03, (name, small.compartments[j], ratio)


def test_truth_is_exact_on_the_clean_signal():
    """The truth equals the generative expression: the renderer preserves every cell's mean exactly."""
    from hyperplex.bio.synth.expression import draw_expression
    from hyperplex.bio.synth.layout import make_layout
    from hyperplex.bio.synth.render import render_clean

    rng = np.random.default_rng(0)
    layout = make_layout(rng, 128, None)
    panel = marker_panel(6)
    expected = draw_expression(rng, layout.types, panel) * 1000
    clean = render_clean(layout, panel, expected, rng)
    np.testing.assert_allclose(_cell_means(clean, layout.cells, layout.count), expected, rtol=1e-4)
    # compartments: nuclear markers only in nuclei (or the whole cell where a nucleus was cut away)
    comps = compartment_labels(layout)
    dapi = clean[0]
    assert np.all(dapi[comps["nucleus"] == 0] == 0)


def test_cell_types_carry_their_markers(small):
    """Known biology: PanCK on tumour cells, CD20 on B cells, CD3 on T cells, CD68 on macrophages."""
    expr, types, names = small.expression, small.cell_types, list(small.channels)

    def mean(marker, kind, inside=True):
        rows = (types == kind) if inside else (types != kind)
        return expr[rows, names.index(marker)].mean()

    for marker, kind in [("PanCK", "tumor"), ("CD20", "b_cell"), ("CD8", "cd8_t"), ("CD68", "macrophage")]:
        if np.any(types == kind):
            assert mean(marker, kind) > 10 * mean(marker, kind, inside=False), marker


def test_he_nuclei_are_dark_and_purple(small):
    he = small.he.astype(float)
    nuc, cyto = small.nuclei > 0, (small.cells > 0) & (small.nuclei == 0)
    assert he[:, nuc].mean() < he[:, cyto].mean() - 30  # hematoxylin absorbs more than eosin
    r, g, b = he[:, cyto].mean(axis=1)
    assert r > g and b > g  # eosin: pink


def test_deterministic_and_cell_limit():
    a, b = tissue(96, 3, seed=5), tissue(96, 3, seed=5)
    np.testing.assert_array_equal(a.image, b.image)
    np.testing.assert_array_equal(a.he, b.he)
    assert not np.array_equal(a.image, tissue(96, 3, seed=6).image)
    few = tissue(128, 2, cells=20, seed=1, he=False)
    assert 15 <= few.count <= 20 and few.he.size == 0


def test_panel_limits():
    assert len(MARKERS) == 60 and len({m.name for m in MARKERS}) == 60
    assert tissue(64, 60, seed=0, he=False).image.shape[0] == 60
    with pytest.raises(InvalidParameterError, match="markers"):
        marker_panel(61)
    with pytest.raises(InvalidParameterError, match="size"):
        tissue(size=8)


def _he_cell_features(sample):
    """Per-cell H&E features: mean RGB over cell, nucleus and cytoplasm, areas, and their squares."""
    count, cells, nuclei = sample.count, sample.cells.ravel(), sample.nuclei.ravel()
    cyto = np.where(nuclei == 0, cells, 0)
    he = sample.he.reshape(3, -1).astype(float)
    feats = []
    for lab in (cells, nuclei, cyto):
        area = np.maximum(np.bincount(lab, minlength=count + 1)[1:], 1)
        feats += [np.bincount(lab, ch, minlength=count + 1)[1:] / area for ch in he] + [area]
    x = np.column_stack(feats)
    return np.column_stack([np.ones(count), x, x**2])


def test_he_morphology_predicts_markers():
    """The H&E is informative: a quadratic model of per-cell H&E features predicts lineage markers on held-out
    cells, but not DAPI, whose per-cell variation is independent of morphology."""
    sample = tissue(size=384, markers=8, seed=4)
    x = _he_cell_features(sample)
    order = np.random.default_rng(0).permutation(sample.count)
    train, test = order[: sample.count // 2], order[sample.count // 2 :]
    r2 = {}
    for j, name in enumerate(sample.channels):
        y = np.log1p(sample.expression[:, j])
        w, *_ = np.linalg.lstsq(x[train], y[train], rcond=None)
        resid = y[test] - x[test] @ w
        r2[name] = 1 - (resid**2).sum() / ((y[test] - y[test].mean()) ** 2).sum()
    assert r2["PanCK"] > 0.6 and r2["CD68"] > 0.45 and r2["CD3"] > 0.45, r2
    assert r2["DAPI"] < 0.2, r2


def test_fewer_markers_give_the_same_tissue_and_first_channels():
    """The panel size changes only which channels exist: cells, H&E and channel j stay identical."""
    few, many = tissue(96, 3, seed=9), tissue(96, 10, seed=9)
    np.testing.assert_array_equal(few.cells, many.cells)
    np.testing.assert_array_equal(few.he, many.he)
    np.testing.assert_array_equal(few.image, many.image[:3])
    np.testing.assert_array_equal(few.expression, many.expression[:, :3])

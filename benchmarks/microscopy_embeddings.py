"""Do the shipped ChAda-ViT's cell embeddings mean something? kNN cell-type macro-F1 on held-out tissue.

Two kinds of held-out tissue, never seen in pretraining:

- ``ours``: ``hyperplex.bio.synth.tissue`` (seeds 0-99; pretraining used seeds from 1000), 16 markers;
- ``foreign``: :func:`foreign_tissue`, an independent generator written here: Voronoi cells around random
  seeds with patchy type fields, its own cell types and 14 markers with random profiles, partial and
  dim expression, spill-over between channels, autofluorescent matrix and granules, blur, shot noise.

Each cell gets a vector from every method, averaged over its mask:

- ``intensity``: the per-cell mean of each (standardised) channel;
- ``patch means``: channel means pooled over the model's own patch grid (8x8 px), upsampled bilinearly;
- ``untrained``: the same architecture with random weights;
- ``untrained, slots std 1``: the same, with channel-slot embeddings drawn with std 1;
- ``untrained, slots std 1, mean patches``: the same again with a patch projection that reads only each
  channel's patch mean (``--patch-init mean`` of the pretraining);
- ``untrained, slots std 1, mean patches + offset 2``: the same with tokens reading ``patch mean + 2``
  (``--patch-offset 2``, the shipped run's starting point);
- ``pretrained``: ``create_model("chadavit_tiny_patch8", pretrained=True)``;
- ``candidate`` (with ``--checkpoint``): an encoder file, e.g. a new pretraining run before it is shipped;

the models' vectors come from ``tiled_feature_map`` (32 px tiles, the pretraining size, 8 px overlap) upsampled
bilinearly like the patch means. Cells of half the tissues are the kNN reference, the other half are
queried, and the halves swap; the score is the macro-F1 over cell types. "half" keeps a random half of the
markers (three draws, averaged), the same for every method. Two kNN protocols, applied alike to every
method (:data:`PROTOCOLS`): ``cosine``, the standard evaluation of self-supervised features (DINO's weighted
kNN: centred by the reference mean, L2-normalised, k=20, votes weighted by ``exp(cos / 0.07)``), by which the
goals are judged; and ``zscore`` (z-scored by the reference, Euclidean, majority of k=7), the first version.

    OMP_NUM_THREADS=1 python benchmarks/microscopy_embeddings.py --tissues 4 --out /tmp/chada/eval.json
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage

PRESET = "chadavit_tiny_patch8"
METHODS = (
    "intensity",
    "patch means",
    "untrained",
    "untrained, slots std 1",
    "untrained, slots std 1, mean patches",
    "untrained, slots std 1, mean patches + offset 2",
    "pretrained",
)
#: Standard deviation of the channel-slot embeddings the pretraining starts from (``--slot-std``; the
#: architecture's own initialisation is 0.02); the "untrained, slots std 1" row is that starting point.
SLOT_STD = 1.0
#: ``--patch-offset`` of the shipped pretraining: its patch projection starts as ``g * (patch mean + 2)``.
PATCH_OFFSET = 2.0


@dataclass
class Tissue:
    """A held-out image with its truth: (C, H, W) counts, (H, W) cell labels 1..K, (K,) type names."""

    image: np.ndarray
    cells: np.ndarray
    types: np.ndarray


# ---------------------------------------------------------------------------------------------- foreign tissue
def _field(rng: np.random.Generator, shape: tuple[int, int], sigma: float) -> np.ndarray:
    f = ndimage.gaussian_filter(rng.standard_normal(shape), sigma, mode="reflect")
    return (f - f.mean()) / (f.std() + 1e-12)


def _voronoi_cells(rng: np.random.Generator, size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cell labels (Voronoi regions clipped to a per-cell radius), seed points, and per-cell radius."""
    n = int(size * size / 150)
    points = rng.uniform(0, size, (n, 2))
    holes = _field(rng, (size, size), size / 8) < -1.0  # empty slide
    keep = ~holes[points[:, 0].astype(int), points[:, 1].astype(int)]
    points = points[keep]
    radius = rng.uniform(4.5, 9.0, len(points))
    seeds = np.ones((size, size), bool)
    seeds[points[:, 0].astype(int), points[:, 1].astype(int)] = False
    dist, (iy, ix) = ndimage.distance_transform_edt(seeds, return_indices=True)
    owner = np.full((size, size), -1)
    owner[points[:, 0].astype(int), points[:, 1].astype(int)] = np.arange(len(points))
    nearest = owner[iy, ix]
    cells = np.where(dist <= radius[nearest], nearest + 1, 0)
    big = np.where(cells > 0, cells, cells.max() + 1)
    cells = np.where(ndimage.minimum_filter(big, 3) == ndimage.maximum_filter(cells, 3), cells, 0)  # 1-px gaps
    return cells, points, radius


def _profiles(rng: np.random.Generator, markers: int, types: int) -> tuple[np.ndarray, np.ndarray]:
    """Per type x marker: level (0 absent, dim 0.15-0.4, bright 0.6-1.2) and fraction of cells expressing."""
    level = np.zeros((types, markers))
    fraction = np.ones((types, markers))
    level[:, 0] = 1.0  # a nuclear stain
    order = rng.permutation(np.arange(1, markers))
    for t in range(types):
        own = order[t % len(order)]
        level[t, own] = rng.uniform(0.6, 1.2)
        shared = rng.choice(np.arange(1, markers), 2, replace=False)
        level[t, shared] = np.maximum(level[t, shared], rng.uniform(0.15, 0.4, 2))
        partial = rng.choice(np.arange(1, markers), 1)
        level[t, partial] = rng.uniform(0.5, 1.0)
        fraction[t, partial] = rng.uniform(0.3, 0.7)
    return level, fraction


def _compartments(cells: np.ndarray, points: np.ndarray, radius: np.ndarray) -> dict[str, np.ndarray]:
    yy, xx = np.indices(cells.shape)
    k = np.maximum(cells - 1, 0)
    centre_d = np.hypot(yy - points[k, 0], xx - points[k, 1])
    inside = cells > 0
    nucleus = inside & (centre_d <= 0.45 * radius[k])
    membrane = inside & (ndimage.minimum_filter(cells, 3) != cells)  # the rim next to the 1-px gaps
    return {"nucleus": nucleus, "membrane": membrane & ~nucleus, "cytoplasm": inside & ~nucleus & ~membrane}


def foreign_tissue(size: int = 256, markers: int = 14, seed: int = 0, types: int = 6) -> Tissue:
    """An independent synthetic multiplex tissue (see the module docstring); same seed, same tissue."""
    rng = np.random.default_rng([seed, 7177])
    cells, points, radius = _voronoi_cells(rng, size)
    fields = np.stack([_field(rng, (size, size), size / 10) for _ in range(types)])
    py, px = points[:, 0].astype(int), points[:, 1].astype(int)
    cell_type = np.argmax(fields[:, py, px] + 0.6 * rng.standard_normal((types, len(points))), axis=0)
    level, fraction = _profiles(np.random.default_rng(31337), markers, types)  # the panel: same in every tissue
    on = rng.random((len(points), markers)) < fraction[cell_type]
    expr = level[cell_type] * on * rng.lognormal(0, 0.3, (len(points), markers)) + 0.03
    comps = _compartments(cells, points, radius)
    where = np.random.default_rng(31338).choice(["nucleus", "membrane", "cytoplasm"], markers)
    where[0] = "nucleus"
    k = np.maximum(cells - 1, 0)
    clean = np.stack([expr[k, j] * comps[where[j]] * 2.0 for j in range(markers)])
    spill = np.eye(markers) + np.diag(np.random.default_rng(31339).uniform(0.05, 0.15, markers - 1), 1)  # j -> j + 1
    mixed = np.tensordot(spill.T, clean, axes=1)
    matrix = np.clip(_field(rng, (size, size), 3.0), 0, None) * (cells == 0)
    granules = ndimage.gaussian_filter((rng.random((size, size)) < 0.002).astype(float), 1.5) * 40
    auto = np.linspace(0.35, 0.05, markers)[:, None, None] * (matrix + granules)[None]
    signal = ndimage.gaussian_filter(mixed + auto, (0, 1.4, 1.4)) * rng.uniform(300, 1500, (markers, 1, 1))
    image = rng.poisson(signal + rng.uniform(50, 120, (markers, 1, 1))).astype(np.float32)
    labels = np.array([f"type{t}" for t in range(types)])
    return Tissue(image, cells, labels[cell_type])


def our_tissue(size: int = 256, markers: int = 16, seed: int = 0) -> Tissue:
    """Held-out tissue of ``hyperplex.bio.synth`` (seeds below 1000 were not used in pretraining)."""
    from hyperplex.bio.synth import tissue

    t = tissue(size=size, markers=markers, seed=seed, he=False)
    return Tissue(t.image.astype(np.float32), t.cells, np.asarray(t.cell_types))


# ---------------------------------------------------------------------------------------------- cell vectors
def cell_means(data: np.ndarray, cells: np.ndarray) -> np.ndarray:
    """(K, D) mean of each (D, H, W) plane over each cell's mask (row k - 1 for cell k)."""
    count = int(cells.max())
    flat = cells.ravel()
    area = np.maximum(np.bincount(flat, minlength=count + 1)[1:], 1)
    return np.stack([np.bincount(flat, d.ravel(), minlength=count + 1)[1:] / area for d in data], axis=1)


def upsample(grid: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Bilinear (D, h, w) -> (D, H, W), pixel centres aligned (the feature cell covers its patch)."""
    import torch
    import torch.nn.functional as F

    t = torch.from_numpy(np.ascontiguousarray(grid, dtype=np.float32))[None]
    size = (grid.shape[1] * (shape[0] // grid.shape[1] or 1), grid.shape[2] * (shape[1] // grid.shape[2] or 1))
    out = F.interpolate(t, size=size, mode="bilinear", align_corners=False)[0].numpy()
    return out[:, : shape[0], : shape[1]]


def patch_means(image: np.ndarray, patch: int) -> np.ndarray:
    """Channel means over the ``patch`` x ``patch`` grid, (C, H / patch, W / patch)."""
    c, h, w = image.shape
    return (
        image[:, : h // patch * patch, : w // patch * patch]
        .reshape(c, h // patch, patch, w // patch, patch)
        .mean(axis=(2, 4))
    )


def model_vectors(model, image: np.ndarray, cells: np.ndarray) -> np.ndarray:
    """Per-cell mean of the model's feature map (32 px tiles, 8 px overlap) over each cell."""
    from hyperplex.common.channels import ChannelSet
    from hyperplex.common.models import tiled_feature_map
    from hyperplex.common.progress import quiet

    channels = ChannelSet.from_names([f"m{i}" for i in range(image.shape[0])])
    with quiet():
        features = tiled_feature_map(model, image, channels, tile_size=32, overlap=8, normalize=False)
    return cell_means(upsample(features, image.shape[1:]), cells)


def vectors(method: str, image: np.ndarray, cells: np.ndarray, models: dict) -> np.ndarray:
    """Per-cell vectors of one method on a standardised image."""
    if method == "intensity":
        return cell_means(image, cells)
    if method == "patch means":
        return cell_means(upsample(patch_means(image, 8), image.shape[1:]), cells)
    return model_vectors(models[method], image, cells)


# ---------------------------------------------------------------------------------------------- scoring
#: kNN protocols: ``cosine`` (the default) is the weighted kNN of DINO's ``eval_knn.py`` (Wu et al. 2018):
#: vectors centred by the reference mean and L2-normalised, cosine similarity, k=20 neighbours voting with
#: weight ``exp(similarity / 0.07)``; ``zscore`` (the first version of this benchmark): vectors z-scored by the
#: reference, Euclidean distance, majority of k=7. Both treat every method's vectors alike.
PROTOCOLS = ("cosine", "zscore")


def _votes(codes: np.ndarray, weights: np.ndarray, classes: int) -> np.ndarray:
    """(Q, classes) summed ``weights`` (Q, k) of the neighbours' class ``codes`` (Q, k)."""
    votes = np.zeros((len(codes), classes))
    np.add.at(votes, (np.repeat(np.arange(len(codes)), codes.shape[1]), codes.ravel()), weights.ravel())
    return votes


def knn_predict(
    ref: np.ndarray, ref_labels: np.ndarray, query: np.ndarray, protocol: str = "cosine", k: int | None = None
) -> np.ndarray:
    """Class of each query vector by a vote of its nearest reference vectors (see :data:`PROTOCOLS`)."""
    classes, codes = np.unique(ref_labels, return_inverse=True)
    mean = ref.mean(0)
    if protocol == "cosine":
        k = k or 20
        a, b = ref - mean, query - mean
        a = a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)
        b = b / np.maximum(np.linalg.norm(b, axis=1, keepdims=True), 1e-12)
        sim = b @ a.T
        nearest = np.argsort(-sim, axis=1)[:, :k]
        weights = np.exp(np.take_along_axis(sim, nearest, axis=1) / 0.07)
    elif protocol == "zscore":
        k = k or 7
        std = ref.std(0)
        std = np.where(std > 0, std, 1.0)
        a, b = (ref - mean) / std, (query - mean) / std
        d = (b**2).sum(1)[:, None] - 2 * b @ a.T + (a**2).sum(1)[None]
        nearest = np.argsort(d, axis=1)[:, :k]
        weights = np.ones(nearest.shape)
    else:
        raise ValueError(f"unknown protocol {protocol!r}; use one of {PROTOCOLS}")
    return classes[np.argmax(_votes(codes[nearest], weights, len(classes)), axis=1)]


def macro_f1(truth: np.ndarray, pred: np.ndarray) -> float:
    """Unweighted mean over the true classes of the per-class F1."""
    scores = []
    for c in np.unique(truth):
        tp = np.sum((pred == c) & (truth == c))
        fp, fn = np.sum((pred == c) & (truth != c)), np.sum((pred != c) & (truth == c))
        scores.append(2 * tp / max(2 * tp + fp + fn, 1))
    return float(np.mean(scores))


def two_fold_f1(per_tissue: list[np.ndarray], labels: list[np.ndarray], protocol: str = "cosine") -> float:
    """Reference = first half of the tissues, query = second half, then swapped; mean macro-F1."""
    half = len(per_tissue) // 2
    folds = [(slice(0, half), slice(half, None)), (slice(half, None), slice(0, half))]
    scores = []
    for ref, query in folds:
        x_ref, y_ref = np.concatenate(per_tissue[ref]), np.concatenate(labels[ref])
        x_q, y_q = np.concatenate(per_tissue[query]), np.concatenate(labels[query])
        scores.append(macro_f1(y_q, knn_predict(x_ref, y_ref, x_q, protocol)))
    return float(np.mean(scores))


# ---------------------------------------------------------------------------------------------- the table
def _untrained(slot_std: float | None = None, patch_offset: float | None = None):
    """The preset with random weights (seed 0); slots drawn with ``slot_std``; a patch-mean projection when
    ``patch_offset`` is given (``mean_patch_projection`` with that offset)."""
    import torch

    from hyperplex.common.models import create_model
    from hyperplex.common.train.chada_mim import mean_patch_projection

    torch.manual_seed(0)
    model = create_model(PRESET).eval()
    if slot_std is not None:
        torch.nn.init.normal_(model.channel_token, std=slot_std)
    if patch_offset is not None:
        mean_patch_projection(model.patch_embed.proj, offset=patch_offset)
    return model


def load_models(checkpoint: Path | None = None) -> dict:
    """The pretrained preset, the same architecture with random weights and, given, the encoder file ``checkpoint``."""
    from hyperplex.common.models import create_model, load_model

    candidate = {} if checkpoint is None else {"candidate": load_model(checkpoint).eval()}
    return {
        "pretrained": create_model(PRESET, pretrained=True),
        "untrained": _untrained(),
        "untrained, slots std 1": _untrained(SLOT_STD),
        "untrained, slots std 1, mean patches": _untrained(SLOT_STD, 0.0),
        "untrained, slots std 1, mean patches + offset 2": _untrained(SLOT_STD, PATCH_OFFSET),
        **candidate,
    }


def panel_scores(tissues: list[Tissue], keep: np.ndarray, models: dict) -> dict:
    """``{protocol: {method: macro-F1}}`` of every method on the tissues restricted to channels ``keep``."""
    from hyperplex.common.train.panels import standardize_channels

    images = [standardize_channels(t.image[keep]) for t in tissues]
    valid = [np.bincount(t.cells.ravel(), minlength=t.cells.max() + 1)[1:] >= 8 for t in tissues]
    labels = [t.types[v] for t, v in zip(tissues, valid)]
    out: dict[str, dict[str, float]] = {p: {} for p in PROTOCOLS}
    for method in METHODS + tuple(m for m in models if m not in METHODS):
        per = [vectors(method, im, t.cells, models)[v] for im, t, v in zip(images, tissues, valid)]
        for protocol in PROTOCOLS:
            out[protocol][method] = two_fold_f1(per, labels, protocol)
    return out


def evaluate(tissues: list[Tissue], models: dict, halves: int = 3, seed: int = 0) -> dict:
    """``{protocol: {method: {"full", "half", "drop"}}}``; "half" is the mean over ``halves`` random halves."""
    c = tissues[0].image.shape[0]
    rng = np.random.default_rng(seed)
    full = panel_scores(tissues, np.arange(c), models)
    half = [panel_scores(tissues, np.sort(rng.permutation(c)[: c // 2]), models) for _ in range(halves)]
    out = {}
    for p in PROTOCOLS:
        mean_half = {m: float(np.mean([h[p][m] for h in half])) for m in full[p]}
        out[p] = {m: {"full": full[p][m], "half": mean_half[m], "drop": full[p][m] - mean_half[m]} for m in full[p]}
    return out


def goals(scores: dict[str, dict[str, float]]) -> dict[str, bool]:
    """The issue's three goals for the pretrained model (the candidate when there is one)."""
    p = scores.get("candidate", scores["pretrained"])
    return {
        "pretrained >= untrained + 0.30": p["full"] >= scores["untrained"]["full"] + 0.30,
        "pretrained >= patch means": p["full"] >= scores["patch means"]["full"],
        "drop <= intensity drop + 0.05": p["drop"] <= scores["intensity"]["drop"] + 0.05,
    }


def table(results: dict) -> str:
    """Markdown table: one row per (protocol, tissue, method)."""
    lines = ["| kNN | tissue | method | F1 full panel | F1 half panel | drop |", "|---|---|---|---|---|---|"]
    for protocol, per_tissue in results.items():
        for name, scores in per_tissue.items():
            for method, s in scores.items():
                lines.append(
                    f"| {protocol} | {name} | {method} | {s['full']:.3f} | {s['half']:.3f} | {s['drop']:+.3f} |"
                )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tissues", type=int, default=4, help="held-out tissues per generator (even)")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--halves", type=int, default=3, help="random half panels averaged")
    parser.add_argument("--sets", default="ours,foreign", help="tissue generators: ours, foreign or both")
    parser.add_argument("--checkpoint", type=Path, default=None, help="also evaluate this encoder file")
    parser.add_argument("--out", type=Path, default=None, help="also write the scores as JSON")
    args = parser.parse_args()
    models = load_models(args.checkpoint)
    makers = {"ours": ("ours (16 markers)", our_tissue, 16), "foreign": ("foreign (14 markers)", foreign_tissue, 14)}
    sets = {}
    for key in args.sets.split(","):
        name, make, markers = makers[key.strip()]
        sets[name] = [make(args.size, markers, seed) for seed in range(args.tissues)]
    per_set = {name: evaluate(tissues, models, args.halves) for name, tissues in sets.items()}
    results = {p: {name: per_set[name][p] for name in sets} for p in PROTOCOLS}
    print(table(results))
    checks = {p: {name: goals(scores) for name, scores in results[p].items()} for p in PROTOCOLS}
    print(json.dumps(checks, indent=1))
    if args.out is not None:
        args.out.write_text(json.dumps({"scores": results, "goals": checks}, indent=1))


if __name__ == "__main__":
    main()

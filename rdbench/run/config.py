"""``RunConfig``: everything that defines one benchmark run, validated, serialisable, with a digest.

Every entry point builds one: the Luigi tasks from their parameters, notebooks and tests directly.
The parameters mirror ``RunBenchmark``'s (see the README); :meth:`RunConfig.validate` refuses a bad
one with a :class:`ConfigError` naming the parameter before any work is done.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from rdbench.metrics.registry import DEFAULT_METRICS, MetricError, expand_sets, parse_metrics

__all__ = ["ConfigError", "RunConfig"]

#: The anchor of BD-rates unless ``--anchor`` says otherwise.
DEFAULT_ANCHOR = "jpeg"


class ConfigError(ValueError):
    """A run configuration that cannot run: the message names the parameter and what is accepted."""


@dataclass(frozen=True)
class RunConfig:
    """One benchmark run: datasets × codecs × qualities, the metrics, where and how it runs."""

    datasets: tuple[str, ...] = ("sample",)
    codecs: tuple[str, ...] = ()  # () = the default set (rdbench.codecs.defaults)
    qualities: Mapping[str, tuple[float, ...]] = field(default_factory=dict)  # codec NAME → ladder
    metrics: tuple[str, ...] = DEFAULT_METRICS
    limit: int | None = None  # at most this many images per dataset
    images_per_shard: int | None = None  # None = automatic
    output_root: str = "reports"
    run_name: str = ""  # "" = derived from the configuration
    data_root: str = "datasets"
    weights_root: str = "codecs"
    device: str = "auto"
    batch_size: int = 0  # 0 = 8 on CUDA, else 1
    num_workers: int = 0  # 0 = one per core (per GPU on CUDA)
    runner: str = "FnApiRunner"
    beam_options: str = ""
    dask_address: str = ""
    anchor: str = DEFAULT_ANCHOR
    reference: tuple[str, ...] = ()
    reference_dataset: str = ""  # which published table a folder:/glob: dataset's overlays use
    strict: bool = False

    def __post_init__(self) -> None:  # lists (JSON, Luigi's tuples) become tuples, so the config hashes
        for name in ("datasets", "codecs", "reference"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        object.__setattr__(self, "metrics", expand_sets(self.metrics))  # "jpeg-ai" → its metrics
        ladders = {str(k): tuple(float(q) for q in v) for k, v in dict(self.qualities).items()}
        object.__setattr__(self, "qualities", ladders)

    # -- validation ----------------------------------------------------------------------------
    def validate(self) -> "RunConfig":
        """Check every parameter before any work; returns self.

        Raises :class:`ConfigError` whose one-line message names the first bad parameter, the bad
        value and what is accepted: datasets that do not resolve, unknown codecs or codec
        parameters, qualities for codecs not in the run or outside a codec's range, unknown
        metrics or metrics whose weights are absent, an anchor that is not a codec of the run, an
        unknown reference, nonsensical numbers, a device that is not here, and a run folder that
        holds a run of another configuration.
        """
        self._check_numbers()
        self._check_datasets()
        self._check_codecs()
        self._check_metrics()
        self._check_reports()
        self._check_device()
        self._check_run_folder()
        return self

    def _check_numbers(self) -> None:
        for name, minimum in (("limit", 1), ("images_per_shard", 1)):
            value = getattr(self, name)
            if value is not None and value < minimum:
                raise ConfigError(f"--{name.replace('_', '-')}: {value} is not allowed; give an integer ≥ {minimum}")
        for name in ("batch_size", "num_workers"):
            if getattr(self, name) < 0:
                raise ConfigError(f"--{name.replace('_', '-')}: {getattr(self, name)} is not allowed; "
                                  "give 0 (automatic) or a positive integer")

    def _check_datasets(self) -> None:
        from rdbench.datasets import DatasetError, get_dataset, is_local_spec
        from rdbench.datasets.catalog import is_catalogued, known_specs_message

        if not self.datasets:
            raise ConfigError('--datasets: empty; give at least one dataset spec, e.g. ["sample"]')
        for spec in self.datasets:
            if not is_local_spec(spec):
                if not is_catalogued(spec):
                    raise ConfigError(f"--datasets: unknown dataset {spec!r}; {known_specs_message()}, "
                                      "folder:PATH or glob:PATTERN")
                continue  # prepared by its own task before the run
            try:
                images = get_dataset(spec, self.data_root).images
            except DatasetError as exc:
                raise ConfigError(f"--datasets: {spec!r}: {exc}") from None
            if not images:
                raise ConfigError(f"--datasets: {spec!r} holds no image")

    def _check_codecs(self) -> None:
        from rdbench.codecs import CodecSpecError, get_codec

        codecs, specs = {}, set()
        for spec in self.codec_specs():
            try:
                codec = get_codec(spec)
                codec.check_runnable()  # an external codec's missing tool: one line, with the build command
            except CodecSpecError as exc:
                raise ConfigError(f"--codecs: {exc}") from None
            codecs.setdefault(codec.name, []).append(codec)
            specs |= {spec, codec.spec}
        for name, ladder in self.qualities.items():
            if name not in codecs:
                raise ConfigError(f"--qualities: codec {name!r} is not in the run; its codecs: {', '.join(codecs)}")
            if not ladder:
                raise ConfigError(f"--qualities: codec {name!r} has an empty list of qualities")
        for name, instances in codecs.items():
            for quality in self.qualities.get(name) or instances[0].default_qualities():
                try:
                    instances[0].check_quality(quality)
                except CodecSpecError as exc:
                    raise ConfigError(f"--qualities: {exc}") from None
        # The default anchor may be absent from a run (its BD-rates are then empty, with the reason);
        # a published anchor (ref:SLUG) is checked with the reference curves.
        if self.anchor.startswith("ref:"):
            return
        if self.anchor not in codecs and self.anchor not in specs and self.anchor != DEFAULT_ANCHOR:
            raise ConfigError(f"--anchor: {self.anchor!r} is not a codec of the run; give one of: {', '.join(codecs)}")

    def _check_metrics(self) -> None:
        from rdbench.metrics.registry import METRICS

        try:
            names = parse_metrics(self.metrics)
        except MetricError as exc:
            raise ConfigError(f"--metrics: {exc}") from None
        if any(METRICS[m].weights for m in names) or any(METRICS[m].level == "set" for m in names):
            from rdbench.codecs.weights import WeightsError
            from rdbench.metrics.perceptual import require_metric_weights

            self.use_weights_root()
            try:
                require_metric_weights(names)
            except (WeightsError, ImportError) as exc:
                raise ConfigError(f"--metrics: {_one_line(exc)}") from None

    def _check_reports(self) -> None:
        from rdbench.reports.reference import check_reference, check_reference_anchor

        try:  # unknown slugs, and slugs that no dataset of the run has a published table for
            check_reference(list(self.reference), list(self.datasets), self.reference_dataset)
        except ValueError as exc:
            raise ConfigError(f"--reference: {_one_line(exc)}") from None
        try:  # a published anchor (ref:SLUG) that some dataset of the run has no curve of
            check_reference_anchor(self.anchor, list(self.datasets), self.reference_dataset)
        except ValueError as exc:
            raise ConfigError(f"--anchor: {_one_line(exc)}") from None

    def _check_device(self) -> None:
        from rdbench.device import DeviceError, resolve_device

        try:
            resolve_device(self.device, uses_torch=self.uses_torch())
        except DeviceError as exc:
            raise ConfigError(f"--device: {exc}") from None

    def uses_torch(self) -> bool:
        """Whether any codec or metric of the run needs torch (a learned codec, a network metric).

        A run without one never imports torch, and ``--device auto`` is then the CPU: classical
        codecs run there whatever the machine has.
        """
        from rdbench.codecs import family
        from rdbench.metrics.registry import METRICS

        return (any(family(spec) != "classical" for spec in self.codec_specs())
                or any(METRICS[m].uses_torch for m in self.metrics))

    def _check_run_folder(self) -> None:
        """A run folder that holds another configuration is refused, naming the fields that differ."""
        from rdbench.run import folder

        plan = folder.join(self.run_dir(), "plan.json")
        if not folder.exists(plan):
            return
        before = folder.read_json(plan).get("configuration")
        if before is None:  # a folder from before configurations were recorded: the plan digest guards it
            return
        now = self.defining()
        differ = [f"{k} ({before.get(k)!r} there, {now[k]!r} now)" for k in sorted(now) if before.get(k) != now[k]]
        if differ:
            raise ConfigError(f"--run-name: run folder {self.run_dir()} holds a run of another configuration: "
                              f"{'; '.join(differ)}. Use another --run-name or delete the folder")

    # -- derived -------------------------------------------------------------------------------
    def codec_specs(self) -> list[str]:
        """The codecs of the run: as given, or the default set when none is."""
        if self.codecs:
            return list(self.codecs)
        from rdbench.codecs.defaults import default_codec_specs

        self.use_weights_root()
        return default_codec_specs()[0]

    def codecs_left_out(self) -> dict[str, str]:
        """Codecs of the default set left out here, with the reason (empty when codecs were given)."""
        if self.codecs:
            return {}
        from rdbench.codecs.defaults import default_codec_specs

        self.use_weights_root()
        return default_codec_specs()[1]

    def use_weights_root(self) -> None:
        """Make this process's codecs and metrics find weights under :attr:`weights_root`.

        They read the root from the environment, which the Beam worker processes this one starts
        inherit; a root the user already set in the environment wins.
        """
        from rdbench.codecs.weights import ENV_ROOT

        os.environ.setdefault(ENV_ROOT, os.path.abspath(self.weights_root))

    def run_id(self) -> str:
        """The run folder's name: ``run_name``, else a slug of the datasets and a hash of the config."""
        if self.run_name:
            return self.run_name
        config: list[Any] = [list(self.datasets), self.codec_specs(), dict(self.qualities), self.limit]
        if tuple(self.metrics) != DEFAULT_METRICS:
            config.append(sorted(self.metrics))
        text = json.dumps(config, sort_keys=True, default=list)
        slug = re.sub(r"[^A-Za-z0-9]+", "-", "+".join(self.datasets))[:40].strip("-")
        return f"{slug}-{hashlib.sha256(text.encode()).hexdigest()[:8]}"

    def run_dir(self) -> str:
        """Where the run's folder is (an absolute path, so worker processes agree, or a URL)."""
        from rdbench.run import folder

        root = self.output_root if "://" in self.output_root else os.path.abspath(self.output_root)
        return folder.join(root, self.run_id())

    def effective_batch_size(self, device: str) -> int:
        return self.batch_size or (8 if device.startswith("cuda") else 1)

    def wants_set_metrics(self) -> bool:
        from rdbench.metrics.registry import METRICS

        return any(METRICS[m].level == "set" for m in self.metrics)

    # -- serialisation -------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able values (lists, dicts), as run.json records them."""
        out = dataclasses.asdict(self)
        for name, value in out.items():
            if isinstance(value, tuple):
                out[name] = list(value)
        out["qualities"] = {k: list(v) for k, v in self.qualities.items()}
        return out

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> "RunConfig":
        unknown = sorted(set(values) - {f.name for f in dataclasses.fields(cls)})
        if unknown:
            raise ConfigError(f"unknown run parameter(s): {', '.join(unknown)}")
        return cls(**values)

    def defining(self) -> dict[str, Any]:
        """What defines the run's results (not where or how it runs), as JSON values."""
        out = {k: v for k, v in self.to_dict().items() if k in _RESULT_FIELDS}
        out["codecs"] = self.codec_specs()
        return out

    def digest(self) -> str:
        """A short hash of :meth:`defining`."""
        return hashlib.sha256(json.dumps(self.defining(), sort_keys=True).encode()).hexdigest()[:16]


#: The fields that change a run's rows; the others say where and how it runs.
_RESULT_FIELDS = frozenset({"datasets", "codecs", "qualities", "metrics", "limit", "images_per_shard"})


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())

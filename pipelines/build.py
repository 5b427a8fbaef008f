"""``BuildCodec``: build one external codec's binaries from its pinned source archive.

    luigi --module pipelines BuildCodec --name vtm --local-scheduler

A thin adapter over :func:`rdbench.codecs.build.build_codec`: output is the manifest
``<codecs bin>/<name>-<version>/build.json``, complete only while the installed executables still
hash as it records. An unknown name or version, a bad ``--jobs`` and missing build tools are
refused when the task is created (one line; exit status 2 from the command line).
"""
from __future__ import annotations

import luigi

from pipelines.params import refuse
from rdbench.codecs import build
from rdbench.run import ConfigError

__all__ = ["BuildCodec"]


class BuildCodec(luigi.Task):
    """Build and install ``codecs/bin/<name>-<version>/`` (executables, cfg files, build.json, build.log)."""

    name = luigi.Parameter(description="recipe: bpg, vtm, vvenc or aom")
    version = luigi.Parameter(default="", description="the recipe's pinned version (empty: that one)")
    jobs = luigi.IntParameter(default=0, significant=False, description="parallel compile jobs (0: one per core)")
    codecs_bin = luigi.OptionalParameter(default=None, description="install root (default: $RDBENCH_CODECS_BIN, "
                                         "else codecs/bin)")
    mirror = luigi.OptionalParameter(default=None, significant=False,
                                     description="base URL replacing the publisher's (default: $RDBENCH_MIRROR)")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for option, version in (("--name", None), ("--version", self.version or None)):
            try:
                recipe = build.get_recipe(self.name, version)
            except build.UnknownRecipeError as exc:
                refuse(ConfigError(f"{option}: {exc}"))
        if self.jobs < 0:
            refuse(ConfigError(f"--jobs: {self.jobs} is negative; give 0 (one per core) or a positive number"))
        if build.installed_dir(recipe.name, recipe.version, self.codecs_bin) is None:
            try:
                build.check_tools(recipe)
            except build.MissingToolsError as exc:
                refuse(ConfigError(str(exc)))

    def output(self):
        recipe = build.get_recipe(self.name, self.version or None)
        return luigi.LocalTarget(str(build.install_path(recipe, self.codecs_bin) / build.MANIFEST_NAME))

    def complete(self) -> bool:
        return build.is_complete(self.name, self.version or None, self.codecs_bin)

    def _progress(self, fraction: float, message: str) -> None:
        self.set_status_message(message)
        self.set_progress_percentage(round(100 * fraction))

    def run(self):
        build.build_codec(self.name, self.version or None, root=self.codecs_bin, jobs=self.jobs or None,
                          mirror=self.mirror, progress=self._progress)

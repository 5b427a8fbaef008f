"""Luigi parameters that take lists as JSON or comma-separated text, and refuse bad input in one line.

On the command line a user error (malformed JSON, an unknown codec, …) must print one line naming
the parameter and exit non-zero, not a traceback: :func:`refuse` does that when Luigi's command
line is parsing, and raises :class:`~rdbench.run.ConfigError` otherwise (``luigi.build`` from
Python, tests), so callers can catch it.
"""
from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from typing import NoReturn

import luigi
from luigi.cmdline_parser import CmdlineParser
from luigi.freezing import FrozenOrderedDict

from rdbench.run import ConfigError

#: Exit status of a refused configuration (Luigi's own codes are 10–40).
USER_ERROR_EXIT = 2


def refuse(error: ConfigError) -> NoReturn:
    """Stop on a user error: one line on stderr and exit 2 from the command line, else raise it."""
    if CmdlineParser.get_instance() is not None:
        print(f"rdbench: error: {error}", file=sys.stderr)
        raise SystemExit(USER_ERROR_EXIT)
    raise error


class _Named:
    """The ``--option`` a parameter is bound to, for messages (Luigi records the attribute name)."""

    @property
    def option(self) -> str:
        return "--" + str(getattr(self, "_attribute_name", None) or "parameter").replace("_", "-")


class TextListParameter(_Named, luigi.ListParameter):
    """A list given as JSON (``'["jpeg", "webp"]'``) or as comma-separated text (``jpeg,webp``)."""

    def parse(self, x):
        if not isinstance(x, str):
            return list(x)
        text = x.strip()
        if text.startswith("["):
            try:
                value = json.loads(text)
            except json.JSONDecodeError as exc:
                refuse(ConfigError(f"{self.option}: {text!r} is not valid JSON ({exc.msg} at character "
                                   f"{exc.pos}); give a JSON list or comma-separated values"))
            return list(value)
        return [item.strip() for item in text.split(",") if item.strip()]


class JSONDictParameter(_Named, luigi.DictParameter):
    """A JSON object whose syntax errors name the option."""

    def parse(self, x):
        if not isinstance(x, str):
            return x
        try:
            value = json.loads(x, object_pairs_hook=FrozenOrderedDict)
        except json.JSONDecodeError as exc:
            refuse(ConfigError(f"{self.option}: {x!r} is not valid JSON ({exc.msg} at character {exc.pos}); "
                               'give an object such as {"jpeg": [5, 50, 95]}'))
        if not isinstance(value, Mapping):
            refuse(ConfigError(f"{self.option}: {x!r} is not a JSON object"))
        return value

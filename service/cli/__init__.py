"""The ``esquire`` command line: one module per command (``COMMANDS``), each with its
``HELP``, ``add_arguments(parser)`` and ``run(args) -> exit status``. ``main`` is the entry
point of the ``esquire`` script and of ``python -m service``."""

from __future__ import annotations

import argparse
import importlib
from types import ModuleType

from .. import __version__

# The modules of this package, in the order ``--help`` lists them: one per line.
COMMANDS = (
    "serve",
    "query",
    "check",
    "install-unit",
    "load",
    "tasks",
    "export",
)


def _command(name: str) -> ModuleType:
    return importlib.import_module(f"{__name__}.{name.replace('-', '_')}")


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="esquire", description="A local Elasticsearch-compatible query service.")
    top.add_argument("--version", action="version", version=f"esquire {__version__}")
    sub = top.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        module = _command(name)
        command = sub.add_parser(name, help=module.HELP, description=module.__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
        module.add_arguments(command)
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    return int(_command(args.command).run(args))

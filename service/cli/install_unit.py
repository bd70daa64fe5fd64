"""Write the systemd unit ``esquire.service`` for this installation, and print the commands
that enable and start it.

The unit (shipped as ``service/systemd/esquire.service``) runs ``esquire serve`` as a dynamic
user with its data in ``/var/lib/esquire`` (``StateDirectory=``), behind ``esquire check
--before-start``, as ``Type=notify``, sandboxed. Its command is this installation's: the
running ``esquire`` script (resolved), the frozen executable, or ``python -m service`` when
run that way; ``--exec`` names another. ``--config`` gives the service a TOML settings file,
read now too for the graceful stop's length (``TimeoutStopSec=``).

The unit's ``ProtectHome=yes`` hides ``/home``, ``/root`` and ``/run/user`` from the service:
an Esquire installed there cannot start from it (a warning says so); install it in ``/opt``
or ``/usr/local``."""

from __future__ import annotations

import argparse
import sys
from importlib import resources
from pathlib import Path

from ..settings import SettingsError, load_settings

HELP = "write the systemd unit for this installation"

UNIT = "esquire.service"
# Closing the store and the query workers after the grace, at most (TimeoutStopSec's margin).
CLOSE_MARGIN_S = 5
HIDDEN = (Path("/home"), Path("/root"), Path("/run/user"))  # by ProtectHome=yes


def add_arguments(install: argparse.ArgumentParser) -> None:
    install.add_argument("--dest", type=Path, default=Path("/etc/systemd/system"),
                         help="the directory to write esquire.service in (default /etc/systemd/system)")
    install.add_argument("--exec", dest="executable", type=Path,
                         help="the esquire executable the unit runs (default: this one)")
    install.add_argument("--config", type=Path, help="a TOML settings file the service reads (ESQUIRE_CONFIG)")
    install.add_argument("--print", action="store_true", help="write the unit to stdout instead")


def run(args: argparse.Namespace) -> int:
    command = [str(args.executable.absolute())] if args.executable else this_command()
    config = args.config.absolute() if args.config else None
    try:
        grace = load_settings(environ={}, config_file=config).shutdown_grace_seconds
    except SettingsError as exc:
        print(f"esquire install-unit: {exc}", file=sys.stderr)
        return 2
    text = unit_text(command, grace, config)
    for path in [Path(command[0]), *([config] if config else [])]:
        if any(path.is_relative_to(hidden) for hidden in HIDDEN):
            print(f"esquire install-unit: warning: the unit's ProtectHome=yes hides {path} from the service; "
                  "install Esquire (and its config) outside home directories, e.g. in /opt", file=sys.stderr)
    if args.print:
        sys.stdout.write(text)
        return 0
    target = args.dest / UNIT
    try:
        target.write_text(text)
    except OSError as exc:
        print(f"esquire install-unit: cannot write {target}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    print(f"wrote {target}; to start it now and at every boot:\n"
          f"  systemctl daemon-reload\n  systemctl enable --now {UNIT}\n"
          f"then: systemctl status {UNIT}, journalctl -u {UNIT} -f")
    return 0


def this_command() -> list[str]:
    """The command that runs this Esquire: the frozen executable, the ``esquire`` script
    resolved, or this interpreter with ``-m service`` (not resolved: a venv's python is a
    link whose target would lose the venv)."""
    if getattr(sys, "frozen", False):
        return [sys.executable]
    script = Path(sys.argv[0])
    if sys.argv[0] in ("", "-c") or script.name == "__main__.py":
        return [sys.executable, "-m", "service"]
    return [str(script.resolve())]


def unit_text(command: list[str], grace_s: int, config: Path | None) -> str:
    """The shipped unit with this installation's fields filled in."""
    template = (resources.files("service") / "systemd" / UNIT).read_text(encoding="utf-8")
    fields = {
        "EXEC": " ".join(_word(word) for word in command),
        "ENVIRONMENT": f" {_word(f'ESQUIRE_CONFIG={config}', command=False)}" if config else "",
        "GRACE": str(grace_s),
        "MARGIN": str(CLOSE_MARGIN_S),
        "TIMEOUT": str(2 * grace_s + CLOSE_MARGIN_S),
    }
    for name, value in fields.items():
        template = template.replace(f"@{name}@", value)
    return template


def _word(word: str, command: bool = True) -> str:
    """``word`` as one word of a unit's command line (or, not ``command``, of an
    ``Environment=`` line, where ``$`` means itself): specifiers (``%``) and variables (``$``)
    escaped, quoted when it holds a space, a quote or a backslash."""
    word = word.replace("%", "%%")
    if command:
        word = word.replace("$", "$$")
    if any(c in word for c in " \t\"'\\"):
        return '"' + word.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return word

"""The command line: one click group, one module per command, imported only when used.

Commands load lazily so that ``ocpp-audit analyse`` never imports mitmproxy or websockets. The
group holds the exit policy (``ocpp_audit.cli.errors``): the input errors of the packages below
become exit status 2 here, for every command.
"""

from __future__ import annotations

import importlib
import logging

import click

from ocpp_audit import __version__
from ocpp_audit.cli.errors import as_input_error
from ocpp_audit.display import SafeLogFilter

# command name -> "module:attribute"
COMMANDS: dict[str, str] = {
    "record": "ocpp_audit.cli.record:record",
    "simulate": "ocpp_audit.cli.simulate:simulate",
    "analyse": "ocpp_audit.cli.analyse:analyse",
    "query": "ocpp_audit.cli.query:query",
    "demo": "ocpp_audit.cli.demo:demo",
    "acceptance": "ocpp_audit.cli.acceptance:acceptance",
    "inject": "ocpp_audit.cli.inject:inject",
    "import": "ocpp_audit.cli.import_:import_",
    "export": "ocpp_audit.cli.export:export",
    "replay": "ocpp_audit.cli.replay:replay",
    "prune": "ocpp_audit.cli.prune:prune",
    "compare": "ocpp_audit.cli.compare:compare",
}
# other spellings -> command name; not listed in --help
ALIASES: dict[str, str] = {"analyze": "analyse"}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(ALIASES.get(cmd_name, cmd_name))
        if target is None:
            return None
        module_name, _, attribute = target.partition(":")
        return getattr(importlib.import_module(module_name), attribute)

    def invoke(self, ctx: click.Context) -> object:
        """Run the command; an input error of the packages below exits 2 with its one line."""
        try:
            return super().invoke(ctx)
        except Exception as error:
            problem = as_input_error(error)
            if problem is None:
                raise
            raise problem from None


@click.group(cls=LazyGroup)
@click.version_option(__version__, prog_name="ocpp-audit")
@click.option("-v", "--verbose", count=True, help="More log output (-v info, -vv debug).")
def main(verbose: int) -> None:
    """Record OCPP 1.6-J traffic between chargers and a backend, and judge it.

    \b
    Try it:  ocpp-audit demo
    """
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for handler in logging.getLogger().handlers:  # no frame, credential or escape sequence printed
        handler.addFilter(SafeLogFilter())

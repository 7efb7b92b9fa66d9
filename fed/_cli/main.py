"""Entry point of the `fed` command: parse arguments and dispatch to a subcommand."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from fed._cli.run import run_parties, run_single
from fed._security.certs import make_certs

_USAGE_ERROR = 2
_PARTIES_HELP = "comma-separated party names, e.g. alice,bob"


def main(argv: list[str] | None = None) -> int:
    """Run the `fed` command line and return its exit code.

    >>> main(["run", "--parties", "alice,bob", "train.py"])  # doctest: +SKIP
    0
    """
    parser = _parser()
    try:
        options = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits on --help and on usage errors
        return exc.code if isinstance(exc.code, int) else _USAGE_ERROR
    return options.handler(options)


def console() -> None:
    """Console-script entry point: `fed = "fed._cli.main:console"`."""
    sys.exit(main())


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fed", description="RayFed command line.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser(
        "run",
        help="run a script once per party on this machine",
        description="Start `python -u SCRIPT PARTY ARGS...` for every party and "
        "print their output prefixed with `[party]`; with --single, start it once as the first "
        "party, playing every party. Options for fed go before SCRIPT; "
        "everything after SCRIPT is passed to it.",
    )
    run.add_argument("--parties", required=True, help=_PARTIES_HELP)
    run.add_argument(
        "--single",
        action="store_true",
        help="single-controller mode: run SCRIPT once, as the first party, playing every party "
        "in one process (one Ray cluster)",
    )
    run.add_argument("script", help="the Python script every party runs")
    run.add_argument("args", nargs=argparse.REMAINDER, help="arguments for SCRIPT")
    run.set_defaults(handler=_run)

    certs = commands.add_parser(
        "certs",
        help="create a test CA and one mutual-TLS certificate per party",
        description="Write ca.crt, ca.key and PARTY.crt / PARTY.key for every party.",
    )
    certs.add_argument("--parties", required=True, help=_PARTIES_HELP)
    certs.add_argument("--out", required=True, help="directory to write into")
    certs.add_argument("--days", type=int, default=365, help="validity (default: 365)")
    certs.set_defaults(handler=_certs)
    return parser


def _run(options: argparse.Namespace) -> int:
    run = run_single if options.single else run_parties
    try:
        return run(_party_list(options.parties), options.script, options.args)
    except ValueError as exc:
        return _fail(f"fed run: {exc}")


def _certs(options: argparse.Namespace) -> int:
    try:
        configs = make_certs(_party_list(options.parties), options.out, options.days)
    except ValueError as exc:
        return _fail(f"fed certs: {exc}")
    ca_cert = Path(next(iter(configs.values()))["ca_cert"])
    print(f"wrote {ca_cert} and {ca_cert.with_name('ca.key')} (keep ca.key private)")
    for party, tls_config in configs.items():
        print(f"wrote {tls_config['cert']} and {tls_config['key']}")
        print(f"  {party}: tls_config={tls_config!r}")
    return 0


def _party_list(text: str) -> list[str]:
    return [name.strip() for name in text.split(",")] if text.strip() else []


def _fail(message: str) -> int:
    print(message, file=sys.stderr)
    return _USAGE_ERROR

"""``python -m fed`` is the ``fed`` command."""

from fed._cli.main import console

console()

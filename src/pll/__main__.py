"""``python -m pll``: the ``pll`` command, as ``pll serve`` starts its worker (with the
interpreter it runs on, whatever is on ``PATH``)."""

from pll.cli import main

main()

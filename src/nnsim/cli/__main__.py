"""``python -m nnsim.cli`` is ``nnsim``."""

from nnsim.cli.main import main

main()

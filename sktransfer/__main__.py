"""``python -m sktransfer``: the command line of :mod:`sktransfer.cli`."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())

"""Entry point of the chain listener process: `python workers/listener.py` (same as `ethhook listen`)."""

import sys

from ethhook.cli import main

if __name__ == "__main__":
    sys.exit(main(["listen", *sys.argv[1:]]))

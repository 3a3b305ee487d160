"""`python -m ethhook.cli`: the `ethhook` command."""

import sys

from ethhook.cli import main

sys.exit(main())

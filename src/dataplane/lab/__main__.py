"""``python -m dataplane.lab up|down|status|clean`` (until the main CLI wires it in)."""

import sys

from dataplane.lab.cli import main

sys.exit(main())

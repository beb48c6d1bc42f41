"""``python -m hccmeta.cli``."""

import sys

from hccmeta.cli import main

sys.exit(main())

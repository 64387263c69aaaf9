"""``python -m rankme.cli``."""

import sys

from rankme.cli.main import main

sys.exit(main())

"""``python -m biorouter`` is the ``biorouter`` command."""

import sys

from biorouter.cli.main import main

sys.exit(main())

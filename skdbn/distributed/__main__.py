"""``python -m skdbn.distributed worker --connect HOST:PORT``."""

import sys

from ._main import main

sys.exit(main())

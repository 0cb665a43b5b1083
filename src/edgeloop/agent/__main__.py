"""``python -m edgeloop.agent``: the same as ``edgeloop-agent``."""

from __future__ import annotations

import sys

from edgeloop.agent._cli import main

if __name__ == "__main__":
    sys.exit(main())

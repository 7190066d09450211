"""Write docs/openapi.json from template.yaml, the JSON Schema files and evreplay.cli.openapi.

.venv/bin/python scripts/openapi.py           # regenerate after changing a route, a schema or a response
.venv/bin/python scripts/openapi.py --check   # exit 1 if the committed document is out of date
"""

from __future__ import annotations

import sys

from evreplay.cli.openapi import main

if __name__ == "__main__":
    sys.exit(main())

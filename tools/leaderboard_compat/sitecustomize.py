"""Python >= 3.9 shim for the Leaderboard 2.0 (put this folder first on PYTHONPATH; see docs/leaderboard.md).

``leaderboard/utils/route_parser.py`` reads each route's scenarios with
``Element.getchildren()``, which Python 3.9 removed: on 3.9+ every route file with a scenario
fails with ``AttributeError: 'xml.etree.ElementTree.Element' object has no attribute
'getchildren'``. The C ``Element`` type cannot take a new method, so this makes ElementTree use its
pure-Python ``Element`` (blocking the ``_elementtree`` accelerator) and gives it
``getchildren()`` back (``list(element)``, what it returned). Nothing of the Leaderboard is changed.
"""

import sys

if "xml.etree.ElementTree" not in sys.modules:
    sys.modules["_elementtree"] = None  # type: ignore[assignment]
import xml.etree.ElementTree as _ET  # noqa: E402

if not hasattr(_ET.Element, "getchildren"):
    _ET.Element.getchildren = lambda self: list(self)  # type: ignore[attr-defined]

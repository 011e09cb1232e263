"""``tests/settings.py`` with ``RATELIMIT`` read from the environment, as JSON.

For the tests that start Django in a subprocess (gunicorn, uvicorn, ``manage.py``) with
settings of their choosing: ``TEST_RATELIMIT='{"POLICIES": null}'``. JSON's ``NaN`` and
``Infinity`` are read as floats, so the hostile values travel unchanged.
"""

from __future__ import annotations

import json
import os

from tests.settings import *  # noqa: F403

RATELIMIT = json.loads(os.environ["TEST_RATELIMIT"])

"""Flask and FastAPI integrations: ``ratelimit_app.adapters.flask`` and ``.fastapi``.

This file only serves a source checkout, where the modules sit in the repository's
top-level ``adapters/`` folder: it adds that folder to this package's search path, so a
checkout and an installed wheel are imported by the same name. An installed wheel ships
the modules right here (``pyproject.toml`` maps the folder to this package) and never
runs this file. The name ``adapters`` alone is left to its owner on PyPI.
"""

from pathlib import Path

_SOURCE = Path(__file__).resolve().parent.parent.parent / "adapters"
if (_SOURCE / "flask.py").is_file():
    __path__.append(str(_SOURCE))

"""Demo apps: the Django project here, plus the Flask and FastAPI demos."""

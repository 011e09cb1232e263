# One image for the three demos (Django, Flask, FastAPI); docker-compose.yml picks the
# command. Slim base, dependencies in their own layer, and a non-root user at run time.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

COPY requirements.txt .
RUN pip install -r requirements.txt

COPY . .

# The admin's CSS and JS, collected into STATIC_ROOT and served by WhiteNoise from
# gunicorn itself (compressed, cached forever under hashed names): no nginx needed.
RUN DJANGO_DB_PATH=/tmp/collect.sqlite3 python manage.py collectstatic --noinput -v 0

# /data holds the Django demo's SQLite database (a named volume in docker-compose.yml).
RUN useradd --create-home --uid 10001 app \
    && mkdir -p /data \
    && chown app:app /data

USER app

EXPOSE 8000 8001 8002

CMD ["gunicorn", "project.wsgi:application", "--bind", "0.0.0.0:8000"]

# Build: docker build -t akeneo-app .
# Run:   docker run --env-file .env -p 127.0.0.1:8000:8000 -v akeneo-app:/app/instance \
#            --stop-timeout 30 akeneo-app
# Sync:  docker run --env-file .env --no-healthcheck akeneo-app celery -A app.sync.make_celery worker
#        (as many as you like; and one `celery -A app.sync.make_celery beat`)
# Or:    docker compose up   (the App, a worker, beat, Redis and PostgreSQL: see compose.yaml)

FROM python:3.12-slim-bookworm AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
RUN python -m venv /venv
# the dependency layer first: it is rebuilt only when the lock file changes. The lock is complete,
# so pip installs it as it is (--no-deps), then the check proves the venv holds what it pins
COPY requirements.lock tools/check_install.py /tmp/
RUN /venv/bin/pip install --no-deps --require-hashes -r /tmp/requirements.lock \
    && /venv/bin/python /tmp/check_install.py /tmp/requirements.lock

FROM python:3.12-slim-bookworm
ENV PATH=/venv/bin:$PATH PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
RUN groupadd --system app && useradd --system --gid app --home-dir /app app
COPY --from=build /venv /venv
WORKDIR /app
COPY gunicorn.conf.py ./
COPY templates/ templates/
COPY static/ static/
COPY app/ app/
# instance/ holds the generated SECRET_KEY and the SQLite file when nothing else is configured:
# mount a volume there (-v akeneo-app:/app/instance) or they go with the container
RUN mkdir instance && chown app:app instance
USER app
EXPOSE 8000
# follows PORT and BIND, as gunicorn.conf.py does
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s CMD ["python", "app/healthcheck.py"]
CMD ["gunicorn", "-c", "gunicorn.conf.py", "app:create_app()"]

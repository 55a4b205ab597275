# One image for every service in docker-compose.yml: web (gunicorn), worker, beat, the
# one-shot migrate, and cloudsim in the demo profile.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PORTAL_DATA_DIR=/data \
    STATIC_ROOT=/app/staticfiles

RUN groupadd --system --gid 10001 portal \
    && useradd --system --uid 10001 --gid portal --home-dir /app --shell /usr/sbin/nologin portal

WORKDIR /app

# Dependencies first, so a code change does not reinstall them.
COPY requirements.txt ./
RUN pip install -r requirements.txt

COPY . .

# The zh-hans catalogue is compiled here (no .mo in git); gettext's msgfmt is needed only for
# this step, so it leaves the image with it.
RUN apt-get update \
    && apt-get install -y --no-install-recommends gettext \
    && DEBUG=1 python manage.py compilemessages -l zh_Hans -i .venv -i var -i cloudsim \
    && apt-get purge -y gettext && apt-get autoremove -y && rm -rf /var/lib/apt/lists/*

# Static files are collected at build time (hashed and compressed for whitenoise). Settings
# need a SECRET_KEY to load; this one exists only inside this build step.
RUN DEBUG=0 SECRET_KEY=collectstatic-only-not-a-runtime-key ALLOWED_HOSTS=localhost \
        python manage.py collectstatic --noinput \
    && mkdir -p /data/cloudsim /data/audit-checkpoints \
    && chown -R portal:portal /data

# The code stays owned by root and read-only to the service user; only /data is writable
# (beat's schedule, audit checkpoints, cloudsim's state in the demo profile).
USER portal
EXPOSE 8000
CMD ["gunicorn", "--config", "portal/gunicorn.conf.py", "portal.wsgi:application"]

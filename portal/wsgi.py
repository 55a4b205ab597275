import os

from django.core.wsgi import get_wsgi_application

from core.routes import load_url_configuration

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

application = get_wsgi_application()
# At start rather than in each process's first request (about half a second more for whoever
# sends it); gunicorn loads this module once, before it forks its workers (preload_app).
load_url_configuration()

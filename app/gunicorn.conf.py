"""Lets ``gunicorn`` find its settings when started from ``app/`` (it reads ./gunicorn.conf.py).
Deployed hosts use the copy inside the package: ``gunicorn -c python:grimbots.gunicorn_conf ...``."""

from grimbots.gunicorn_conf import *  # noqa: F403

"""The Flask app factory, JSON errors, request metrics, and the operational endpoints.

gunicorn: ``gunicorn -c python:grimbots.gunicorn_conf 'grimbots.web:create_app()'``.
"""

from __future__ import annotations

import logging
import time

from flask import Flask, Response, g, jsonify, request
from redis.exceptions import RedisError
from sqlalchemy.exc import DBAPIError
from werkzeug.exceptions import HTTPException

from . import __version__, health, metrics
from .routes import ClientError, blueprint, current_services
from .services import Services, build
from .settings import QUEUE_NAMES, Settings


def create_app(settings: Settings | None = None, services: Services | None = None) -> Flask:
    """Build the app. Settings default to the environment; nothing connects until a request needs it."""
    settings = settings or (services.settings if services else Settings.from_env())
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    app = Flask("grimbots")
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.extensions["grimbots"] = services or build(settings, interactive=True)
    app.register_blueprint(blueprint)
    _register_operational_routes(app)
    _register_errors(app)
    app.before_request(_start_timer)
    app.after_request(_observe_latency)
    return app


def _start_timer() -> None:
    g.started = time.perf_counter()


def _observe_latency(response: Response) -> Response:
    started = g.get("started")
    if started is not None:
        endpoint = request.url_rule.rule if request.url_rule else "unmatched"
        metrics.http_request_duration.labels(request.method, endpoint, str(response.status_code)).observe(
            time.perf_counter() - started
        )
    return response


def _register_operational_routes(app: Flask) -> None:
    @app.get("/health")
    def health_report() -> tuple[Response, int]:
        body, status = health.report(current_services())
        return jsonify(body), status

    @app.get("/livez")
    def liveness() -> tuple[Response, int]:
        return jsonify({"status": "alive", "version": __version__}), 200

    @app.get("/ready")
    def readiness() -> tuple[Response, int]:
        body, status = health.ready(current_services())
        return jsonify(body), status

    @app.get("/metrics")
    def prometheus_metrics() -> Response:
        services = current_services()
        for name in QUEUE_NAMES:
            try:
                metrics.rq_queue_size.labels(queue=name).set(services.queue(name).count)
            except Exception as exc:  # a scrape must still answer when the queue Redis is down
                logging.getLogger(__name__).warning("rq_queue_size not updated: %s", exc)
                break
        payload, content_type = metrics.exposition()
        return Response(payload, content_type=content_type)


def _register_errors(app: Flask) -> None:
    @app.errorhandler(ClientError)
    def client_error(exc: ClientError) -> tuple[Response, int]:
        return jsonify(exc.body()), exc.status

    @app.errorhandler(DBAPIError)
    @app.errorhandler(RedisError)
    def backing_service_error(exc: Exception) -> tuple[Response, int]:
        # The database or Redis did not answer (down, frozen past the timeouts, failing over): the
        # request may be sent again. The details are for the log only.
        logging.getLogger(__name__).error(
            "%s %s: %s: %s", request.method, request.path, type(exc).__name__, exc
        )
        body = {"error": "service_unavailable", "message": "a backing service did not answer; try again"}
        return jsonify(body), 503

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> tuple[Response, int]:
        code = (exc.name or "error").lower().replace(" ", "_")
        return jsonify({"error": code, "message": exc.description}), exc.code or 500

"""The baseline: a bare Flask app answering 200, served by the same gunicorn settings."""

from flask import Flask

app = Flask("bare")


@app.get("/")
def ok() -> tuple[str, int]:
    return "", 200

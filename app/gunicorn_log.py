"""gunicorn's logger with the access log redacted: `logger_class = "app.gunicorn_log.RedactingLogger"`.

gunicorn writes its access log itself, outside the app's logging filter (app/log.py), and its
request line carries query strings: WeChat's push signature, timestamp and nonce, photo URL
signatures. Those are masked here the same way.
"""
from gunicorn.glogging import Logger

from app.log import redact, redact_query

# Atoms of gunicorn's access_log_format that can hold a URL: request line, query string, referer.
_URL_ATOMS = ("r", "f", "{referer}i")


class RedactingLogger(Logger):
    def atoms(self, resp, req, environ, request_time):
        atoms = super().atoms(resp, req, environ, request_time)
        for name in _URL_ATOMS:
            if isinstance(atoms.get(name), str):
                atoms[name] = redact(atoms[name])
        if isinstance(atoms.get("q"), str):
            atoms["q"] = redact_query(atoms["q"])
        return atoms

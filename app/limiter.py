"""Flask-Limiter, with its storage and on/off switch kept per app instead of per process.

Flask-Limiter keeps one storage on the extension object, so a second app in the same process
(tests, the demo supervisor) would silently move the first app's counters. Here the three
attributes that depend on configuration live in `app.extensions`.
"""
from flask import current_app, has_app_context
from flask_limiter import Limiter

_PER_APP = frozenset({"enabled", "_storage", "_limiter"})


class PerAppLimiter(Limiter):
    def init_app(self, app):
        with app.app_context():
            app.extensions.setdefault("limiter_state", {})
            super().init_app(app)

    def __setattr__(self, name, value):
        if name in _PER_APP and has_app_context() and "limiter_state" in current_app.extensions:
            current_app.extensions["limiter_state"][name] = value
        else:
            object.__setattr__(self, name, value)

    def __getattribute__(self, name):
        if name in _PER_APP and has_app_context():
            state = current_app.extensions.get("limiter_state")
            if state is not None and name in state:
                return state[name]
        return object.__getattribute__(self, name)

"""Operator commands (flask --app wsgi ...). Each area adds its own group in its package."""
import click


def init_app(app):
    pass

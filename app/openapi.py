"""The OpenAPI layer (flask-smorest) wired to the one error shape of app/errors.py."""
from flask_smorest import Api
from marshmallow import Schema, fields


class ErrorBodySchema(Schema):
    code = fields.String(required=True, metadata={"example": "validation_error"})
    message = fields.String(required=True, metadata={"example": "提交的内容未通过校验"})
    fields = fields.Dict(keys=fields.String(), metadata={"description": "field name -> messages"})


class ErrorSchema(Schema):
    error = fields.Nested(ErrorBodySchema, required=True)


class JsonErrorApi(Api):
    """flask-smorest, but errors are rendered by app.errors (one shape for every response)."""

    ERROR_SCHEMA = ErrorSchema

    def _register_error_handlers(self):
        pass  # app.errors.init_app registers the handlers for the whole app


def init_app(app, api):
    api.init_app(app, spec_kwargs={"info": {"description": "人人拍后端接口（居民小程序、工作人员、部门）"}})
    api.spec.components.security_scheme("bearer", {"type": "http", "scheme": "bearer"})
    api.spec.components.security_scheme("apiKey", {"type": "apiKey", "in": "header", "name": "X-Api-Key"})

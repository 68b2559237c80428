"""Unbound extension objects. Feature code imports these; this module imports no feature code."""
from flask_limiter.util import get_remote_address
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import MetaData

from app.limiter import PerAppLimiter
from app.openapi import JsonErrorApi
from app.redis_client import RedisClient
from app.wechat import WeChatGateway

# Named constraints from the first migration on, so later migrations can drop/alter them by name.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

db = SQLAlchemy(metadata=MetaData(naming_convention=NAMING_CONVENTION))
migrate = Migrate(compare_type=True)
redis = RedisClient()
limiter = PerAppLimiter(key_func=get_remote_address)
wechat = WeChatGateway()
api = JsonErrorApi()

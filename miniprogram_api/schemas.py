"""Request and response schemas of the residents' API (/api/mp/v1).

Names carry an "Mp" prefix so the OpenAPI components stay unique beside the staff and department
schemas. The same schemas validate requests and generate /api/openapi.json.
"""
from marshmallow import EXCLUDE, Schema, fields, validate

from app.geo.coords import COORD_SYSTEMS
from app.models.tip import TIP_STATUSES

MAX_DESCRIPTION = 500
MAX_PHOTOS = 9
REWARD_STATUSES = ("reserved", "sending", "sent", "claimed", "refunded", "failed", "manual_review")


class MpLoginSchema(Schema):
    code = fields.String(required=True, validate=validate.Length(min=1, max=128),
                         metadata={"description": "wx.login 得到的 code"})


class MpResidentRefSchema(Schema):
    id = fields.Integer(required=True)


class MpLoginResultSchema(Schema):
    token = fields.String(required=True)
    expires_in = fields.Integer(required=True, metadata={"description": "秒"})
    resident = fields.Nested(MpResidentRefSchema, required=True)


class MpDepartmentSchema(Schema):
    code = fields.String(required=True)
    name = fields.String(required=True)


class MpCategorySchema(Schema):
    code = fields.String(required=True)
    name = fields.String(required=True)
    group = fields.String(required=True)
    kind = fields.String()
    department = fields.Nested(MpDepartmentSchema, required=True)


class MpCategoryListSchema(Schema):
    items = fields.List(fields.Nested(MpCategorySchema), required=True)


class MpPhotoUploadSchema(Schema):
    file = fields.Raw(required=True, metadata={"type": "string", "format": "binary",
                                               "description": "JPEG、PNG 或 WebP，不超过 10 MB"})


class MpPhotoSchema(Schema):
    id = fields.Integer(required=True)
    sha256 = fields.String(required=True)
    width = fields.Integer(required=True)
    height = fields.Integer(required=True)
    url = fields.String(required=True)
    thumb_url = fields.String(required=True)


class MpLocationSchema(Schema):
    lat = fields.Float(required=True, allow_nan=False, validate=validate.Range(-90, 90))
    lng = fields.Float(required=True, allow_nan=False, validate=validate.Range(-180, 180))
    coord = fields.String(load_default="gcj02", validate=validate.OneOf(COORD_SYSTEMS))
    address = fields.String(allow_none=True, load_default=None, validate=validate.Length(max=255))


class MpTipCreateSchema(Schema):
    category = fields.String(required=True, validate=validate.Length(min=1, max=48))
    description = fields.String(load_default="", validate=validate.Length(max=MAX_DESCRIPTION))
    location = fields.Nested(MpLocationSchema, required=True)
    photo_ids = fields.List(fields.Integer(strict=True, validate=validate.Range(min=1, max=2 ** 31 - 1)),
                            required=True, validate=validate.Length(min=1, max=MAX_PHOTOS))


class MpIdempotencyHeaderSchema(Schema):
    class Meta:
        unknown = EXCLUDE

    idempotency_key = fields.String(
        required=True, data_key="Idempotency-Key",
        validate=[validate.Length(min=8, max=128), validate.Regexp(r"^[\x21-\x7e]+$")],
        metadata={"description": "客户端为每次报料生成的唯一值（如 UUID），重试时保持不变"})


class MpTipPhotoSchema(Schema):
    id = fields.Integer(required=True)
    url = fields.String(required=True)
    thumb_url = fields.String(required=True)


class MpTimelineEntrySchema(Schema):
    status = fields.String(required=True)
    at = fields.DateTime(required=True)
    note = fields.String(allow_none=True)


class MpDuplicateOfSchema(Schema):
    tip_id = fields.Integer()
    hazard_id = fields.Integer()


class MpHazardRefSchema(Schema):
    id = fields.Integer(required=True)
    status = fields.String(allow_none=True)
    status_label = fields.String(allow_none=True)


class MpRewardRefSchema(Schema):
    id = fields.Integer(required=True)
    amount_fen = fields.Integer(required=True)
    status = fields.String(required=True)


class MpLocationOutSchema(Schema):
    lat = fields.Float(required=True)
    lng = fields.Float(required=True)
    coord = fields.String(required=True)
    address = fields.String(allow_none=True)


class MpTipSchema(Schema):
    id = fields.Integer(required=True)
    status = fields.String(required=True, validate=validate.OneOf(TIP_STATUSES))
    status_label = fields.String(required=True)
    category = fields.String(required=True)
    category_name = fields.String(allow_none=True)
    description = fields.String(required=True)
    location = fields.Nested(MpLocationOutSchema, required=True)
    created_at = fields.DateTime(required=True)
    photos = fields.List(fields.Nested(MpTipPhotoSchema), required=True)


class MpTipDetailSchema(MpTipSchema):
    timeline = fields.List(fields.Nested(MpTimelineEntrySchema), required=True)
    message = fields.String(allow_none=True, metadata={"description": "审核员留给报料人的话"})
    duplicate_of = fields.Nested(MpDuplicateOfSchema, allow_none=True, required=True)
    hazard = fields.Nested(MpHazardRefSchema, allow_none=True, required=True)
    reward = fields.Nested(MpRewardRefSchema, allow_none=True, required=True)


class MpTipListArgsSchema(Schema):
    status = fields.String(validate=validate.OneOf(TIP_STATUSES))
    cursor = fields.String(validate=validate.Length(max=32))
    limit = fields.Integer(load_default=20, validate=validate.Range(1, 50))


class MpTipListSchema(Schema):
    items = fields.List(fields.Nested(MpTipSchema), required=True)
    next = fields.String(allow_none=True, required=True)


class MpRewardSchema(Schema):
    id = fields.Integer(required=True)
    tip_id = fields.Integer(allow_none=True)
    amount_fen = fields.Integer(required=True)
    status = fields.String(required=True)
    package = fields.String(allow_none=True, metadata={"description": "状态为 sent 时用于 wx.sendBizRedPacket"})


class MpRewardListArgsSchema(Schema):
    cursor = fields.String(validate=validate.Length(max=64))
    limit = fields.Integer(load_default=20, validate=validate.Range(1, 50))


class MpRewardListSchema(Schema):
    items = fields.List(fields.Nested(MpRewardSchema), required=True)
    next = fields.String(allow_none=True, required=True)


class MpNearbyArgsSchema(Schema):
    lat = fields.Float(required=True, allow_nan=False, validate=validate.Range(-90, 90))
    lng = fields.Float(required=True, allow_nan=False, validate=validate.Range(-180, 180))
    coord = fields.String(load_default="gcj02", validate=validate.OneOf(COORD_SYSTEMS))
    category = fields.String(required=True, validate=validate.Length(min=1, max=48))


class MpNearbyHazardSchema(Schema):
    id = fields.Integer(required=True)
    status = fields.String(required=True)
    category = fields.String(required=True)
    distance_m = fields.Integer(required=True)
    location = fields.Nested(MpLocationOutSchema, required=True)
    created_at = fields.DateTime(allow_none=True)


class MpNearbyListSchema(Schema):
    items = fields.List(fields.Nested(MpNearbyHazardSchema), required=True)


class MpOkSchema(Schema):
    ok = fields.Boolean(required=True)

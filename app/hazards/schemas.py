"""Request and response schemas of the hazards APIs (staff, department), for parsing and OpenAPI.

Responses are built by app.hazards.queries (field by field, per audience); these schemas document
them and drop anything not declared, a second guard against leaking a field.
"""
from marshmallow import EXCLUDE, Schema, fields, validate

from app.hazards.models import HAZARD_STATUSES
from app.ids import id_field


class _Loose(Schema):
    class Meta:
        unknown = EXCLUDE


class BriefSchema(Schema):
    code = fields.String()
    name = fields.String()
    group = fields.String(allow_none=True)


class GridSchema(Schema):
    id = fields.Integer(allow_none=True)
    code = fields.String()


class LocationSchema(Schema):
    lat = fields.Float()
    lng = fields.Float()
    coord = fields.String()
    address = fields.String(allow_none=True)


class PhotoSchema(Schema):
    id = fields.Integer()
    url = fields.String()
    thumb_url = fields.String()


class HistorySchema(Schema):
    id = fields.String(metadata={"description": "事件 id（与 webhook 事件 id 相同）"})
    kind = fields.String()
    from_status = fields.String(allow_none=True)
    to_status = fields.String(allow_none=True)
    actor_type = fields.String()
    department = fields.String(allow_none=True)
    actor_name = fields.String(metadata={"description": "谁做的：工作人员姓名、部门名称或“系统”"})
    note = fields.String(allow_none=True)
    photo_ids = fields.List(fields.Integer())
    at = fields.String()


class TicketSchema(Schema):
    """A ticket as a department sees it: never the reporter's identity."""

    id = fields.Integer()
    status = fields.String()
    status_label = fields.String()
    category = fields.Nested(BriefSchema)
    severity = fields.Integer()
    department = fields.Nested(BriefSchema)
    grid = fields.Nested(GridSchema, allow_none=True)
    town_code = fields.String(allow_none=True)
    location = fields.Nested(LocationSchema)
    description = fields.String()
    tip_count = fields.Integer()
    created_at = fields.String()
    updated_at = fields.String()
    status_changed_at = fields.String()
    due_at = fields.String(allow_none=True)
    overdue = fields.Boolean()
    resolution_note = fields.String(allow_none=True)
    return_reason = fields.String(allow_none=True)
    reopen_count = fields.Integer()
    closed_at = fields.String(allow_none=True)
    photos = fields.List(fields.Nested(PhotoSchema))
    resolution_photos = fields.List(fields.Nested(PhotoSchema))
    allowed = fields.List(fields.String(), metadata={"description": "当前状态可以变为的状态"})
    history = fields.List(fields.Nested(HistorySchema))


class TicketListSchema(Schema):
    items = fields.List(fields.Nested(TicketSchema))
    next = fields.String(allow_none=True)


class StaffTipLinkSchema(Schema):
    tip_id = fields.Integer()
    relation = fields.String()
    first_valid = fields.Boolean()


class StaffTicketSchema(TicketSchema):
    tips = fields.List(fields.Nested(StaffTipLinkSchema))
    first_tip_id = fields.Integer(allow_none=True)


class StaffTicketListSchema(Schema):
    items = fields.List(fields.Nested(StaffTicketSchema))
    next = fields.String(allow_none=True)


class TicketQuerySchema(_Loose):
    status = fields.String(metadata={"description": "状态，逗号分隔；open 表示未结案"})
    cursor = fields.String()
    limit = fields.Integer(load_default=20, validate=validate.Range(min=1, max=100))


class StaffTicketQuerySchema(TicketQuerySchema):
    department = fields.String()
    grid = fields.String(metadata={"description": "网格编码"})
    town = fields.String()
    category = fields.String()
    overdue = fields.Boolean()


class TransitionSchema(Schema):
    to = fields.String(required=True, validate=validate.OneOf(HAZARD_STATUSES))
    note = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=2000))
    department = fields.String(load_default=None, allow_none=True,
                               metadata={"description": "改派部门（仅分拨时）"})
    photo_ids = fields.List(id_field(), load_default=list, validate=validate.Length(max=9))


class NoteSchema(Schema):
    note = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=2000))


class ResolveSchema(Schema):
    note = fields.String(required=True, validate=validate.Length(min=1, max=2000))
    photo_ids = fields.List(id_field(), load_default=list, validate=validate.Length(max=9))


class ReturnSchema(Schema):
    reason = fields.String(required=True, validate=validate.Length(min=1, max=2000))


class DeptPhotoSchema(Schema):
    id = fields.Integer()
    sha256 = fields.String()
    width = fields.Integer()
    height = fields.Integer()

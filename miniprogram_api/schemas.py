"""Request and response schemas of the residents' API (/api/mp/v1).

Names carry an "Mp" prefix so the OpenAPI components stay unique beside the staff and department
schemas. The same schemas validate requests and generate /api/openapi.json.
"""
from marshmallow import EXCLUDE, ValidationError, fields, validate
from marshmallow import Schema as _Schema

from app.geo.coords import COORD_SYSTEMS
from app.models.tip import TIP_STATUSES

MAX_DESCRIPTION = 500
MAX_PHOTOS = 9
# Field messages a resident may read, in Chinese (marshmallow's defaults are English).
FIELD_MESSAGES = {
    "required": "必填",
    "null": "不能为空",
    "invalid": "格式不正确",
    "type": "格式不正确",
    "special": "数值无效",
    "too_large": "数值过大",
    "invalid_utf8": "不是有效的 UTF-8 文本",
}


class Schema(_Schema):
    """marshmallow Schema with Chinese field messages."""

    error_messages = {"unknown": "未知字段", "type": "格式不正确"}

    def on_bind_field(self, field_name, field_obj):
        for target in (field_obj, getattr(field_obj, "inner", None)):  # List items too
            if target is not None:
                target.error_messages = {**target.error_messages,
                                         **{k: v for k, v in FIELD_MESSAGES.items() if k in target.error_messages}}
        if isinstance(field_obj, fields.String):
            # PostgreSQL text cannot hold NUL; no resident types one: refuse it as bad input (422).
            field_obj.validators = [*field_obj.validators, _no_nul]
        super().on_bind_field(field_name, field_obj)


def _no_nul(value):
    if isinstance(value, str) and "\x00" in value:
        raise ValidationError("不能包含空字符")


def length(min=None, max=None):
    if min is not None and max is not None:
        message = f"长度应为 {min}–{max} 个字符" if min else f"不能超过 {max} 个字符"
    elif max is not None:
        message = f"不能超过 {max} 个字符"
    else:
        message = f"至少 {min} 个字符"
    return validate.Length(min=min, max=max, error=message)


def one_of(choices):
    return validate.OneOf(choices, error="可选值：" + "、".join(choices))


def in_range(low, high):
    return validate.Range(low, high, error=f"应在 {low} 到 {high} 之间")


REWARD_STATUSES = ("reserved", "sending", "sent", "claimed", "refunded", "failed", "manual_review", "waiting_confirm",
                   "cancelled")


class MpLoginSchema(Schema):
    code = fields.String(required=True, validate=length(1, 128),
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
    lat = fields.Float(required=True, allow_nan=False, validate=in_range(-90, 90))
    lng = fields.Float(required=True, allow_nan=False, validate=in_range(-180, 180))
    coord = fields.String(load_default="gcj02", validate=one_of(COORD_SYSTEMS))
    address = fields.String(allow_none=True, load_default=None, validate=length(max=255))


class MpTipCreateSchema(Schema):
    category = fields.String(required=True, validate=length(1, 48))
    description = fields.String(load_default="", validate=length(max=MAX_DESCRIPTION))
    location = fields.Nested(MpLocationSchema, required=True)
    photo_ids = fields.List(fields.Integer(strict=True, validate=in_range(1, 2 ** 31 - 1)),
                            required=True, validate=validate.Length(1, MAX_PHOTOS, error=f"请上传 1–{MAX_PHOTOS} 张照片"))


class MpIdempotencyHeaderSchema(Schema):
    class Meta:
        unknown = EXCLUDE

    idempotency_key = fields.String(
        required=True, data_key="Idempotency-Key",
        validate=[length(8, 128), validate.Regexp(r"^[\x21-\x7e]+$", error="只能包含可见的 ASCII 字符")],
        metadata={"description": "客户端为每次报料生成的唯一值（如 UUID），重试时保持不变"})


class MpTipPhotoSchema(Schema):
    id = fields.Integer(required=True)
    url = fields.String(required=True)
    thumb_url = fields.String(required=True)


class MpTimelineEntrySchema(Schema):
    status = fields.String(required=True)
    status_label = fields.String(required=True, metadata={"description": "what a person reads, e.g. 已采纳、工单已受理"})
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
    status_label = fields.String(required=True)


class MpLocationOutSchema(Schema):
    lat = fields.Float(required=True)
    lng = fields.Float(required=True)
    coord = fields.String(required=True)
    address = fields.String(allow_none=True)


class MpTipSchema(Schema):
    id = fields.Integer(required=True)
    status = fields.String(required=True, validate=one_of(TIP_STATUSES))
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
    status = fields.String(validate=one_of(TIP_STATUSES))
    cursor = fields.String(validate=length(max=32))
    limit = fields.Integer(load_default=20, validate=in_range(1, 50))


class MpTipListSchema(Schema):
    items = fields.List(fields.Nested(MpTipSchema), required=True)
    next = fields.String(allow_none=True, required=True)


class MpRedPacketParamsSchema(Schema):
    timeStamp = fields.String(required=True)
    nonceStr = fields.String(required=True)
    package = fields.String(required=True)
    signType = fields.String(required=True)
    paySign = fields.String(required=True)


class MpTransferParamsSchema(Schema):
    mch_id = fields.String(required=True, metadata={"description": "商户号（wx.requestMerchantTransfer 的 mchId）"})
    app_id = fields.String(required=True, metadata={"description": "小程序 AppID（appId）"})
    package = fields.String(required=True, metadata={"description": "转账单的 package_info（package）"})


class MpRewardSchema(Schema):
    id = fields.Integer(required=True)
    tip_id = fields.Integer(allow_none=True)
    amount_fen = fields.Integer(required=True)
    status = fields.String(required=True)
    status_label = fields.String(required=True)
    package = fields.String(allow_none=True, metadata={"description": "状态为 sent 时用于 wx.sendBizRedPacket"})
    redpacket = fields.Nested(MpRedPacketParamsSchema, metadata={
        "description": "状态为 sent 时：wx.sendBizRedPacket 的全部参数（服务器已签名），原样传入即可"})
    transfer = fields.Nested(MpTransferParamsSchema, metadata={
        "description": "状态为 waiting_confirm 时（商家转账）：调起 wx.requestMerchantTransfer 确认收款所需的参数"})
    failure_reason = fields.String(allow_none=True, metadata={
        "description": "状态为 failed 时：未能发放的原因（中文，可直接展示），否则为 null"})


class MpRewardListArgsSchema(Schema):
    cursor = fields.String(validate=length(max=64))
    limit = fields.Integer(load_default=20, validate=in_range(1, 50))


class MpRewardListSchema(Schema):
    items = fields.List(fields.Nested(MpRewardSchema), required=True)
    next = fields.String(allow_none=True, required=True)


class MpNearbyArgsSchema(Schema):
    lat = fields.Float(required=True, allow_nan=False, validate=in_range(-90, 90))
    lng = fields.Float(required=True, allow_nan=False, validate=in_range(-180, 180))
    coord = fields.String(load_default="gcj02", validate=one_of(COORD_SYSTEMS))
    category = fields.String(load_default=None, validate=length(1, 48),
                             metadata={"description": "隐患类别；不填则为附近 100 米内任何类别"})


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


# --- the resident's rights (PIPL) ------------------------------------------------------------------

class MpPrivacyNoticeSchema(Schema):
    version = fields.String(required=True, metadata={"description": "告知的版本；变化后小程序应重新请居民同意"})
    text = fields.String(required=True, metadata={"description": "个人信息保护告知全文（中文）"})


class MpAccountClosedSchema(Schema):
    status = fields.String(required=True, validate=one_of(("closing", "closed")),
                           metadata={"description": "closed：身份信息已删除；closing：有奖励尚在发放途中，结算后自动删除"})
    message = fields.String(required=True)
    rewards_in_flight = fields.Integer(required=True, metadata={"description": "尚未结算的奖励数"})
    forgone_rewards = fields.Integer(required=True, metadata={"description": "因注销而放弃的待核查奖励数"})


class MpExportProfileSchema(Schema):
    id = fields.Integer(required=True)
    openid = fields.String(required=True)
    unionid = fields.String(allow_none=True, required=True)
    created_at = fields.DateTime(required=True)
    last_login_at = fields.DateTime(allow_none=True, required=True)
    no_reward = fields.Boolean(required=True)
    blocked = fields.Boolean(required=True)


class MpExportSessionSchema(Schema):
    created_at = fields.DateTime(required=True)
    expires_at = fields.DateTime(required=True)
    revoked_at = fields.DateTime(allow_none=True, required=True)


class MpExportExifSchema(Schema):
    taken_at = fields.DateTime(allow_none=True, required=True)
    location = fields.Nested(MpLocationOutSchema, allow_none=True, required=True)


class MpExportPhotoSchema(MpTipPhotoSchema):
    width = fields.Integer(required=True)
    height = fields.Integer(required=True)
    uploaded_at = fields.DateTime(required=True)
    exif = fields.Nested(MpExportExifSchema, allow_none=True, required=True,
                         metadata={"description": "照片自带的拍摄时间和位置（对外提供的照片已去除）"})


class MpExportTipSchema(MpTipSchema):
    photos = fields.List(fields.Nested(MpExportPhotoSchema), required=True)
    timeline = fields.List(fields.Nested(MpTimelineEntrySchema), required=True)
    message = fields.String(allow_none=True, required=True)
    hazard = fields.Nested(MpHazardRefSchema, allow_none=True, required=True)
    reward = fields.Nested(MpRewardRefSchema, allow_none=True, required=True)


class MpExportRewardSchema(Schema):
    id = fields.Integer(required=True)
    tip_id = fields.Integer(required=True)
    amount_fen = fields.Integer(required=True)
    status = fields.String(required=True)
    reason = fields.String(allow_none=True, required=True, metadata={"description": "未发放的原因"})
    created_at = fields.DateTime(required=True)
    sent_at = fields.DateTime(allow_none=True, required=True)
    settled_at = fields.DateTime(allow_none=True, required=True)


class MpExportMessageSchema(Schema):
    tip_id = fields.Integer(required=True)
    kind = fields.String(required=True)
    title = fields.String(required=True)
    text = fields.String(required=True)
    status = fields.String(required=True, metadata={"description": "pending 待发送、sent 已发送、refused 未发送（未订阅等）"})
    created_at = fields.DateTime(required=True)
    sent_at = fields.DateTime(allow_none=True, required=True)


class MpExportSchema(Schema):
    exported_at = fields.DateTime(required=True)
    profile = fields.Nested(MpExportProfileSchema, required=True)
    sessions = fields.List(fields.Nested(MpExportSessionSchema), required=True)
    tips = fields.List(fields.Nested(MpExportTipSchema), required=True)
    photos_not_in_tips = fields.List(fields.Nested(MpExportPhotoSchema), required=True)
    rewards = fields.List(fields.Nested(MpExportRewardSchema), required=True)
    messages = fields.List(fields.Nested(MpExportMessageSchema), required=True)

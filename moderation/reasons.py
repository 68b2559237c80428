"""The catalogue of reasons a moderator gives for reject and need_info (codes stable, labels Chinese).

`message` is the default text the resident reads; the moderator may write their own.
"""
from __future__ import annotations

from app.errors import Unprocessable

REASONS: dict[str, dict[str, dict[str, str]]] = {
    "reject": {
        "not_a_hazard": {"label": "不属于安全隐患", "message": "经审核，您反映的情况不属于安全隐患，感谢您的关注。"},
        "unclear_photo": {"label": "照片无法辨认", "message": "照片无法辨认隐患情况，请拍摄清晰照片后重新报料。"},
        "outside_area": {"label": "不在服务范围", "message": "该位置不在本平台服务范围内，请向当地相关部门反映。"},
        "already_handled": {"label": "隐患已处置", "message": "经核实该隐患已处置完毕，感谢您的关注。"},
        "false_report": {"label": "虚假报料", "message": "经核实报料内容与实际情况不符，未予受理。"},
        "stolen_photo": {"label": "非本人拍摄", "message": "报料照片并非本人现场拍摄，未予受理。"},
        "inappropriate": {"label": "内容违规", "message": "报料内容不符合平台规范，未予受理。"},
        "content_risky": {"label": "内容安全检查未通过", "message": "报料内容未通过内容安全检查，未予受理。"},
        "other": {"label": "其他原因", "message": "经审核，您的报料未予受理。"},
    },
    "need_info": {
        "need_clearer_photo": {"label": "需要更清晰的照片", "message": "请补充拍摄更清晰、能看清隐患的照片。"},
        "need_location": {"label": "需要准确位置", "message": "请补充隐患的准确位置（门牌号或明显地标）。"},
        "need_description": {"label": "需要补充说明", "message": "请补充说明隐患的具体情况。"},
        "other": {"label": "其他", "message": "请按审核员的说明补充信息。"},
    },
}

ACTIONS_WITH_REASON = tuple(REASONS)


def reason_label(action: str, code: str | None) -> str | None:
    entry = REASONS.get(action, {}).get(code or "")
    return entry["label"] if entry else None


def check_reason(action: str, code: str | None, message: str | None) -> tuple[str, str]:
    """(code, message for the resident) or 422. Reject and need_info must name a catalogue reason."""
    catalogue = REASONS.get(action)
    if catalogue is None:
        return code, message
    if not code or code not in catalogue:
        raise Unprocessable("请选择原因", code="reason_required",
                            fields={"reason": [f"可选：{', '.join(catalogue)}"]})
    text = (message or "").strip() or catalogue[code]["message"]
    if len(text) > 500:
        raise Unprocessable("给报料人的说明不能超过 500 字", code="message_too_long", fields={"message": ["最多 500 字"]})
    return code, text


def reasons_for_console() -> dict:
    return {action: [{"code": c, **v} for c, v in items.items()] for action, items in REASONS.items()}

"""GET /api/docs: a browsable page of the OpenAPI document, rendered on the server.

No CDN and no script: it works offline and behind the city's network rules. The machine-readable
document is /api/openapi.json (flask-smorest), generated from the same schemas that validate.
"""
from flask import Blueprint, render_template_string

bp = Blueprint("apidocs", __name__)

PAGE = """<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><title>{{ spec.info.title }} 接口文档</title>
<style>
body{font:14px/1.5 system-ui,sans-serif;margin:2rem auto;max-width:70rem;padding:0 1rem;color:#222}
h2{border-bottom:1px solid #ddd;margin-top:2rem} .op{margin:1rem 0;padding:.5rem 1rem;border-left:4px solid #888;background:#fafafa}
.m{font-weight:bold;text-transform:uppercase;display:inline-block;min-width:4rem}
.get{border-color:#2a7ae2}.post{border-color:#2e9d4f}.put,.patch{border-color:#c98a00}.delete{border-color:#c33}
code,pre{background:#f0f0f0;padding:0 .2rem} pre{padding:.5rem;overflow:auto;font-size:12px} details{margin:.3rem 0}
</style></head><body>
<h1>{{ spec.info.title }} <small>{{ spec.info.version }}</small></h1>
<p>{{ spec.info.description }}</p>
<p>机器可读文档：<a href="{{ json_url }}">{{ json_url }}</a>（OpenAPI {{ spec.openapi }}）。错误统一为
<code>{"error": {"code", "message", "fields"}}</code>。</p>
{% for tag, ops in groups %}
<h2>{{ tag }}</h2>
{% for path, method, op in ops %}
<div class="op {{ method }}"><span class="m">{{ method }}</span> <code>{{ path }}</code> — {{ op.summary or '' }}
{% if op.security is defined and op.security %}<small>（需登录：Bearer）</small>{% endif %}
{% if op.parameters %}<details><summary>参数</summary><ul>{% for p in op.parameters %}
<li><code>{{ p.name }}</code> ({{ p['in'] }}{% if p.required %}, 必填{% endif %}) {{ p.description or '' }}</li>{% endfor %}</ul></details>{% endif %}
{% if op.requestBody %}<details><summary>请求体</summary><pre>{{ op.requestBody | tojson(indent=2) }}</pre></details>{% endif %}
<details><summary>响应</summary><ul>{% for code, r in op.responses.items() %}<li><code>{{ code }}</code> {{ r.description or '' }}</li>{% endfor %}</ul></details>
</div>
{% endfor %}{% endfor %}
<h2>数据结构</h2>
{% for name, schema in spec.components.schemas.items() %}<details><summary><code>{{ name }}</code></summary><pre>{{ schema | tojson(indent=2) }}</pre></details>{% endfor %}
</body></html>"""


@bp.get("/api/docs")
def docs_page():
    from app.extensions import api

    spec = api.spec.to_dict()
    groups: dict[str, list] = {}
    for path, item in spec.get("paths", {}).items():
        for method, op in item.items():
            if method in ("get", "post", "put", "patch", "delete"):
                tag = (op.get("tags") or ["其他"])[0]
                groups.setdefault(tag, []).append((path, method, op))
    return render_template_string(PAGE, spec=spec, groups=sorted(groups.items()), json_url="/api/openapi.json")

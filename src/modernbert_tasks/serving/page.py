"""`GET /`: one self-contained HTML page (no external scripts or fonts) where a person types
texts and sees each one's label and probability bars, from `POST /predict` with details."""

from __future__ import annotations

import html
import json
from typing import Any

__all__ = ["render_page"]

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>__TITLE__</title>
<style>
 body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;max-width:760px;margin:2em auto;
      padding:0 1em;color:#1d2330}
 h1{font-size:1.3em;margin:0 0 .2em} .meta{color:#5b6475;font-size:.9em;margin-bottom:1em}
 textarea{width:100%;box-sizing:border-box;height:7.5em;font:inherit;padding:.5em;
          border:1px solid #b8c0cc;border-radius:6px}
 input[type=password]{font:inherit;padding:.3em;border:1px solid #b8c0cc;border-radius:6px}
 button{font:inherit;padding:.45em 1.2em;margin:.6em 0;border:0;border-radius:6px;
        background:#2f5bd3;color:#fff;cursor:pointer}
 .card{border:1px solid #dde2ea;border-radius:8px;padding:.7em 1em;margin:.7em 0}
 .text{font-weight:600;margin-bottom:.4em} .label{color:#2f5bd3}
 .row{display:flex;align-items:center;gap:.6em;margin:.15em 0;font-size:.9em}
 .name{width:9em;overflow:hidden;text-overflow:ellipsis;white-space:nowrap}
 .bar{flex:1;background:#eef1f6;border-radius:4px;height:.9em}
 .fill{background:#2f5bd3;height:100%;border-radius:4px} .num{width:4.2em;text-align:right}
 .note{color:#8a5a00;font-size:.85em} .err{color:#b3261e}
</style></head><body>
<h1>__TITLE__</h1>
<div class="meta">__META__</div>
<form id="f">
 <textarea id="t" placeholder="__PLACEHOLDER__"></textarea>
 __KEY__
 <button type="submit">Classify</button>
 <span class="meta">one input per line; API: <a href="docs">/docs</a></span>
</form>
<div id="out"></div>
<script>
const PAIR = __PAIR__;
const out = document.getElementById("out");
function esc(s){const d=document.createElement("div");d.textContent=s;return d.innerHTML;}
document.getElementById("f").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const lines = document.getElementById("t").value.split("\\n").filter(l => l.trim());
  if (!lines.length) return;
  const inputs = PAIR ? lines.map(l => l.split("\\t").concat([""]).slice(0, 2)) : lines;
  const headers = {"Content-Type": "application/json"};
  const key = document.getElementById("k");
  if (key && key.value) headers["Authorization"] = "Bearer " + key.value;
  out.innerHTML = '<div class="meta">classifying...</div>';
  let resp, body;
  try {
    resp = await fetch("predict", {method: "POST", headers,
                       body: JSON.stringify({inputs, details: true})});
    body = await resp.json();
  } catch (e) { out.innerHTML = '<div class="err">' + esc(String(e)) + '</div>'; return; }
  if (!resp.ok) {
    out.innerHTML = '<div class="err">' + esc(body.error || resp.statusText) + '</div>';
    return;
  }
  out.innerHTML = body.map((r, i) => {
    const text = PAIR ? inputs[i].join("  |  ") : inputs[i];
    let html = '<div class="card"><div class="text">' + esc(text) + '</div>';
    if (r.skipped) return html + '<div class="note">skipped: ' + esc(r.skipped) + '</div></div>';
    if (!r.probabilities) return html + '<div>score <b>' + r.score.toFixed(4) + '</b></div></div>';
    const chosen = r.labels ? r.labels : [r.label];
    html += '<div>label: <b class="label">' + esc(chosen.join(", ") || "(none)") + '</b></div>';
    const probs = Object.entries(r.probabilities).sort((a, b) => b[1] - a[1]);
    for (const [name, p] of probs) {
      html += '<div class="row"><span class="name">' + esc(name) + '</span><span class="bar">' +
              '<div class="fill" style="width:' + (100 * p).toFixed(1) + '%"></div></span>' +
              '<span class="num">' + p.toFixed(3) + '</span></div>';
    }
    if (r.rescored) html += '<div class="note">a close call: computed again in fp32</div>';
    if (r.truncated) html += '<div class="note">read the first ' + r.truncated.tokens_read +
                             ' of ' + r.truncated.tokens + ' tokens</div>';
    return html + '</div>';
  }).join("");
});
</script>
</body></html>
"""


def render_page(info: dict[str, Any], needs_key: bool) -> str:
    """The page for this model (`info` is the /info body)."""
    pair = bool(info.get("pair"))
    columns = info.get("text_columns") or []
    meta = (
        f"task {info.get('task') or '(no manifest)'} &middot; {info['problem_type']} &middot; "
        f"labels: {', '.join(info['labels'])} &middot; precision {info['precision']}"
    )
    placeholder = (
        "one pair per line: first text, a tab, second text"
        if pair
        else "one text per line, e.g.\na gem of a film\na tedious mess"
    )
    if pair and len(columns) == 2:
        placeholder = f"one pair per line: {columns[0]} TAB {columns[1]}"
    key = (
        '<div><label>API key <input type="password" id="k" autocomplete="off"></label></div>'
        if needs_key
        else ""
    )
    replacements = {
        "__TITLE__": html.escape(f"modernbert-tasks: {info['model']}"),
        "__META__": html.escape(meta).replace("&amp;middot;", "&middot;"),
        "__PLACEHOLDER__": html.escape(placeholder),
        "__KEY__": key,
        "__PAIR__": json.dumps(pair),
    }
    page = _PAGE
    for marker, value in replacements.items():
        page = page.replace(marker, value)
    return page

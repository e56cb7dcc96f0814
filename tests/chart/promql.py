"""The metric names a PromQL expression (or a Grafana query) reads: enough of PromQL's lexical
rules to find them, for the test that ties the chart's alerts and dashboard to /metrics."""

from __future__ import annotations

import re

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_GRAFANA_VARIABLE = re.compile(r"\$(?:\{\w+(?::\w+)?\}|\w+)")
_MATCHERS = re.compile(r"\{[^{}]*\}")
_RANGE = re.compile(r"\[[^\[\]]*\]")
_LABEL_LIST = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)")
# Grafana's label_values(metric{...}, label) and label_values(label): the label is no metric.
_LABEL_VALUES = re.compile(r"\blabel_values\s*\(([^,()]*,)?\s*\w+\s*\)")
# Numbers (1, 0.5, 1e3, 0x1f, durations such as 5m) first, so their letters are not names.
_TOKEN = re.compile(r"[0-9][0-9A-Za-z_.]*|[A-Za-z_:][A-Za-z0-9_:]*(?P<call>\s*\()?")
_KEYWORDS = frozenset(
    {"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring"}
    | {"group_left", "group_right", "inf", "nan", "atan2"}
)


def metric_names(expr: str) -> set[str]:
    """Every metric name ``expr`` selects, e.g. {"up"} for ``absent(up{job="x"} == 1)``."""
    text = _STRING.sub('""', expr)
    text = _GRAFANA_VARIABLE.sub("1m", text)
    text = _MATCHERS.sub(" ", text)
    text = _LABEL_VALUES.sub(lambda m: (m.group(1) or "").rstrip(","), text)
    text = _RANGE.sub(" ", text)
    text = _LABEL_LIST.sub(" ", text)
    names = set()
    for token in _TOKEN.finditer(text):
        word = token.group(0)
        if word[0].isdigit() or token.group("call") or word.lower() in _KEYWORDS:
            continue
        names.add(word)
    return names

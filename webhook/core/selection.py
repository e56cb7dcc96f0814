"""Which pods the installed webhook configuration sends to podinit: the one home of selector
semantics, for `podinit scan`, the server's namespace gate and its pod watch.

There is one definition of "this pod selects injection": the namespaceSelector and
objectSelector of the webhook named `pods.podinit.dev` as the cluster has it (the chart renders
them from `mode`, `webhook.excludedNamespaces` and the extra expressions; deploy/ holds the same
objects). Its readers evaluate those selectors here, as the API server does (`matches`), or
hand them to the API server as a labelSelector string (`label_selector`), instead of restating
the chart's rules. Its matchConditions (CEL) are not
evaluated: the chart's two (the opt-out annotation, `spec.os.name: windows`) only exclude pods
the core leaves alone as a whole anyway.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

WEBHOOK = "pods.podinit.dev"  # the webhook's name in the chart and in deploy/


def matches(selector: object, labels: Mapping[str, str]) -> bool:
    """A metav1.LabelSelector against `labels`: matchLabels and every matchExpression must
    hold; an absent or empty selector matches everything, as in a webhook configuration."""
    if not isinstance(selector, Mapping):
        return True
    wanted = selector.get("matchLabels") or {}
    if any(labels.get(key) != value for key, value in wanted.items()):
        return False
    return all(_holds(e, labels) for e in selector.get("matchExpressions") or [])


def _holds(expression: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    key, operator = expression.get("key", ""), expression.get("operator")
    values = expression.get("values") or []
    if operator == "In":
        return key in labels and labels[key] in values
    if operator == "NotIn":
        return key not in labels or labels[key] not in values
    if operator == "Exists":
        return key in labels
    if operator == "DoesNotExist":
        return key not in labels
    return False  # the API server accepts no other operator


def label_selector(selector: object) -> str:
    """A metav1.LabelSelector in the string form the API's labelSelector parameter takes (as
    metav1.LabelSelectorAsSelector writes it); "" selects everything, as an absent selector in
    a webhook configuration. The apiserver validated it when the configuration was stored."""
    if not isinstance(selector, Mapping):
        return ""
    terms = [f"{key}={value}" for key, value in (selector.get("matchLabels") or {}).items()]
    for expression in selector.get("matchExpressions") or []:
        key, operator = expression.get("key", ""), expression.get("operator")
        values = ",".join(expression.get("values") or [])
        terms.append(
            {
                "In": f"{key} in ({values})",
                "NotIn": f"{key} notin ({values})",
                "Exists": key,
                "DoesNotExist": f"!{key}",
            }[operator]
        )
    return ",".join(terms)


@dataclass(frozen=True, slots=True)
class Selection:
    """The podinit webhooks of the cluster's MutatingWebhookConfigurations (usually one)."""

    webhooks: tuple[Mapping[str, Any], ...]

    @classmethod
    def of(cls, configurations: Iterable[Mapping[str, Any]]) -> Selection:
        """From MutatingWebhookConfiguration objects as the API returns them."""
        return cls(
            tuple(
                hook
                for configuration in configurations
                for hook in configuration.get("webhooks") or []
                if hook.get("name") == WEBHOOK
            )
        )

    def sends(self, namespace_labels: Mapping[str, str], pod_labels: Mapping[str, str]) -> bool:
        """Whether the API server calls podinit for a pod with these labels in a namespace with
        these labels."""
        return any(
            matches(hook.get("namespaceSelector"), namespace_labels)
            and matches(hook.get("objectSelector"), pod_labels)
            for hook in self.webhooks
        )

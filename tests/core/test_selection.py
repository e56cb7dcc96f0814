"""Label selectors of the installed webhook configuration (core/selection.py), evaluated as the
API server does. tests/e2e/test_scan.py checks them on the chart's own configuration."""

from __future__ import annotations

from typing import Any

from webhook.core.selection import Selection, label_selector, matches

OPT_IN = {
    "matchExpressions": [{"key": "podinit.dev/inject", "operator": "In", "values": ["enabled"]}]
}
NOT_DISABLED = {
    "matchExpressions": [{"key": "podinit.dev/inject", "operator": "NotIn", "values": ["disabled"]}]
}


def configuration(name: str, namespace_selector: Any, object_selector: Any) -> dict[str, Any]:
    hook = {
        "name": name,
        "namespaceSelector": namespace_selector,
        "objectSelector": object_selector,
    }
    return {"kind": "MutatingWebhookConfiguration", "webhooks": [hook]}


def test_an_absent_or_empty_selector_matches_every_object() -> None:
    assert matches(None, {}) and matches({}, {"a": "b"})


def test_each_operator_and_match_labels() -> None:
    def expression(operator: str, *values: str) -> dict[str, Any]:
        return {"matchExpressions": [{"key": "k", "operator": operator, "values": list(values)}]}

    assert matches(expression("In", "a", "b"), {"k": "b"})
    assert not matches(expression("In", "a"), {})
    assert matches(expression("NotIn", "a"), {})
    assert not matches(expression("NotIn", "a"), {"k": "a"})
    assert matches(expression("Exists"), {"k": ""})
    assert not matches(expression("DoesNotExist"), {"k": ""})
    assert matches(expression("DoesNotExist"), {"other": ""})
    assert matches({"matchLabels": {"k": "a"}}, {"k": "a", "x": "y"})
    assert not matches({"matchLabels": {"k": "a"}, **expression("Exists")}, {"k": "b"})


def test_only_the_webhook_named_pods_podinit_dev_decides() -> None:
    other = configuration("other.example.com", {}, {})
    ours = configuration("pods.podinit.dev", OPT_IN, NOT_DISABLED)
    selection = Selection.of([other, ours])
    enabled = {"podinit.dev/inject": "enabled"}
    assert selection.sends(enabled, {})
    assert not selection.sends({}, {})
    assert not selection.sends(enabled, {"podinit.dev/inject": "disabled"})
    assert not Selection.of([other]).sends(enabled, {})


def test_an_operator_the_api_server_does_not_know_selects_nothing() -> None:
    unknown = {"matchExpressions": [{"key": "k", "operator": "Gt", "values": ["1"]}]}
    assert not matches(unknown, {"k": "2"})
    assert not matches(unknown, {})


def test_a_selector_is_handed_to_the_api_as_the_label_selector_string_it_takes() -> None:
    """The string form of the API's labelSelector parameter (kubectl's `-l`): terms joined
    by commas, `key=value`, `key in (a,b)`, `key notin (a)`, `key`, `!key`."""
    selector = {
        "matchLabels": {"team": "shop"},
        "matchExpressions": [
            {"key": "env", "operator": "In", "values": ["prod", "staging"]},
            {"key": "podinit.dev/inject", "operator": "NotIn", "values": ["disabled"]},
            {"key": "tier", "operator": "Exists"},
            {"key": "legacy", "operator": "DoesNotExist"},
        ],
    }
    assert label_selector(selector) == (
        "team=shop,env in (prod,staging),podinit.dev/inject notin (disabled),tier,!legacy"
    )


def test_an_absent_or_empty_selector_is_the_empty_string_that_selects_everything() -> None:
    assert label_selector(None) == label_selector({}) == ""
    assert label_selector({"matchLabels": None, "matchExpressions": None}) == ""

"""The pure decision core. Everything here is synchronous and free of I/O."""

from webhook.core.errors import InvalidPod
from webhook.core.images import (
    ImageConfig,
    ImageLookup,
    ImageOverride,
    ImageResult,
    LookupFailure,
    find_override,
)
from webhook.core.mutate import Decision, Mutation, Outcome, Plan, mutate, prepare
from webhook.core.settings import InjectionMode, InjectSettings, LookupFailurePolicy

__all__ = [
    "Decision",
    "ImageConfig",
    "ImageLookup",
    "ImageOverride",
    "ImageResult",
    "InjectSettings",
    "InjectionMode",
    "InvalidPod",
    "LookupFailure",
    "LookupFailurePolicy",
    "Mutation",
    "Outcome",
    "Plan",
    "find_override",
    "mutate",
    "prepare",
]

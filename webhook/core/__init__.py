"""The pure decision core. Everything here is synchronous and free of I/O."""

from webhook.core.decisions import Decision, Mutation, Outcome
from webhook.core.errors import InvalidPod
from webhook.core.images import (
    ImageConfig,
    ImageLookup,
    ImageOverride,
    ImageResult,
    LookupFailure,
    find_override,
)
from webhook.core.mutate import Decided, Pending, Plan, mutate, prepare
from webhook.core.observed import (
    UNWRAPPED,
    WHOLE_POD,
    Observation,
    State,
    may_be_unwrapped,
    observe,
)
from webhook.core.settings import InjectionMode, InjectSettings, LookupFailurePolicy

__all__ = [
    "UNWRAPPED",
    "WHOLE_POD",
    "Decided",
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
    "Observation",
    "Outcome",
    "Pending",
    "Plan",
    "State",
    "find_override",
    "may_be_unwrapped",
    "mutate",
    "observe",
    "prepare",
]

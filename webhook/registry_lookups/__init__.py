"""Registry lookups as the server and the CLI make them, on top of the registry client: the
resolver built from Config (`registryCaFile` read and checked here), the pod's pull secrets
read from the cluster, and many images resolved at once into what the core takes."""

from webhook.registry_lookups._pull_secrets import CoreApi, PullSecretReader
from webhook.registry_lookups._resolve import make_resolver, resolve_all

__all__ = ["CoreApi", "PullSecretReader", "make_resolver", "resolve_all"]

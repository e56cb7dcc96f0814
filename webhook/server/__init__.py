"""The admission server: thin async layers (HTTP, TLS, registry, Kubernetes API) around the core."""

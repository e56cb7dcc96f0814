"""Container images built for real: the repo's Dockerfile with buildah, and the small images
a test node needs (a pause image, shell-form app images), pushed to a registry over TLS.

No public registry is reachable here, so the webhook stage's base is a stand-in built from
Debian packages (:mod:`e2e.images.standin`); ``make images`` uses the Dockerfile's default
base (``python:3.11-slim-bookworm``) unless told otherwise.
"""

"""The network module's one error type."""

from __future__ import annotations


class NetworkError(RuntimeError):
    """A pod network step failed; the message names the step and the pod, the cause is chained.

    For example ``failed to attach pod 1f2e to bridge kl0: address pool 10.244.1.0/24 is exhausted``.
    """

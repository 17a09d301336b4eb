"""Security of the API server beyond loopback: PKI, tokens, authentication, authorization, joining.

    config.py       ensure_security() on first start; install() wires middleware and join routes
    pki.py          cluster CA, serving and client certificates (CN = user, O = groups)
    tokens.py       join tokens, hashed user bearer tokens, the CA pin (sha256 of the SPKI)
    requestinfo.py  method + path -> verb, resource, namespace, name, subresource
    authn.py        who is calling (TLS client certificate, bearer token) and the middleware
    authz.py        authorize(): a pure rule table per identity
    join.py         the kubeadm-style join: signed cluster info, pinned CA, node certificate
    kubeconfig.py   self-contained kubeconfigs that kubectl accepts
    files.py        0600 files written atomically, 0700 directories

Each module's docstring states its invariants. This package imports nothing from `app.py`,
so that `app.py` can import it.
"""

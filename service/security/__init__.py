"""Security: who is asking (authentication) and what they may do (authorization), as
Elasticsearch defines them.

- ``passwords``: the slow salted hash of passwords and API keys, compared in constant time.
- ``privileges``: Elasticsearch's named cluster and index privileges as action patterns.
- ``roles``: role descriptors (parsed and validated in ES's wording), the built-in roles, and
  the compiled ``Permission`` a principal carries.
- ``principal``: who a request runs as (a user or an API key and its owner).
- ``authn``: credentials in, a ``Principal`` out, with a cache of successful attempts.
- ``service``: users, roles and API keys (the store behind them is ``store/security.py``).

The HTTP side (the middleware step, the route-to-action table, the APIs) is in ``service/api``.
"""

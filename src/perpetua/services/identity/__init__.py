"""Accounts as a user sees them (issue 12, docs/accounts.md): sign-up, email confirmation,
sign-in, sessions, password reset, email change, profile and preferences, TOTP and security
keys, and the operator's account actions.

The package is one noun a module; each opens with its invariants:

- ``values``: the answers and ``IdentityError``; ``port``: ``IdentityPort``, what the gateway
  calls; ``service``: ``Identity``, the facade that runs each flow off the event loop, and
  ``open_identity``.
- ``context``: what every flow works with; ``notices``: mail after commit and the
  unsolicited-mail budget; ``tokens``: mailed tokens and WebAuthn challenges.
- The flows: ``registration``, ``sign_in``, ``second_factor`` (TOTP, recovery codes),
  ``security_keys`` (WebAuthn), ``browser_sessions``, ``credentials`` (reset, password and
  email change), ``profile``, ``operator``.

Across all of them: answers never reveal whether an email is registered; each act commits in
one transaction with its audit row (``services.audit``), so a crash between two steps leaves
nothing half-made; mail goes out after the commit; secrets (passwords, tokens, TOTP secrets,
recovery codes) are stored hashed or encrypted and never logged.
"""

from perpetua.services.identity.port import IdentityPort
from perpetua.services.identity.profile import PREFERENCES_BYTES_MAX
from perpetua.services.identity.service import Identity, OpenedIdentity, open_identity
from perpetua.services.identity.tokens import TOKEN_TTL_NS
from perpetua.services.identity.values import (
    EMAIL_LENGTH_MAX,
    IdentityError,
    NewKey,
    Origin,
    Profile,
    SecurityKey,
    SignedIn,
)

__all__ = [
    "EMAIL_LENGTH_MAX",
    "PREFERENCES_BYTES_MAX",
    "TOKEN_TTL_NS",
    "Identity",
    "IdentityError",
    "IdentityPort",
    "NewKey",
    "OpenedIdentity",
    "Origin",
    "Profile",
    "SecurityKey",
    "SignedIn",
    "open_identity",
]

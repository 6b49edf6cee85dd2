"""Sign-in, for a hosted server that wants accounts: Streamlit's own OpenID Connect login (st.login, st.user,
st.logout), switched on by an [auth] section in the server's secrets.toml (README, "Hosting").

With it, a session's owner is its signed-in account (kfcore.runs.limits.account_owner_token of the identity's issuer
and subject), so runs and uploads follow the person across browsers; a visitor who has not signed in owns
nothing and may only look. Streamlit keeps the identity in its own signed cookie: signing in or out reloads
the page, which starts a new session, so the owner is decided once per session (ui.state.owner.init_owner).
"""

from __future__ import annotations

import streamlit as st
from streamlit.errors import StreamlitAuthError

from kfcore.runs.limits import account_owner_token

SIGN_IN_FIRST = "Sign in (in the sidebar) to train or upload data: on this server runs belong to an account."


def configured() -> bool:
    """Whether this server's secrets have an [auth] section (no secrets file at all: no)."""
    try:
        return "auth" in st.secrets
    except FileNotFoundError:  # Streamlit's "no secrets found" (or an unreadable file, which startup logs)
        return False


def signed_in_owner() -> str | None:
    """The owner token of the account this session is signed in with, or None when nobody is signed in."""
    user = st.user
    subject = user.get("sub")
    if user.get("is_logged_in") is not True or not isinstance(subject, str) or not subject:
        return None
    return account_owner_token(str(user.get("iss") or ""), subject)


def _shown_name() -> str:
    user = st.user
    return next((str(v) for v in (user.get("name"), user.get("email"), user.get("sub")) if v), "your account")


def sidebar_control() -> None:
    """The Sign in button, or who is signed in and Sign out. Both reload the page: a new session, a new owner."""
    try:
        if signed_in_owner() is None:
            if st.button("Sign in", key="sign_in", icon=":material/login:", width="stretch"):
                st.login()
        else:
            st.text(f"Signed in as {_shown_name()}")  # the provider's text: plain text, never Markdown
            if st.button("Sign out", key="sign_out", icon=":material/logout:", width="stretch"):
                st.logout()
    except StreamlitAuthError as e:  # [auth] incomplete, or Authlib missing: the operator's to fix
        reason = " ".join(str(e).split())
        st.error(
            f"Sign-in is not available: {reason} Ask whoever runs this server to check its [auth] secrets.",
            icon=":material/error:",
        )

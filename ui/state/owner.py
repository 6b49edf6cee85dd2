"""Who this session is and what it may see, change and read (see the package docstring)."""

from __future__ import annotations

import uuid

import streamlit as st

from kfcore.runs.limits import (
    LimitError,
    can_delete,
    can_modify,
    check_data_access,
    grant_data_access,
    new_owner_token,
    valid_owner_token,
)
from kfcore.runs.store import RunRecord
from kfcore.spec import RunSpec
from ui import auth
from ui.state.services import accounts, hosted, limits, store

OWNER_COOKIE = "kf_owner"
OWNER_COOKIE_MAX_AGE_S = 365 * 24 * 3600


def init_owner() -> None:
    """ss.owner: a new id per session locally; in hosted mode the browser's token from its cookie, or a new one
    (then remember_owner() sets the cookie, so the next session of this browser gets the same owner); in hosted
    mode with sign-in (ui.auth), the signed-in account's token, or None for a visitor who has not signed in."""
    ss = st.session_state
    if not hosted():
        ss.owner, ss.owner_cookie_ok = uuid.uuid4().hex, True
        return
    if accounts():  # the account is the owner (None until signed in); the cookie is neither read nor set
        ss.owner, ss.owner_cookie_ok = auth.signed_in_owner(), True
        return
    sent = cookie_owner()
    ss.owner, ss.owner_cookie_ok = sent or new_owner_token(), sent is not None


def cookie_owner() -> str | None:
    """The owner token the browser sent with this session's first request, if it has the right form (anything
    else is ignored, never parsed). st.context.cookies are those of the websocket's opening request."""
    return valid_owner_token(st.context.cookies.get(OWNER_COOKIE))


def remember_owner() -> None:
    """In hosted mode, when the browser came without a valid owner cookie, set it from the page. st.html runs the
    script in the page itself (no iframe), so the cookie is the app's own; the token is 32 hex digits we made.
    The script then removes itself: the token is the browser's key to its runs and must not stay in the page's
    HTML, where a screenshot, a copied page or a DOM-reading extension would take it along."""
    ss = st.session_state
    if ss.get("owner_cookie_ok", True):
        return
    token = valid_owner_token(ss.get("owner"))
    if token is None:
        return
    st.html(
        f"""<script>document.cookie = "{OWNER_COOKIE}={token}; path=/; max-age={OWNER_COOKIE_MAX_AGE_S}; """
        """SameSite=Lax" + (location.protocol === "https:" ? "; Secure" : "");"""
        """document.currentScript?.remove();</script>""",
        unsafe_allow_javascript=True,
        width="content",
    )


def may_delete(record: RunRecord | None) -> bool:
    """Whether this session may delete the run: one it owns, or one it imported (which it may not change)."""
    return record is not None and can_delete(record, st.session_state.get("owner"), limits())


def owns(record: RunRecord | None) -> bool:
    """Whether this session may rename, delete or stop the run (always locally; its own runs when hosted)."""
    return record is not None and can_modify(record, st.session_state.get("owner"), limits())


def visible_runs() -> list[RunRecord]:
    """The runs this session lists: every run locally, only its owner's when hosted (none before signing in)."""
    if not hosted():
        return store().list_runs()
    owner = st.session_state.get("owner")
    return store().list_runs(owner=owner) if owner is not None else []


def sign_in_first() -> str | None:
    """Why this session may not train or upload yet (a hosted server with sign-in, nobody signed in), or None."""
    return auth.SIGN_IN_FIRST if hosted() and st.session_state.get("owner") is None else None


def data_refusal(candidate: RunSpec, via: RunRecord | None = None) -> str | None:
    """Why a spec's data may not be read here (hosted mode: only built-ins and this browser's uploads, or those of
    `via`, a run it opened by its link), or None."""
    try:
        check_data_access(candidate.data, limits(), store(), st.session_state.get("owner"), via)
    except LimitError as e:
        return str(e)
    return None


def adopt_uploads(forked: RunRecord) -> None:
    """After a fork of another browser's run: this browser may read that run's uploads, to train the fork."""
    grant_data_access(store(), st.session_state.owner, forked)

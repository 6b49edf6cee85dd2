"""KF Studio: pick a dataset, design a tf.keras network, train it and watch it learn.

Only navigation and the frame live here; every page is a short script in app_pages/. This process
never imports TensorFlow: training runs in worker processes that share nothing with it but the run store.

The folder is deliberately not called pages/: Streamlit treats a pages/ folder beside the entrypoint as
an old-style multipage app until st.navigation has run once in the server process, so the first deep
link after a server start (/train) would run that page alone, without this frame and session set-up.
"""

from __future__ import annotations

from pathlib import Path

from ui.pages import page

# The pages by absolute path: the entry script may be this file (the kfstudio command, an installed package) or the
# repository's app.py (streamlit run app.py, Streamlit Community Cloud); the pages are found from either.
PAGES = Path(__file__).resolve().parent.parent / "app_pages"


def main() -> None:
    import streamlit as st

    from kfcore.runs.store import StoreFullError
    from ui import sidebar, state, style, widgets

    st.set_page_config(page_title="KF Studio", page_icon=":material/neurology:", layout="wide")
    style.apply()
    try:
        state.init_session()
    except StoreFullError as e:  # the run store cannot even be opened: every page needs it, so say why instead
        st.error(str(e), icon=":material/error:")
        st.stop()
    state.collect_garbage_now_and_then()
    current = st.navigation(
        [
            st.Page(page("home"), title="Home", icon=":material/home:", default=True),
            st.Page(page("data"), title="Data", icon=":material/dataset:"),
            st.Page(page("model"), title="Model", icon=":material/account_tree:"),
            st.Page(page("train"), title="Train", icon=":material/model_training:"),
            st.Page(page("evaluate"), title="Evaluate", icon=":material/analytics:"),
            st.Page(page("runs"), title="Runs", icon=":material/history:"),
            st.Page(page("sweep"), title="Sweep", icon=":material/tune:"),
        ]
    )
    sidebar.render()
    current.run()
    state.write_address_bar()  # after the page: its widgets' changes are in the spec by now
    widgets.label_icon_buttons()  # after the page too: it names the icon-only buttons the page drew


# Streamlit runs this file as "__main__". A training worker is spawned by multiprocessing, which re-runs
# the parent's main file as "__mp_main__" to restore it: there it must neither draw nor start workers
# (nor import Streamlit), so everything happens in main().
if __name__ == "__main__":
    main()

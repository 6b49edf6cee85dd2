"""KF Studio's entry script for `streamlit run app.py` (and Streamlit Community Cloud): the app is kfstudio.app.

Streamlit runs this file as "__main__"; a training worker spawned by multiprocessing re-runs it as "__mp_main__",
where it must do nothing, so the app starts only under the guard.
"""

from kfstudio.app import main

if __name__ == "__main__":
    main()
